//! The TOML config: schema, defaults, search order and validation that names the key and the file.

use crate::domain::rules::RiskSettings;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Default check interval for the simulated market, in minutes (a decision within seconds of start).
pub const SIM_CHECK_INTERVAL_MINUTES: f64 = 0.25;
/// Default check interval against an ML engine, in minutes (the seed's).
pub const ML_CHECK_INTERVAL_MINUTES: f64 = 5.0;
/// Longest a decision may stay pending: 30 days (at least two of the longest check intervals).
pub const MAX_PENDING_EXPIRY_MINUTES: f64 = 43_200.0;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    auto_trade: AutoTradeFile,
    #[serde(default)]
    account: AccountFile,
    ml_engine: Option<MlEngineFile>,
    #[serde(default)]
    simulation: SimulationFile,
    #[serde(default)]
    backtest: BacktestFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoTradeFile {
    user_id: Option<String>,
    enabled: Option<bool>,
    symbols: Option<Vec<String>>,
    max_risk_percent: Option<f64>,
    min_confidence: Option<f64>,
    paper_trading: Option<bool>,
    require_confirmation: Option<bool>,
    max_open_positions: Option<i64>,
    check_interval_minutes: Option<f64>,
    pending_expiry_minutes: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    size: Option<f64>,
    max_position_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MlEngineFile {
    url: Option<String>,
    timeout_seconds: Option<f64>,
    max_concurrent_requests: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulationFile {
    seed: Option<u64>,
    seconds_per_candle: Option<f64>,
    start_prices: Option<std::collections::BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BacktestFile {
    fee_percent: Option<f64>,
    slippage_percent: Option<f64>,
}

/// Auto-trading settings: the seed's AutoTradeConfig.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoTrade {
    pub user_id: String,
    pub enabled: bool,
    pub symbols: Vec<String>,
    pub max_risk_percent: f64,
    pub min_confidence: f64,
    pub paper_trading: bool,
    pub require_confirmation: bool,
    pub max_open_positions: usize,
    pub check_interval_minutes: f64,
    pub pending_expiry_minutes: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub size: f64,
    pub max_position_percent: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MlEngine {
    pub url: String,
    pub timeout_seconds: f64,
    pub max_concurrent_requests: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    pub seed: u64,
    pub seconds_per_candle: f64,
    pub start_prices: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    pub fee_percent: f64,
    pub slippage_percent: f64,
}

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub auto_trade: AutoTrade,
    pub account: Account,
    /// `None`: the built-in simulated market.
    pub ml_engine: Option<MlEngine>,
    pub simulation: Simulation,
    pub backtest: Backtest,
    /// Where the config came from, for messages ("built-in defaults" when no file).
    pub source: String,
}

/// A config problem: the message names the key and the file. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    pub fn risk(&self) -> RiskSettings {
        RiskSettings {
            account_size: self.account.size,
            max_risk_percent: self.auto_trade.max_risk_percent,
            max_position_percent: self.account.max_position_percent,
            min_confidence: self.auto_trade.min_confidence,
        }
    }

    pub fn is_simulated(&self) -> bool {
        self.ml_engine.is_none()
    }

    pub fn source_name(&self) -> &'static str {
        if self.is_simulated() {
            "simulated"
        } else {
            "ml_engine"
        }
    }

    pub fn mode(&self) -> &'static str {
        if self.auto_trade.paper_trading {
            "paper"
        } else {
            "live"
        }
    }

    pub fn check_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.auto_trade.check_interval_minutes * 60.0)
    }

    pub fn pending_expiry(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.auto_trade.pending_expiry_minutes * 60.0)
    }

    /// Built-in defaults: the simulated market, paper trading.
    pub fn defaults() -> Config {
        match parse_str("", "built-in defaults") {
            Ok(c) => c,
            // The empty document is always valid; this arm is unreachable in practice.
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }

    /// Find and load the config: `--config`, `$AUTOTRADE_CONFIG`, the user's config dir, defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(p) = explicit {
            return load_file(p);
        }
        if let Some(p) = std::env::var_os("AUTOTRADE_CONFIG").filter(|s| !s.is_empty()) {
            return load_file(Path::new(&p));
        }
        if let Some(dirs) = directories::ProjectDirs::from("", "", "autotrade-tui") {
            let p = dirs.config_dir().join("config.toml");
            if p.exists() {
                return load_file(&p);
            }
        }
        Ok(Config::defaults())
    }
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
    parse_str(&text, &path.display().to_string())
}

/// Parse and validate a TOML document; `origin` names it in messages.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let syntax = |e: toml::de::Error| {
        ConfigError(format!(
            "invalid config in {origin}: {}",
            e.to_string().trim_end()
        ))
    };
    // serde_path_to_error names the key of a wrong type ("auto_trade.max_risk_percent").
    let de = toml::Deserializer::parse(text).map_err(syntax)?;
    let file: FileConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            syntax(inner)
        } else {
            ConfigError(format!(
                "invalid config in {origin}: {path}: {}",
                inner.to_string().trim_end()
            ))
        }
    })?;
    let bad = |key: &str, value: String, rule: &str| {
        ConfigError(format!(
            "invalid config in {origin}: {key} = {value} is out of range: {rule}"
        ))
    };

    let at = file.auto_trade;
    let symbols = at
        .symbols
        .unwrap_or_else(|| vec!["BTC/USD".into(), "ETH/USD".into(), "SOL/USD".into()]);
    if symbols.is_empty() {
        return Err(bad(
            "auto_trade.symbols",
            "[]".into(),
            "list at least one symbol",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &symbols {
        if !valid_symbol(s) {
            return Err(ConfigError(format!(
                "invalid config in {origin}: auto_trade.symbols: {s:?} is not BASE/QUOTE (letters and digits only, e.g. \"BTC/USD\")"
            )));
        }
        if !seen.insert(s.clone()) {
            return Err(ConfigError(format!(
                "invalid config in {origin}: auto_trade.symbols: {s:?} is listed twice"
            )));
        }
    }
    let user_id = at.user_id.unwrap_or_else(|| "default".into());
    if user_id.trim().is_empty() || user_id.len() > 64 || user_id.chars().any(|c| c.is_control()) {
        return Err(ConfigError(format!(
            "invalid config in {origin}: auto_trade.user_id {user_id:?} must be 1 to 64 printable characters"
        )));
    }
    let max_risk_percent = at.max_risk_percent.unwrap_or(1.5);
    if !(max_risk_percent > 0.0 && max_risk_percent <= 100.0) {
        return Err(bad(
            "auto_trade.max_risk_percent",
            max_risk_percent.to_string(),
            "must be > 0 and <= 100",
        ));
    }
    let min_confidence = at.min_confidence.unwrap_or(0.75);
    if !(0.0..=1.0).contains(&min_confidence) {
        return Err(bad(
            "auto_trade.min_confidence",
            min_confidence.to_string(),
            "must be between 0 and 1",
        ));
    }
    let max_open_positions = at.max_open_positions.unwrap_or(3);
    if !(1..=10_000).contains(&max_open_positions) {
        return Err(bad(
            "auto_trade.max_open_positions",
            max_open_positions.to_string(),
            "must be between 1 and 10000",
        ));
    }
    let simulated = file
        .ml_engine
        .as_ref()
        .and_then(|m| m.url.as_ref())
        .is_none();
    let default_interval = if simulated {
        SIM_CHECK_INTERVAL_MINUTES
    } else {
        ML_CHECK_INTERVAL_MINUTES
    };
    let check_interval_minutes = at.check_interval_minutes.unwrap_or(default_interval);
    // At least 0.001 min (60 ms): a smaller value would be a loop that never rests.
    if !(0.001..=1440.0 * 7.0).contains(&check_interval_minutes) {
        return Err(bad(
            "auto_trade.check_interval_minutes",
            check_interval_minutes.to_string(),
            "must be between 0.001 (60 ms; fractions allowed, 0.05 = 3 s) and 10080 (a week)",
        ));
    }
    let pending_expiry_minutes = at
        .pending_expiry_minutes
        .unwrap_or(2.0 * check_interval_minutes);
    // Bounded so that it is a valid duration: 1e300 minutes used to panic at start.
    if !(pending_expiry_minutes > 0.0 && pending_expiry_minutes <= MAX_PENDING_EXPIRY_MINUTES) {
        return Err(bad(
            "auto_trade.pending_expiry_minutes",
            pending_expiry_minutes.to_string(),
            "must be > 0 and at most 43200 (30 days)",
        ));
    }

    let size = file.account.size.unwrap_or(10_000.0);
    // Bounded so that sizes and P&L stay exact to the cent in f64.
    if !(size > 0.0 && size <= 1e12) {
        return Err(bad(
            "account.size",
            size.to_string(),
            "must be > 0 and at most 1e12",
        ));
    }
    let max_position_percent = file.account.max_position_percent.unwrap_or(20.0);
    if !(max_position_percent > 0.0 && max_position_percent <= 100.0) {
        return Err(bad(
            "account.max_position_percent",
            max_position_percent.to_string(),
            "must be > 0 and <= 100",
        ));
    }

    let ml_engine = match file.ml_engine {
        Some(MlEngineFile {
            url: Some(url),
            timeout_seconds,
            max_concurrent_requests,
        }) => {
            let url = url.trim_end_matches('/').to_string();
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(&url).is_err()
            {
                return Err(ConfigError(format!(
                    "invalid config in {origin}: ml_engine.url {url:?} must be an http:// or https:// URL"
                )));
            }
            let timeout_seconds = timeout_seconds.unwrap_or(10.0);
            if !(0.01..=600.0).contains(&timeout_seconds) {
                return Err(bad(
                    "ml_engine.timeout_seconds",
                    timeout_seconds.to_string(),
                    "must be between 0.01 and 600",
                ));
            }
            let max_concurrent_requests = max_concurrent_requests.unwrap_or(512);
            if !(1..=4096).contains(&max_concurrent_requests) {
                return Err(bad(
                    "ml_engine.max_concurrent_requests",
                    max_concurrent_requests.to_string(),
                    "must be between 1 and 4096",
                ));
            }
            Some(MlEngine {
                url,
                timeout_seconds,
                max_concurrent_requests: max_concurrent_requests as usize,
            })
        }
        _ => None,
    };

    let sim = file.simulation;
    let seconds_per_candle = sim.seconds_per_candle.unwrap_or(1.5);
    if !(0.05..=86_400.0).contains(&seconds_per_candle) {
        return Err(bad(
            "simulation.seconds_per_candle",
            seconds_per_candle.to_string(),
            "must be between 0.05 and 86400",
        ));
    }
    let start_prices = sim.start_prices.unwrap_or_default();
    for (sym, p) in &start_prices {
        if !(*p > 0.0 && p.is_finite()) {
            return Err(bad(
                &format!("simulation.start_prices.\"{sym}\""),
                p.to_string(),
                "must be > 0",
            ));
        }
    }

    let fee_percent = file.backtest.fee_percent.unwrap_or(0.1);
    if !(0.0..=10.0).contains(&fee_percent) {
        return Err(bad(
            "backtest.fee_percent",
            fee_percent.to_string(),
            "must be between 0 and 10",
        ));
    }
    let slippage_percent = file.backtest.slippage_percent.unwrap_or(0.0);
    if !(0.0..=10.0).contains(&slippage_percent) {
        return Err(bad(
            "backtest.slippage_percent",
            slippage_percent.to_string(),
            "must be between 0 and 10",
        ));
    }

    Ok(Config {
        auto_trade: AutoTrade {
            user_id,
            enabled: at.enabled.unwrap_or(true),
            symbols,
            max_risk_percent,
            min_confidence,
            paper_trading: at.paper_trading.unwrap_or(true),
            require_confirmation: at.require_confirmation.unwrap_or(true),
            max_open_positions: max_open_positions as usize,
            check_interval_minutes,
            pending_expiry_minutes,
        },
        account: Account {
            size,
            max_position_percent,
        },
        ml_engine,
        simulation: Simulation {
            seed: sim.seed.unwrap_or(42),
            seconds_per_candle,
            start_prices,
        },
        backtest: Backtest {
            fee_percent,
            slippage_percent,
        },
        source: origin.to_string(),
    })
}

/// `BASE/QUOTE`, letters and digits only, each side 1 to 12 characters.
pub fn valid_symbol(s: &str) -> bool {
    let Some((base, quote)) = s.split_once('/') else {
        return false;
    };
    let ok =
        |p: &str| !p.is_empty() && p.len() <= 12 && p.chars().all(|c| c.is_ascii_alphanumeric());
    ok(base) && ok(quote)
}

/// The data dir: `--data-dir`, `$AUTOTRADE_DATA_DIR`, the user's data dir.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("AUTOTRADE_DATA_DIR").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "autotrade-tui")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            ConfigError("cannot find a data dir: set --data-dir or AUTOTRADE_DATA_DIR".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_simulated_paper_trading() {
        let c = Config::defaults();
        assert!(c.is_simulated());
        assert!(c.auto_trade.paper_trading);
        assert!(c.auto_trade.require_confirmation);
        assert_eq!(c.auto_trade.symbols, vec!["BTC/USD", "ETH/USD", "SOL/USD"]);
        assert_eq!(
            c.auto_trade.check_interval_minutes,
            SIM_CHECK_INTERVAL_MINUTES
        );
        assert_eq!(
            c.auto_trade.pending_expiry_minutes,
            2.0 * SIM_CHECK_INTERVAL_MINUTES
        );
    }

    #[test]
    fn ml_engine_url_switches_source_and_default_interval() {
        let c = parse_str("[ml_engine]\nurl = \"http://127.0.0.1:9/\"\n", "t.toml").unwrap();
        assert_eq!(c.ml_engine.as_ref().unwrap().url, "http://127.0.0.1:9");
        assert_eq!(c.auto_trade.check_interval_minutes, 5.0);
        assert_eq!(c.auto_trade.pending_expiry_minutes, 10.0);
    }

    #[test]
    fn negative_risk_is_refused_naming_key_and_file() {
        let e = parse_str("[auto_trade]\nmax_risk_percent = -1.0\n", "/etc/at.toml").unwrap_err();
        assert!(e.0.contains("auto_trade.max_risk_percent"), "{e}");
        assert!(e.0.contains("/etc/at.toml"), "{e}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let e = parse_str("[auto_trade]\nmax_risk_percnt = 1.0\n", "c.toml").unwrap_err();
        assert!(e.0.contains("max_risk_percnt"), "{e}");
        assert!(e.0.contains("c.toml"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = parse_str("[auto_trade]\nmax_risk_percent = \"lots\"\n", "c.toml").unwrap_err();
        assert!(e.0.contains("auto_trade.max_risk_percent"), "{e}");
        assert!(e.0.contains("c.toml"), "{e}");
    }

    #[test]
    fn bad_symbol_is_refused() {
        let e = parse_str("[auto_trade]\nsymbols = [\"BTCUSD\"]\n", "c.toml").unwrap_err();
        assert!(e.0.contains("BTCUSD"), "{e}");
        assert!(!valid_symbol("BTC/US-D"));
        assert!(valid_symbol("ETH/USDT"));
    }

    #[test]
    fn every_range_is_checked() {
        for (doc, key) in [
            (
                "[auto_trade]\nmin_confidence = 1.5",
                "auto_trade.min_confidence",
            ),
            (
                "[auto_trade]\nmax_open_positions = 0",
                "auto_trade.max_open_positions",
            ),
            (
                "[auto_trade]\ncheck_interval_minutes = 0",
                "auto_trade.check_interval_minutes",
            ),
            (
                "[auto_trade]\npending_expiry_minutes = -2",
                "auto_trade.pending_expiry_minutes",
            ),
            ("[account]\nsize = 0", "account.size"),
            (
                "[account]\nmax_position_percent = 101",
                "account.max_position_percent",
            ),
            (
                "[ml_engine]\nurl = \"http://x\"\ntimeout_seconds = 0",
                "ml_engine.timeout_seconds",
            ),
            ("[backtest]\nfee_percent = -0.1", "backtest.fee_percent"),
        ] {
            let e = parse_str(doc, "c.toml").unwrap_err();
            assert!(e.0.contains(key), "{doc}: {e}");
        }
    }

    #[test]
    fn example_config_is_valid_and_matches_defaults() {
        let text = include_str!("../config.example.toml");
        let c = parse_str(text, "config.example.toml").unwrap();
        let d = Config::defaults();
        assert_eq!(c.account, d.account);
        assert_eq!(c.auto_trade.max_risk_percent, d.auto_trade.max_risk_percent);
        assert_eq!(c.auto_trade.min_confidence, d.auto_trade.min_confidence);
    }
}
