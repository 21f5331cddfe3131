//! The random-entry baseline: would the same trades, entered at random bars, have done as well?
//!
//! Each run makes as many trades as the strategy made, one for each of its trades: the same
//! side and the same take-profit and stop-loss distances, as fractions of the decision's entry
//! price (so the same BUY/SELL mix and the same reward:risk). Only the bar is random: a decision
//! at a bar t drawn uniformly from the strategy's first decision bar to the second-to-last bar,
//! its levels set from bar t's close, sized by the live sizing rule, filled at bar t+1's open
//! under the replay's fill rules (a fill refused there is drawn again at another bar, up to
//! [`MAX_DRAWS`] times), and closed by the same exit rule, fees and slippage, at the last close
//! when no level is touched; a trade whose stop trailed trails the same way. Sizing depends on the configured account size and not on equity,
//! so the trades of a run are independent and may overlap; a run's return is the sum of their
//! P&L over the start equity, as the strategy's is.
//!
//! **In binary arithmetic.** The live rules size, check and settle in decimal to the cent,
//! which costs a few microseconds a call; the baseline makes every trade of the strategy again
//! in every run (200 × 38,000 trades on 2,000,000 candles), so it repeats the sizing rule
//! ([`size_position`](crate::domain::rules::size_position)) and the refusals of
//! [`fill_at_open`](super::replay::fill_at_open) (past a level, over the risk limit at the
//! open) in f64, and settles each trade in f64 rounded to the cent. The exit is the live
//! function itself ([`lifecycle::exit_in_bar`], or with a trail [`trail::step_in_bar`]). A test draws thousands of trades both ways
//! and finds the same fills, exits and sizes, and P&L within a cent.
//!
//! The bars come from SplitMix64, written out below: the same `--seed` gives the same numbers
//! on every machine and with every build. Run k uses the k-th output of a SplitMix64 seeded
//! with the seed as its own seed.

use super::replay::{Settings, Trade};
use crate::domain::Side;
use crate::domain::lifecycle;
use crate::domain::money::percent_of;
use crate::domain::rules::{QTY_DP, round_dp};
use crate::domain::trail::{self, Step, Trail, Trailing};
use crate::simulated::Candle;
use serde::Serialize;

/// Random-entry runs when `--baseline-seeds` is not given.
pub const DEFAULT_RUNS: usize = 200;
/// The seed when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 19;
/// Unless the runs are given, they are cut so that all of them together make at most this many
/// random trades (never fewer than [`MIN_BUDGET_RUNS`] runs): on 2,000,000 candles the strategy
/// trades 38,000 times, and 52 runs of that many already pin the distribution down.
pub const RANDOM_TRADE_BUDGET: usize = 2_000_000;
/// The fewest runs the budget leaves.
pub const MIN_BUDGET_RUNS: usize = 40;
/// Bars drawn for one trade before it is given up (counted in `trades_not_placed`).
pub const MAX_DRAWS: usize = 64;

/// How many runs, from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineOptions {
    pub runs: usize,
    pub seed: u64,
    /// At most this many random trades in all (see [`RANDOM_TRADE_BUDGET`]); none: exactly
    /// `runs` runs.
    pub trade_budget: Option<usize>,
}

impl BaselineOptions {
    /// Exactly `runs` runs from `seed`.
    pub fn exactly(runs: usize, seed: u64) -> Self {
        BaselineOptions {
            runs,
            seed,
            trade_budget: None,
        }
    }

    /// The runs for a strategy that made `trades` trades.
    pub fn runs_for(&self, trades: usize) -> usize {
        match self.trade_budget {
            Some(budget) if trades > 0 => self.runs.min((budget / trades).max(MIN_BUDGET_RUNS)),
            _ => self.runs,
        }
    }
}

impl Default for BaselineOptions {
    fn default() -> Self {
        BaselineOptions {
            runs: DEFAULT_RUNS,
            seed: DEFAULT_SEED,
            trade_budget: Some(RANDOM_TRADE_BUDGET),
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state, one add and three mixes a number.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A whole number in `lo..=hi` (multiply-shift; the bias is below 2⁻⁴⁰ for any file).
    pub fn in_range(&mut self, lo: usize, hi: usize) -> usize {
        let span = (hi - lo) as u128 + 1;
        lo + ((u128::from(self.next_u64()) * span) >> 64) as usize
    }
}

/// One of the strategy's trades as the baseline copies it: side and level distances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TradeShape {
    pub side: Side,
    /// |take-profit − entry| / entry, at the decision.
    pub take_profit_fraction: f64,
    /// |entry − stop-loss| / entry, at the decision.
    pub stop_loss_fraction: f64,
    /// The trail its stop followed, if any.
    pub trail: Option<Trail>,
}

impl TradeShape {
    pub fn of(t: &Trade) -> TradeShape {
        let entry = t.decision_price;
        TradeShape {
            side: t.side,
            take_profit_fraction: (t.take_profit - entry).abs() / entry,
            stop_loss_fraction: (entry - t.stop_loss).abs() / entry,
            trail: t.trail,
        }
    }
}

/// Mean, median and the 5th and 95th percentiles of one figure over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distribution {
    pub mean: f64,
    pub median: f64,
    pub p5: f64,
    pub p95: f64,
}

impl Distribution {
    /// `values` sorted in place; percentiles interpolate linearly between the two nearest runs
    /// (the spreadsheet PERCENTILE). None without values.
    pub fn of(values: &mut [f64], dp: i32) -> Option<Distribution> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let pos = q * (values.len() - 1) as f64;
            let (i, frac) = (pos.floor() as usize, pos - pos.floor());
            let next = values.get(i + 1).copied().unwrap_or(values[i]);
            values[i] + (next - values[i]) * frac
        };
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        Some(Distribution {
            mean: round_dp(mean, dp),
            median: round_dp(at(0.5), dp),
            p5: round_dp(at(0.05), dp),
            p95: round_dp(at(0.95), dp),
        })
    }
}

/// Where the strategy's figure falls among the runs': the percent of runs below it, ties
/// counted half (50: the middle of the random runs; 100: above all of them).
pub fn percentile_rank(values: &[f64], x: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let below = values.iter().filter(|&&v| v < x).count() as f64;
    let equal = values.iter().filter(|&&v| v == x).count() as f64;
    Some(round_dp(
        (below + equal / 2.0) / values.len() as f64 * 100.0,
        2,
    ))
}

/// The strategy's place in the runs, as percentile ranks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StrategyRank {
    pub total_return_percent: f64,
    pub win_rate: f64,
}

/// The `baseline` object of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub runs: usize,
    pub seed: u64,
    /// Trades a run makes: the strategy's count, of which `buys` are BUYs.
    pub trades_per_run: usize,
    pub buys: usize,
    pub sells: usize,
    /// Trades that found no bar to fill at in [`MAX_DRAWS`] draws, over all runs (normally 0).
    pub trades_not_placed: usize,
    pub total_return_percent: Option<Distribution>,
    pub win_rate: Option<Distribution>,
    pub strategy_percentile: Option<StrategyRank>,
    /// Why the figures above are null.
    pub reason: Option<String>,
}

/// What one run made.
struct RunResult {
    total_return_percent: f64,
    win_rate: f64,
    not_placed: usize,
}

/// The account figures every trade of a run needs, worked out once (in decimal, as the live
/// rules do).
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// `max_risk_percent` of the account: what a position may lose at its stop-loss.
    risk_amount: f64,
    /// `max_position_percent` of the account: the largest position's value.
    cap_amount: f64,
    /// The fill check's risk limit, to the cent.
    risk_limit: f64,
    fee_rate: f64,
    slippage_rate: f64,
}

impl Limits {
    fn of(settings: &Settings) -> Limits {
        let r = &settings.risk;
        Limits {
            risk_amount: percent_of(r.account_size, r.max_risk_percent),
            cap_amount: percent_of(r.account_size, r.max_position_percent),
            risk_limit: round_dp(r.account_size * r.max_risk_percent / 100.0, 2),
            fee_rate: settings.fee_percent / 100.0,
            slippage_rate: settings.slippage_percent / 100.0,
        }
    }
}

/// Rounded down to [`QTY_DP`] places (a hair of tolerance for a quotient that binary puts
/// just under an exact multiple).
fn floor_qty(x: f64) -> f64 {
    let m = 10f64.powi(QTY_DP);
    (x * m + 1e-6).floor() / m
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0 + 0.0
}

/// A random trade as the baseline settles it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RandomTrade {
    /// The bar whose open filled it and the bar it closed in.
    entry_bar: usize,
    exit_bar: usize,
    quantity: f64,
    exit_reason: &'static str,
    /// After fees, to the cent.
    pnl: f64,
}

/// The levels of a decision for `shape` at `entry`: (take-profit, stop-loss).
fn levels(shape: &TradeShape, entry: f64) -> (f64, f64) {
    match shape.side {
        Side::Buy => (
            entry * (1.0 + shape.take_profit_fraction),
            entry * (1.0 - shape.stop_loss_fraction),
        ),
        Side::Sell => (
            entry * (1.0 - shape.take_profit_fraction),
            entry * (1.0 + shape.stop_loss_fraction),
        ),
    }
}

/// The trade for `shape` decided at bar `t`'s close and filled at bar t+1's open, or `None`
/// when the rules would not make it (a size of 0; at the open, past a level or over the risk
/// limit).
fn trade_at(bars: &[Bar], t: usize, shape: &TradeShape, lim: &Limits) -> Option<RandomTrade> {
    let entry = bars.get(t)?.close;
    let (tp, sl) = levels(shape, entry);
    // rules::size_position: the risk budget over the distance to the stop, capped.
    let distance = (entry - sl).abs();
    let quantity = floor_qty(lim.risk_amount / distance).min(floor_qty(lim.cap_amount / entry));
    if !(quantity > 0.0 && quantity.is_finite()) {
        return None;
    }
    // fill_at_open: the open must not be past a level, nor risk more than the limit (or than
    // the decision's own risk, which sizing keeps under it).
    let bar = bars.get(t + 1)?;
    let side = shape.side;
    if lifecycle::exit_reason(side, bar.open, tp, sl).is_some() {
        return None;
    }
    let allowed = cents(quantity * distance).max(lim.risk_limit);
    if cents(quantity * (bar.open - sl).abs()) > allowed {
        return None;
    }
    let slip = |price: f64, buying: bool| {
        if buying {
            price * (1.0 + lim.slippage_rate)
        } else {
            price * (1.0 - lim.slippage_rate)
        }
    };
    let fill = slip(bar.open, side == Side::Buy);
    if lifecycle::exit_reason(side, fill, tp, sl).is_some() {
        return None;
    }
    let exit = match shape.trail {
        None => fixed_exit(bars, t + 1, side, tp, sl),
        Some(trail) => trailing_exit(
            bars,
            t + 1,
            side,
            tp,
            Trailing::start(trail, side, fill, sl),
        ),
    };
    let last = bars.len() - 1;
    let (exit_bar, level, reason) = exit.unwrap_or((last, bars[last].close, "end"));
    let exit_price = slip(level, side == Side::Sell);
    let gross = match side {
        Side::Buy => quantity * (exit_price - fill),
        Side::Sell => quantity * (fill - exit_price),
    };
    let fees = quantity * fill * lim.fee_rate + quantity * exit_price * lim.fee_rate;
    Some(RandomTrade {
        entry_bar: t + 1,
        exit_bar,
        quantity,
        exit_reason: reason,
        pnl: cents(gross - fees),
    })
}

/// Where a position filled in bar `from` exits with fixed levels: (bar, level, reason).
fn fixed_exit(
    bars: &[Bar],
    mut from: usize,
    side: Side,
    tp: f64,
    sl: f64,
) -> Option<(usize, f64, &'static str)> {
    // A bar can exit the position only if its range reaches a level (the open lies inside
    // the range): find such a bar with two comparisons, then ask the live exit rule.
    let (down, up) = match side {
        Side::Buy => (sl, tp),
        Side::Sell => (tp, sl),
    };
    loop {
        let k = bars
            .get(from..)?
            .iter()
            .position(|b| b.low <= down || b.high >= up)?;
        let (i, b) = (from + k, &bars[from + k]);
        if let Some((exit, level)) = lifecycle::exit_in_bar(side, b.open, b.high, b.low, tp, sl) {
            return Some((i, level, exit.as_str()));
        }
        from = i + 1;
    }
}

/// Where a position filled in bar `from` exits with a trailing stop (its trail and stop at the
/// fill): every bar is a step of the live rule, since each may move the stop.
fn trailing_exit(
    bars: &[Bar],
    from: usize,
    side: Side,
    tp: f64,
    (mut trailing, mut stop): (Trailing, f64),
) -> Option<(usize, f64, &'static str)> {
    for (k, b) in bars.get(from..)?.iter().enumerate() {
        match trail::step_in_bar(side, (b.open, b.high, b.low), tp, stop, Some(trailing)) {
            Step::Exit(exit, level) => return Some((from + k, level, exit.as_str())),
            Step::Open {
                stop: s,
                trailing: t,
            } => (stop, trailing) = (s, t.unwrap_or(trailing)),
        }
    }
    None
}

/// A candle's prices, packed: two bars to a cache line, since a random entry's first read
/// misses the cache and the exit search reads on from there.
#[derive(Debug, Clone, Copy)]
struct Bar {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
}

fn packed(candles: &[Candle]) -> Vec<Bar> {
    candles
        .iter()
        .map(|c| Bar {
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
        })
        .collect()
}

/// Runs made together: their entries are made in the order of their bars, so that the reads
/// move forward through memory instead of missing the cache at every random bar.
const RUNS_TOGETHER: usize = 8;

/// The runs of `seeds` (one each). Run r draws a bar from `lo..=bars.len() − 2` for each shape,
/// in order, from a SplitMix64 seeded with `seeds[r]`; its trades are made in the order of
/// their bars, and a trade the rules refuse at its bar draws again from the same run's
/// generator, up to [`MAX_DRAWS`] bars in all. A run's numbers do not depend on the runs made
/// with it.
fn run_group(
    bars: &[Bar],
    lo: usize,
    shapes: &[TradeShape],
    lim: &Limits,
    start: f64,
    seeds: &[u64],
) -> Vec<RunResult> {
    let hi = bars.len().saturating_sub(2).max(lo);
    let mut rngs: Vec<SplitMix64> = seeds.iter().map(|&s| SplitMix64::new(s)).collect();
    let mut order: Vec<(usize, usize, usize)> = Vec::with_capacity(seeds.len() * shapes.len());
    for (r, rng) in rngs.iter_mut().enumerate() {
        order.extend((0..shapes.len()).map(|k| (rng.in_range(lo, hi), r, k)));
    }
    order.sort_unstable();
    // P&L, wins and trades made, per run.
    let mut made = vec![(0.0f64, 0usize, 0usize); seeds.len()];
    for (t, r, k) in order {
        let shape = &shapes[k];
        let rng = &mut rngs[r];
        let trade = trade_at(bars, t, shape, lim).or_else(|| {
            (1..MAX_DRAWS).find_map(|_| trade_at(bars, rng.in_range(lo, hi), shape, lim))
        });
        if let Some(t) = trade {
            let m = &mut made[r];
            m.0 += t.pnl;
            m.1 += usize::from(t.pnl > 0.0);
            m.2 += 1;
        }
    }
    made.into_iter()
        .map(|(pnl, wins, n)| {
            // Rounded as the strategy's summary is, so that equal results compare equal.
            let final_equity = round_dp(start + pnl, 2);
            RunResult {
                total_return_percent: if start > 0.0 {
                    round_dp((final_equity - start) / start * 100.0, 4)
                } else {
                    0.0
                },
                win_rate: if n == 0 {
                    0.0
                } else {
                    round_dp(wins as f64 / n as f64, 4)
                },
                not_placed: shapes.len() - n,
            }
        })
        .collect()
}

/// The baseline for the strategy's `trades` on `candles`: `options.runs` runs, decisions drawn
/// from `first_decision_bar` on. The strategy's own return and win rate are ranked among them.
pub fn run(
    candles: &[Candle],
    trades: &[Trade],
    first_decision_bar: Option<usize>,
    settings: &Settings,
    options: BaselineOptions,
    strategy: (f64, f64),
) -> Baseline {
    let shapes: Vec<TradeShape> = trades.iter().map(TradeShape::of).collect();
    let buys = shapes.iter().filter(|s| s.side == Side::Buy).count();
    let options = BaselineOptions {
        runs: options.runs_for(shapes.len()),
        ..options
    };
    let mut b = Baseline {
        runs: options.runs,
        seed: options.seed,
        trades_per_run: shapes.len(),
        buys,
        sells: shapes.len() - buys,
        trades_not_placed: 0,
        total_return_percent: None,
        win_rate: None,
        strategy_percentile: None,
        reason: None,
    };
    let lo = first_decision_bar.unwrap_or(0);
    if options.runs == 0 {
        b.reason = Some("not run: --baseline-seeds 0".into());
        return b;
    }
    if shapes.is_empty() {
        b.reason = Some("no trades: nothing to enter at random".into());
        return b;
    }
    if candles.len() < lo + 2 {
        b.reason = Some("too few candles after the analyzer's warm-up to enter a trade".into());
        return b;
    }
    let lim = Limits::of(settings);
    let start = settings.risk.account_size;
    let bars = packed(candles);
    let mut master = SplitMix64::new(options.seed);
    let seeds: Vec<u64> = (0..options.runs).map(|_| master.next_u64()).collect();
    let groups: Vec<&[u64]> = seeds.chunks(RUNS_TOGETHER).collect();
    let run_groups = |groups: &[&[u64]]| -> Vec<RunResult> {
        groups
            .iter()
            .flat_map(|g| run_group(&bars, lo, &shapes, &lim, start, g))
            .collect()
    };
    // The runs are independent: the cores share them, each a contiguous share, joined in
    // order, so the numbers do not depend on how many cores there are.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = groups.len().div_ceil(cores.clamp(1, groups.len().max(1)));
    let results: Vec<RunResult> = if share >= groups.len() {
        run_groups(&groups)
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = groups
                .chunks(share)
                .map(|mine| scope.spawn(|| run_groups(mine)))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    b.trades_not_placed = results.iter().map(|r| r.not_placed).sum();
    let mut returns: Vec<f64> = results.iter().map(|r| r.total_return_percent).collect();
    let mut rates: Vec<f64> = results.iter().map(|r| r.win_rate).collect();
    let (strategy_return, strategy_win_rate) = strategy;
    b.strategy_percentile = percentile_rank(&returns, strategy_return)
        .zip(percentile_rank(&rates, strategy_win_rate))
        .map(|(total_return_percent, win_rate)| StrategyRank {
            total_return_percent,
            win_rate,
        });
    b.total_return_percent = Distribution::of(&mut returns, 4);
    b.win_rate = Distribution::of(&mut rates, 4);
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_runs_shrink_for_a_strategy_that_trades_a_lot_and_given_runs_stand() {
        let d = BaselineOptions::default();
        assert_eq!(d.runs_for(60), 200);
        assert_eq!(d.runs_for(38_000), 52);
        assert_eq!(d.runs_for(1_000_000), MIN_BUDGET_RUNS);
        assert_eq!(d.runs_for(0), 200);
        assert_eq!(BaselineOptions::exactly(200, 1).runs_for(38_000), 200);
    }

    use super::*;
    use crate::backtest::replay::{Open, close, fill_at_open};
    use crate::domain::rules::{self, Decision, RiskSettings};
    use crate::domain::{Direction, Phase, Verdict};
    use crate::simulated::MarketGenerator;

    /// The trade the live functions make for `shape` at bar `t`: decimal sizing, the real fill
    /// check, the replay's own settlement.
    fn exact_trade(
        candles: &[Candle],
        t: usize,
        shape: &TradeShape,
        settings: &Settings,
    ) -> Option<Trade> {
        let entry = candles[t].close;
        let (tp, sl) = levels(shape, entry);
        let quantity = rules::size_position(&settings.risk, entry, sl).quantity;
        if !(quantity > 0.0 && quantity.is_finite()) {
            return None;
        }
        let action = match shape.side {
            Side::Buy => Verdict::Buy,
            Side::Sell => Verdict::Sell,
        };
        // Built from a HOLD and filled in, so that fields the rules add later need no change.
        let mut decision = Decision::untrusted(
            &settings.symbol,
            String::new(),
            serde_json::Value::Null,
            Some(Phase::Accumulation),
        );
        decision.action = action;
        decision.entry_price = Some(entry);
        decision.take_profit = Some(tp);
        decision.stop_loss = Some(sl);
        decision.position_size = quantity;
        decision.risk_reward = Some(rules::risk_reward(quantity, entry, tp, sl));
        let bar = candles.get(t + 1)?;
        let filled = fill_at_open(&decision, bar, settings).ok()?;
        decision.trail = shape.trail;
        let mut open = Open::new(
            &decision,
            filled,
            t + 1,
            bar.open,
            Direction::Bullish,
            settings,
        );
        for (i, b) in candles.iter().enumerate().skip(t + 1) {
            match trail::step_in_bar(
                open.side,
                (b.open, b.high, b.low),
                open.take_profit,
                open.stop,
                open.trailing,
            ) {
                Step::Exit(exit, level) => {
                    return Some(close(&open, i, level, exit.as_str(), settings));
                }
                Step::Open { stop, trailing } => (open.stop, open.trailing) = (stop, trailing),
            }
        }
        let last = candles.len() - 1;
        Some(close(&open, last, candles[last].close, "end", settings))
    }

    #[test]
    fn the_binary_trade_is_the_live_rules_trade() {
        let mut g = MarketGenerator::new(5, 65_000.0, 1_704_067_200, 3600);
        let candles: Vec<Candle> = (0..3_000).map(|_| g.next_candle().0).collect();
        let bars = packed(&candles);
        let mut rng = SplitMix64::new(11);
        let mut checked = 0;
        for (fee_percent, slippage_percent, cap) in
            [(0.1, 0.0, 20.0), (0.25, 0.05, 100.0), (0.0, 0.2, 5.0)]
        {
            let settings = Settings {
                symbol: "BTC/USD".into(),
                risk: RiskSettings {
                    account_size: 10_000.0,
                    max_risk_percent: 1.5,
                    max_position_percent: cap,
                    min_confidence: 0.75,
                },
                max_open_positions: 1,
                fee_percent,
                slippage_percent,
                trail: None,
            };
            let lim = Limits::of(&settings);
            for _ in 0..1_000 {
                let shape = TradeShape {
                    side: if rng.next_u64().is_multiple_of(2) {
                        Side::Buy
                    } else {
                        Side::Sell
                    },
                    take_profit_fraction: 0.001 + rng.in_range(0, 400) as f64 / 10_000.0,
                    stop_loss_fraction: 0.001 + rng.in_range(0, 200) as f64 / 10_000.0,
                    // Two in three trail, by a percent or an amount.
                    trail: match rng.in_range(0, 2) {
                        0 => Some(Trail::Percent(0.1 + rng.in_range(0, 30) as f64 / 10.0)),
                        1 => Some(Trail::Amount(rng.in_range(50, 2_000) as f64)),
                        _ => None,
                    },
                };
                let t = rng.in_range(0, candles.len() - 2);
                let fast = trade_at(&bars, t, &shape, &lim);
                let exact = exact_trade(&candles, t, &shape, &settings);
                match (fast, exact) {
                    (None, None) => {}
                    (Some(f), Some(e)) => {
                        checked += 1;
                        assert_eq!((f.entry_bar, f.exit_bar), (e.entry_bar, e.exit_bar));
                        assert_eq!(f.exit_reason, e.exit_reason);
                        assert!((f.quantity - e.quantity).abs() <= 1e-8, "{f:?} {e:?}");
                        assert!((f.pnl - e.pnl).abs() <= 0.011, "{f:?} {e:?}");
                        assert_eq!(f.pnl > 0.0, e.pnl > 0.0, "{f:?} {e:?}");
                    }
                    (f, e) => panic!("bar {t} {shape:?}: {f:?} vs {e:?}"),
                }
            }
        }
        assert!(checked > 2_500, "{checked}");
    }

    #[test]
    fn splitmix64_gives_the_reference_sequence() {
        // The first outputs for seed 1234567 in the reference implementation (Vigna's
        // splitmix64.c), so that every machine draws the same bars.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn in_range_stays_inside_and_reaches_both_ends() {
        let mut r = SplitMix64::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = r.in_range(10, 14);
            assert!((10..=14).contains(&v));
            seen[v - 10] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.in_range(3, 3), 3);
    }

    #[test]
    fn percentiles_and_ranks_by_hand() {
        // 1..=11: median 6; the 5th percentile is at position 0.5 (1.5), the 95th at 9.5 (10.5).
        let mut v: Vec<f64> = (1..=11).rev().map(f64::from).collect();
        let d = Distribution::of(&mut v, 4).unwrap();
        assert_eq!((d.mean, d.median, d.p5, d.p95), (6.0, 6.0, 1.5, 10.5));
        // 6 is above five values and ties one: (5 + 0.5) / 11.
        assert_eq!(percentile_rank(&v, 6.0), Some(50.0));
        assert_eq!(percentile_rank(&v, 100.0), Some(100.0));
        assert_eq!(percentile_rank(&v, 0.0), Some(0.0));
        assert_eq!(percentile_rank(&[], 1.0), None);
        assert_eq!(Distribution::of(&mut [], 4), None);
    }
}
