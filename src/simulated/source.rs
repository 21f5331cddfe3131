//! The simulated market as a [`MarketSource`]: the same answers an ML engine would give,
//! computed by the analyzer from the generated candles.
//!
//! The market is a function of the wall clock: candle `n` appears `n × seconds_per_candle`
//! after an origin kept in the store, so the dashboard and every command-line process on
//! one data dir see the same prices.

use super::{Analyzer, Candle, MarketGenerator, seed_for_symbol};
use crate::config::Config;
use crate::domain::rules;
use crate::source::{FetchError, MarketSource, SymbolReport};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Mutex;

/// Candles of history generated before the origin, so the analyzer is warm at once.
pub const WARMUP_CANDLES: u64 = 300;
/// Market time per candle, in seconds: one-hour candles (the generator's volatility, tails and
/// volatility clustering are those of hourly crypto), shown faster than real time.
pub const BAR_SECONDS: i64 = 3600;
/// Past this many candles since the origin, the market starts again from a new origin.
pub const MAX_CANDLES: u64 = 500_000;
const ORIGIN_KEY: &str = "sim_origin_ms";

/// A plausible start price for a symbol: a pair's by its base currency, a US stock's by its
/// ticker; any other near 100 (a stock-like price).
pub fn default_start_price(symbol: &str) -> f64 {
    if crate::config::is_stock(symbol) {
        return match symbol {
            "AAPL" => 190.0,
            "MSFT" => 420.0,
            "NVDA" => 120.0,
            "AMZN" => 180.0,
            "GOOGL" | "GOOG" => 170.0,
            "META" => 500.0,
            "TSLA" => 250.0,
            "SPY" => 550.0,
            "QQQ" => 480.0,
            "BRK.B" => 410.0,
            _ => 100.0,
        };
    }
    match symbol.split('/').next().unwrap_or("") {
        "BTC" => 65_000.0,
        "ETH" => 3_200.0,
        "SOL" => 150.0,
        "BNB" => 580.0,
        "XRP" => 0.6,
        "ADA" => 0.45,
        "DOGE" => 0.15,
        _ => 100.0,
    }
}

/// How many times faster than real time the market runs when a candle comes every
/// `seconds_per_candle` of wall time: market seconds per wall second.
pub fn speed(seconds_per_candle: f64) -> f64 {
    BAR_SECONDS as f64 / seconds_per_candle
}

/// The speed as the header shows it: `2,400×`, `~5,143×` when that rounds it.
pub fn fmt_speed(seconds_per_candle: f64) -> String {
    let x = speed(seconds_per_candle);
    let dp = if x >= 100.0 {
        0
    } else if x >= 1.0 {
        2
    } else {
        4
    };
    let text = crate::domain::money::fmt_fixed(x, dp);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    let exact = text.replace(',', "").parse::<f64>().ok() == Some(x);
    format!("{}{text}×", if exact { "" } else { "~" })
}

/// The candle's length in words: `1-hour`, `1-minute`, else seconds.
fn candle_length() -> String {
    match BAR_SECONDS {
        86_400 => "1-day".into(),
        3_600 => "1-hour".into(),
        60 => "1-minute".into(),
        s => format!("{s}-second"),
    }
}

/// The market's speed in words: `one 1-hour candle every 1.5 s = 2,400× real time`.
pub fn describe_speed(seconds_per_candle: f64) -> String {
    format!(
        "one {} candle every {} s = {} real time",
        candle_length(),
        crate::domain::money::fmt_num(seconds_per_candle),
        fmt_speed(seconds_per_candle)
    )
}

struct SymbolMarket {
    generator: MarketGenerator,
    analyzer: Analyzer,
    /// Candles generated so far (history included).
    made: u64,
    last: Option<Candle>,
}

pub struct SimulatedSource {
    markets: HashMap<String, Mutex<SymbolMarket>>,
    origin_ms: i64,
    seconds_per_candle: f64,
}

impl SimulatedSource {
    /// A market whose origin is kept in `store`, shared by every process on the data dir.
    pub fn for_store(config: &Config, store: &Store) -> color_eyre::Result<SimulatedSource> {
        let now = crate::store::now_ms();
        let origin = store.meta_get_or_init(ORIGIN_KEY, &now.to_string())?;
        let mut origin_ms = origin.parse::<i64>().unwrap_or(now);
        let elapsed = Self::candles_between(origin_ms, now, config.simulation.seconds_per_candle);
        if origin_ms > now || elapsed > MAX_CANDLES {
            origin_ms = now;
            store.meta_set(ORIGIN_KEY, &now.to_string())?;
            tracing::info!("simulated market restarted from a new origin");
        }
        Ok(Self::new(config, origin_ms))
    }

    /// A market starting at `origin_ms` (wall clock, ms).
    pub fn new(config: &Config, origin_ms: i64) -> SimulatedSource {
        let markets = config
            .auto_trade
            .symbols
            .iter()
            .map(|s| {
                let start = config
                    .simulation
                    .start_prices
                    .get(s)
                    .copied()
                    .unwrap_or_else(|| default_start_price(s));
                let start_ts = origin_ms / 1000 - WARMUP_CANDLES as i64 * BAR_SECONDS;
                let m = SymbolMarket {
                    generator: MarketGenerator::new(
                        seed_for_symbol(config.simulation.seed, s),
                        start,
                        start_ts,
                        BAR_SECONDS,
                    ),
                    analyzer: Analyzer::new(),
                    made: 0,
                    last: None,
                };
                (s.clone(), Mutex::new(m))
            })
            .collect();
        SimulatedSource {
            markets,
            origin_ms,
            seconds_per_candle: config.simulation.seconds_per_candle,
        }
    }

    fn candles_between(origin_ms: i64, now_ms: i64, seconds_per_candle: f64) -> u64 {
        let elapsed = (now_ms - origin_ms).max(0) as f64 / 1000.0;
        (elapsed / seconds_per_candle).floor() as u64
    }

    /// How many candles exist at wall time `now_ms`.
    pub fn candles_at(&self, now_ms: i64) -> u64 {
        WARMUP_CANDLES + 1 + Self::candles_between(self.origin_ms, now_ms, self.seconds_per_candle)
    }

    /// The last close of `symbol` at wall time `now_ms`, at its tick.
    pub fn price_at(&self, symbol: &str, now_ms: i64) -> Option<f64> {
        let mut m = match self.markets.get(symbol)?.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let target = self.candles_at(now_ms);
        Self::advance(&mut m, target);
        m.last
            .map(|c| rules::round_dp(c.close, crate::domain::money::price_dp(c.close) as i32))
    }

    fn advance(m: &mut SymbolMarket, target: u64) {
        while m.made < target {
            let (c, _) = m.generator.next_candle();
            m.analyzer.push(&c);
            m.last = Some(c);
            m.made += 1;
        }
    }

    /// The report for `symbol` at wall time `now_ms`.
    pub fn report_at(&self, symbol: &str, now_ms: i64) -> SymbolReport {
        let unknown = |what: &str| FetchError {
            message: format!("simulated market: no {what} for {symbol}"),
            unreachable: false,
            retry_after: None,
        };
        let Some(cell) = self.markets.get(symbol) else {
            return SymbolReport {
                symbol: symbol.to_string(),
                signal: Err(unknown("market")),
                phase: Err(unknown("market")),
                price: None,
            };
        };
        let mut m = match cell.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let target = self.candles_at(now_ms);
        Self::advance(&mut m, target);
        let tick = |x: f64| rules::round_dp(x, crate::domain::money::price_dp(x) as i32);
        let signal = m
            .analyzer
            .signal()
            .map(|mut s| {
                // Quote prices at a realistic tick, as an exchange would.
                s.entry_price = tick(s.entry_price);
                s.take_profit = tick(s.take_profit);
                s.stop_loss = tick(s.stop_loss);
                s
            })
            .and_then(|s| serde_json::to_value(s).ok())
            .ok_or_else(|| unknown("signal yet (warming up)"));
        let phase = m
            .analyzer
            .phase()
            .and_then(|p| serde_json::to_value(p).ok())
            .ok_or_else(|| unknown("phase yet (warming up)"));
        SymbolReport {
            symbol: symbol.to_string(),
            signal,
            phase,
            price: m.last.map(|c| tick(c.close)),
        }
    }
}

#[async_trait::async_trait]
impl MarketSource for SimulatedSource {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn fetch(&self, symbol: &str) -> SymbolReport {
        self.report_at(symbol, crate::store::now_ms())
    }

    fn latest_price(&self, symbol: &str) -> Option<f64> {
        self.price_at(symbol, crate::store::now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_symbol_gets_a_valid_signal_and_phase_at_once() {
        let config = Config::defaults();
        let src = SimulatedSource::new(&config, 1_700_000_000_000);
        for s in &config.auto_trade.symbols {
            let r = src.report_at(s, 1_700_000_000_000);
            let sig = rules::parse_signal(r.signal.as_ref().unwrap()).unwrap();
            rules::parse_phase(r.phase.as_ref().unwrap()).unwrap();
            assert!(r.price.unwrap() > 0.0);
            assert_eq!(sig.entry_price, r.price.unwrap());
        }
    }

    #[test]
    fn two_processes_on_one_origin_see_the_same_prices_and_time_moves_them() {
        let config = Config::defaults();
        let origin = 1_700_000_000_000;
        let a = SimulatedSource::new(&config, origin);
        let b = SimulatedSource::new(&config, origin);
        let later = origin + 60_000;
        assert_eq!(
            a.report_at("BTC/USD", later).price,
            b.report_at("BTC/USD", later).price
        );
        let c = SimulatedSource::new(&config, origin);
        let p0 = c.report_at("BTC/USD", origin).price;
        let p1 = c.report_at("BTC/USD", later).price;
        assert_ne!(p0, p1, "prices move as the clock runs");
        assert_eq!(c.candles_at(later), WARMUP_CANDLES + 1 + 40);
    }

    #[test]
    fn the_speed_is_market_time_over_wall_time() {
        let config = Config::defaults();
        assert_eq!(config.simulation.seconds_per_candle, 1.5);
        assert_eq!(speed(1.5), 2400.0);
        assert_eq!(fmt_speed(1.5), "2,400×");
        assert_eq!(
            describe_speed(1.5),
            "one 1-hour candle every 1.5 s = 2,400× real time"
        );
        assert_eq!(fmt_speed(3600.0), "1×");
        assert_eq!(fmt_speed(0.05), "72,000×");
        assert_eq!(fmt_speed(0.7), "~5,143×", "rounded, and says so");
        assert_eq!(fmt_speed(86_400.0), "~0.0417×", "slower than real time");
        assert_eq!(fmt_speed(240.0), "15×");
    }

    #[test]
    fn unknown_symbol_is_an_error_not_a_panic() {
        let src = SimulatedSource::new(&Config::defaults(), 0);
        let r = src.report_at("XYZ/USD", 0);
        assert!(r.signal.is_err() && r.phase.is_err() && r.price.is_none());
    }
}
