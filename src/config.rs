//! The TOML config: schema, defaults, search order and validation that names the key and the file.

use crate::domain::rules::RiskSettings;
use std::path::{Path, PathBuf};

/// Default check interval for the simulated market, in minutes (a decision within seconds of start).
pub const SIM_CHECK_INTERVAL_MINUTES: f64 = 0.25;
/// Default check interval against an ML engine, in minutes (the seed's).
pub const ML_CHECK_INTERVAL_MINUTES: f64 = 5.0;
/// Longest a decision may stay pending: 30 days (at least two of the longest check intervals).
pub const MAX_PENDING_EXPIRY_MINUTES: f64 = 43_200.0;
pub const MAX_OUTCOME_HORIZON_HOURS: f64 = 8_760.0;

/// The file as written, each value of the right type or absent (a wrong one is a problem noted).
#[derive(Debug, Clone, Default)]
struct FileConfig {
    auto_trade: AutoTradeFile,
    account: AccountFile,
    ml_engine: Option<MlEngineFile>,
    simulation: SimulationFile,
    backtest: BacktestFile,
    market_data: MarketDataFile,
    broker: BrokerFile,
    risk: RiskFile,
    notifications: NotificationsFile,
    store: StoreFile,
}

#[derive(Debug, Clone, Default)]
struct StoreFile {
    url: Option<String>,
    pool_size: Option<i64>,
    max_users: Option<i64>,
}

#[derive(Debug, Clone, Default)]
struct BrokerFile {
    kind: Option<String>,
    trading_url: Option<String>,
    data_url: Option<String>,
    timeout_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct MarketDataFile {
    provider: Option<String>,
    stale_after_seconds: Option<f64>,
    url: Option<String>,
    stream_url: Option<String>,
    stock_feed: Option<String>,
}

#[derive(Debug, Clone, Default)]
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
    outcome_horizon_hours: Option<f64>,
    calibrated_confidence: Option<bool>,
}

#[derive(Debug, Clone, Default)]
struct AccountFile {
    size: Option<f64>,
    max_position_percent: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct MlEngineFile {
    url: Option<String>,
    timeout_seconds: Option<f64>,
    max_concurrent_requests: Option<i64>,
}

#[derive(Debug, Clone, Default)]
struct SimulationFile {
    seed: Option<u64>,
    seconds_per_candle: Option<f64>,
    start_prices: Option<std::collections::BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, Default)]
struct RiskFile {
    daily_loss_limit_percent: Option<f64>,
    max_drawdown_percent: Option<f64>,
    trailing_stop_percent: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct NotificationsFile {
    bell: Option<bool>,
    desktop: Option<bool>,
    webhook_url: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct BacktestFile {
    fee_percent: Option<f64>,
    slippage_percent: Option<f64>,
}

/// The tables a config file may have.
const TABLES: [&str; 10] = [
    "auto_trade",
    "account",
    "ml_engine",
    "market_data",
    "broker",
    "risk",
    "notifications",
    "simulation",
    "backtest",
    "store",
];

/// One table of the file, read key by key so that every problem is noted, not only the first.
struct TableReader<'p> {
    name: &'static str,
    keys: toml::Table,
    known: Vec<&'static str>,
    problems: &'p mut Vec<String>,
}

impl<'p> TableReader<'p> {
    /// The table `name` taken out of the document (empty when absent or not a table).
    fn new(doc: &mut toml::Table, name: &'static str, problems: &'p mut Vec<String>) -> Self {
        let keys = match doc.remove(name) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                problems.push(format!(
                    "{name} must be a table ([{name}]), not a {}",
                    other.type_str()
                ));
                toml::Table::new()
            }
        };
        TableReader {
            name,
            keys,
            known: Vec::new(),
            problems,
        }
    }

    /// The value of `key` when present and of the right type; a wrong type is a problem.
    fn take<T: serde::de::DeserializeOwned>(&mut self, key: &'static str) -> Option<T> {
        self.known.push(key);
        let value = self.keys.remove(key)?;
        match value.try_into::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                // The message may quote the value: an address in it is shown redacted.
                let why = crate::net::redact_text(e.to_string().trim_end());
                self.problems.push(format!("{}.{key}: {why}", self.name));
                None
            }
        }
    }

    /// Every key not taken is one the table does not have.
    fn finish(self) {
        for key in self.keys.keys() {
            let hint = match crate::suggest::nearest(key, self.known.iter().copied()) {
                Some(k) => format!("did you mean {}.{k}?", self.name),
                None => format!("[{}] has {}", self.name, self.known.join(", ")),
            };
            self.problems
                .push(format!("{}.{key}: unknown key; {hint}", self.name));
        }
    }
}

/// Read the document's tables and keys, noting every unknown key and wrong type.
fn read_file(mut doc: toml::Table, problems: &mut Vec<String>) -> FileConfig {
    let mut t = TableReader::new(&mut doc, "auto_trade", problems);
    let auto_trade = AutoTradeFile {
        user_id: t.take("user_id"),
        enabled: t.take("enabled"),
        symbols: t.take("symbols"),
        max_risk_percent: t.take("max_risk_percent"),
        min_confidence: t.take("min_confidence"),
        paper_trading: t.take("paper_trading"),
        require_confirmation: t.take("require_confirmation"),
        max_open_positions: t.take("max_open_positions"),
        check_interval_minutes: t.take("check_interval_minutes"),
        pending_expiry_minutes: t.take("pending_expiry_minutes"),
        outcome_horizon_hours: t.take("outcome_horizon_hours"),
        calibrated_confidence: t.take("calibrated_confidence"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "account", problems);
    let account = AccountFile {
        size: t.take("size"),
        max_position_percent: t.take("max_position_percent"),
    };
    t.finish();
    let has_ml_engine = doc.contains_key("ml_engine");
    let mut t = TableReader::new(&mut doc, "ml_engine", problems);
    let ml_engine = MlEngineFile {
        url: t.take("url"),
        timeout_seconds: t.take("timeout_seconds"),
        max_concurrent_requests: t.take("max_concurrent_requests"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "market_data", problems);
    let market_data = MarketDataFile {
        provider: t.take("provider"),
        stale_after_seconds: t.take("stale_after_seconds"),
        url: t.take("url"),
        stream_url: t.take("stream_url"),
        stock_feed: t.take("stock_feed"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "broker", problems);
    let broker = BrokerFile {
        kind: t.take("kind"),
        trading_url: t.take("trading_url"),
        data_url: t.take("data_url"),
        timeout_seconds: t.take("timeout_seconds"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "simulation", problems);
    let simulation = SimulationFile {
        seed: t.take("seed"),
        seconds_per_candle: t.take("seconds_per_candle"),
        start_prices: t.take("start_prices"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "backtest", problems);
    let backtest = BacktestFile {
        fee_percent: t.take("fee_percent"),
        slippage_percent: t.take("slippage_percent"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "risk", problems);
    let risk = RiskFile {
        daily_loss_limit_percent: t.take("daily_loss_limit_percent"),
        max_drawdown_percent: t.take("max_drawdown_percent"),
        trailing_stop_percent: t.take("trailing_stop_percent"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "notifications", problems);
    let notifications = NotificationsFile {
        bell: t.take("bell"),
        desktop: t.take("desktop"),
        webhook_url: t.take("webhook_url"),
    };
    t.finish();
    let mut t = TableReader::new(&mut doc, "store", problems);
    let store = StoreFile {
        url: t.take("url"),
        pool_size: t.take("pool_size"),
        max_users: t.take("max_users"),
    };
    t.finish();
    for (key, value) in &doc {
        let hint = match crate::suggest::nearest(key, TABLES) {
            Some(t) => format!("did you mean [{t}]?"),
            None => format!("the tables are [{}]", TABLES.join("], [")),
        };
        problems.push(match value {
            toml::Value::Table(_) => format!("[{key}]: unknown table; {hint}"),
            _ => format!("{key}: unknown key at the top level; {hint}"),
        });
    }
    FileConfig {
        auto_trade,
        account,
        ml_engine: has_ml_engine.then_some(ml_engine),
        simulation,
        backtest,
        market_data,
        broker,
        risk,
        notifications,
        store,
    }
}

/// Where prices come from between checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// The entry price of each symbol's latest ML signal (prices as old as the check interval).
    MlEngine,
    /// The built-in simulated market.
    Simulated,
    /// Alpaca's market data: crypto without keys (polled), streamed with keys.
    Alpaca,
    /// Coinbase Exchange's public feed, no account.
    Coinbase,
}

impl PriceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::MlEngine => "ml_engine",
            PriceSource::Simulated => "simulated",
            PriceSource::Alpaca => "alpaca",
            PriceSource::Coinbase => "coinbase",
        }
    }
    /// A live feed that runs beside the checks (not the check's own source).
    pub fn is_feed(self) -> bool {
        matches!(self, PriceSource::Alpaca | PriceSource::Coinbase)
    }
}

/// Where orders go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// The built-in ledger: every order fills at once at the checked price.
    Paper,
    /// Alpaca's trading API: its paper account unless live is armed.
    Alpaca,
}

/// `[broker]`: where orders go. Keys come from the environment only.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    pub kind: BrokerKind,
    /// The trading API's address (a test server); default: Alpaca's paper or live host.
    pub trading_url: Option<String>,
    /// The market data API's address for the Alpaca feed, when `[market_data] url` is not set.
    pub data_url: Option<String>,
    /// How long a request to the broker may take before its outcome is unknown.
    pub timeout_seconds: f64,
}

impl BrokerConfig {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.timeout_seconds)
    }
}

/// Which of Alpaca's US stock feeds prices stocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockFeed {
    /// The Investors Exchange alone: free with any Alpaca account.
    Iex,
    /// Every US exchange (the consolidated tape): a paid Alpaca data plan.
    Sip,
}

impl StockFeed {
    pub fn as_str(self) -> &'static str {
        match self {
            StockFeed::Iex => "iex",
            StockFeed::Sip => "sip",
        }
    }
}

/// `[market_data]`: where prices come from and how old one may be.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketData {
    pub provider: PriceSource,
    /// A price older than this is stale: no fill, no TP/SL on it.
    pub stale_after_seconds: f64,
    /// The provider's REST address (a test server); its stream is at `stream_url`, or derived.
    pub url: Option<String>,
    pub stream_url: Option<String>,
    /// Alpaca's feed for US stocks.
    pub stock_feed: StockFeed,
}

impl MarketData {
    pub fn stale_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.stale_after_seconds)
    }
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
    /// How long a decision is followed on later prices before its outcome is judged at the
    /// last price (see `domain::outcome`).
    pub outcome_horizon_hours: f64,
    /// Show and gate on the confidence calibrated on the source's own outcomes, once it has
    /// enough of them (`analytics::CALIBRATION_MIN_OUTCOMES`).
    pub calibrated_confidence: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub size: f64,
    pub max_position_percent: f64,
}

#[derive(Clone, PartialEq)]
pub struct MlEngine {
    pub url: String,
    pub timeout_seconds: f64,
    pub max_concurrent_requests: usize,
}

/// The address may hold a password: a debug print shows it redacted.
impl std::fmt::Debug for MlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlEngine")
            .field("url", &crate::net::redact_url(&self.url))
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    pub seed: u64,
    pub seconds_per_candle: f64,
    pub start_prices: std::collections::BTreeMap<String, f64>,
}

/// Portfolio guards: loss halts and the default trailing stop (`[risk]`). A limit of 0 is off.
#[derive(Debug, Clone, PartialEq)]
pub struct Risk {
    /// Halt new entries when today's (UTC) loss reaches this percent of the day's starting equity.
    pub daily_loss_limit_percent: f64,
    /// Halt new entries when equity falls this percent below its peak.
    pub max_drawdown_percent: f64,
    /// The trail given to a new position that names none: its stop follows the best price by
    /// this percent of that price, never loosening.
    pub trailing_stop_percent: f64,
}

/// What reaches the trader when something happens (`[notifications]`).
#[derive(Clone, PartialEq)]
pub struct Notifications {
    /// The terminal bell, on the dashboard's terminal.
    pub bell: bool,
    /// A desktop notification through the terminal (OSC 9 and OSC 777).
    pub desktop: bool,
    /// A JSON POST per event.
    pub webhook_url: Option<String>,
}

/// The webhook's address is a secret: a debug print shows its host only.
impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.webhook_url.as_deref().map(|u| {
            reqwest::Url::parse(u)
                .map(|u| crate::notify::webhook::host_of(&u))
                .unwrap_or_else(|_| "?".into())
        });
        f.debug_struct("Notifications")
            .field("bell", &self.bell)
            .field("desktop", &self.desktop)
            .field("webhook_host", &host)
            .finish()
    }
}

/// Where the rows live (`[store]`): SQLite in the data dir, or a PostgreSQL database that
/// several `serve` instances share.
#[derive(Clone, PartialEq)]
pub struct StoreConfig {
    pub url: Option<String>,
    /// Connections each process keeps to PostgreSQL.
    pub pool_size: u32,
    /// Most users one `serve` trades for.
    pub max_users: usize,
}

/// The URL may carry a password (from the environment): a debug print redacts it.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(crate::net::redact_url))
            .field("pool_size", &self.pool_size)
            .field("max_users", &self.max_users)
            .finish()
    }
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
    pub market_data: MarketData,
    pub broker: BrokerConfig,
    pub risk_limits: Risk,
    pub notifications: Notifications,
    pub store: StoreConfig,
    /// Where the config came from, for messages ("built-in defaults" when no file).
    pub source: String,
}

/// A config problem: the message names the key and the file. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// `[store] url` (or `$AUTOTRADE_STORE_URL`): the PostgreSQL database, when set.
    pub fn store_url(&self) -> Option<String> {
        self.store.url.clone()
    }

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

    /// How long a decision is followed before its outcome is judged at the last price, ms.
    pub fn outcome_horizon_ms(&self) -> i64 {
        (self.auto_trade.outcome_horizon_hours * 3_600_000.0) as i64
    }

    /// What scores the automatic decisions: the ML engine, or the built-in analyzer.
    pub fn score_source(&self) -> &'static str {
        if self.is_simulated() {
            crate::domain::outcome::source::ANALYZER
        } else {
            crate::domain::outcome::source::ML_ENGINE
        }
    }

    /// Built-in defaults: the simulated market, paper trading.
    pub fn defaults() -> Config {
        match parse_str("", "built-in defaults") {
            Ok(c) => c,
            // The empty document is always valid; this arm is unreachable in practice.
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }

    /// Find and load the config: `--config`, `$AUTOTRADE_CONFIG`, the user's config dir,
    /// defaults; then the environment over it (`$AUTOTRADE_WEBHOOK_URL`).
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = Config::load_file_or_defaults(explicit)?;
        let webhook = std::env::var_os(WEBHOOK_URL_ENV).filter(|s| !s.is_empty());
        config.notifications.webhook_url =
            webhook_from_env(webhook.as_deref(), config.notifications.webhook_url.take())?;
        let store = std::env::var_os(STORE_URL_ENV).filter(|s| !s.is_empty());
        config.store.url = store_url_from_env(store.as_deref(), config.store.url.take())?;
        Ok(config)
    }

    fn load_file_or_defaults(explicit: Option<&Path>) -> Result<Config, ConfigError> {
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

/// The environment variable that takes the place of `[store] url` (the only place for a
/// database password besides `$PGPASSWORD`).
pub const STORE_URL_ENV: &str = "AUTOTRADE_STORE_URL";

/// Whether `u` names a PostgreSQL database; `env`: it came from the environment, where a
/// password may be (never in the file). The reason never shows the URL.
fn store_url_ok(u: &str, env: bool) -> Result<(), String> {
    if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
        return Err("must be a postgres:// URL".into());
    }
    let parsed: postgres::Config = u
        .parse()
        .map_err(|e| format!("is not a PostgreSQL URL ({e})"))?;
    if parsed.get_password().is_some() && !env {
        return Err(format!(
            "holds a password; keys stay out of the config file: put it in $PGPASSWORD, or the whole URL in ${STORE_URL_ENV}"
        ));
    }
    Ok(())
}

/// `$AUTOTRADE_STORE_URL` (when set and not empty) in place of the file's `[store] url`.
fn store_url_from_env(
    env: Option<&std::ffi::OsStr>,
    file: Option<String>,
) -> Result<Option<String>, ConfigError> {
    let Some(v) = env else {
        return Ok(file);
    };
    let u = v.to_str().map(str::trim).unwrap_or("");
    store_url_ok(u, true).map_err(|why| ConfigError(format!("{STORE_URL_ENV} {why}")))?;
    Ok(Some(u.to_string()))
}

/// The environment variable that takes the place of `[notifications] webhook_url`.
pub const WEBHOOK_URL_ENV: &str = "AUTOTRADE_WEBHOOK_URL";

/// Whether `u` is a webhook address: http or https, and a URL.
fn webhook_url_ok(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://")) && reqwest::Url::parse(u).is_ok()
}

/// `$AUTOTRADE_WEBHOOK_URL` (when set and not empty) in place of the file's address. The
/// error never shows the value: a webhook address is itself a secret.
fn webhook_from_env(
    env: Option<&std::ffi::OsStr>,
    file: Option<String>,
) -> Result<Option<String>, ConfigError> {
    let Some(v) = env else {
        return Ok(file);
    };
    match v.to_str().map(str::trim) {
        Some(u) if webhook_url_ok(u) => Ok(Some(u.to_string())),
        _ => Err(ConfigError(format!(
            "{WEBHOOK_URL_ENV} must be an http:// or https:// URL"
        ))),
    }
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
    parse_str(&text, &path.display().to_string())
}

/// Parse and validate a TOML document; `origin` names it in messages. Every problem is
/// named at once, each with its key; a syntax error stops the reading and is the only one.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let doc = toml::from_str::<toml::Table>(text).map_err(|e| {
        // The message quotes the line: an address in it is shown redacted.
        ConfigError(format!(
            "invalid config in {origin}: {}",
            crate::net::redact_text(e.to_string().trim_end())
        ))
    })?;
    let mut problems = Vec::new();
    let file = read_file(doc, &mut problems);
    let config = validate(file, origin, &mut problems);
    // Table by table, in the order of config.example.toml; unknown tables last.
    problems.sort_by_key(|p| {
        TABLES
            .iter()
            .position(|t| p.strip_prefix(t).is_some_and(|r| r.starts_with(['.', ' '])))
            .unwrap_or(TABLES.len())
    });
    match problems.len() {
        0 => Ok(config),
        1 => Err(ConfigError(format!(
            "invalid config in {origin}: {}",
            problems[0]
        ))),
        n => Err(ConfigError(format!(
            "invalid config in {origin}: {n} problems:\n  {}",
            problems.join("\n  ")
        ))),
    }
}

/// The problems found so far, each naming its key.
struct Problems<'a>(&'a mut Vec<String>);

impl Problems<'_> {
    /// `key = value is out of range: rule`.
    fn range(&mut self, key: &str, value: String, rule: &str) {
        self.0
            .push(format!("{key} = {value} is out of range: {rule}"));
    }
    fn note(&mut self, problem: String) {
        self.0.push(problem);
    }
}

/// The config the file describes, defaults filled in; every value out of range is noted in
/// `problems` (and replaced by its default, so that the checks after it still run).
fn validate(file: FileConfig, origin: &str, problems: &mut Vec<String>) -> Config {
    let mut p = Problems(problems);

    let at = file.auto_trade;
    let symbols: Vec<String> = match at.symbols {
        Some(list) => list.iter().map(|s| normalize_symbol(s)).collect(),
        None => vec!["BTC/USD".into(), "ETH/USD".into(), "SOL/USD".into()],
    };
    if symbols.is_empty() {
        p.range(
            "auto_trade.symbols",
            "[]".into(),
            "list at least one symbol",
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &symbols {
        if !valid_symbol(s) {
            p.note(format!("auto_trade.symbols: {s:?} is not {SYMBOL_FORMS}"));
        } else if !seen.insert(s.clone()) {
            p.note(format!("auto_trade.symbols: {s:?} is listed twice"));
        }
    }
    let user_id = at.user_id.unwrap_or_else(|| "default".into());
    if !valid_user_id(&user_id) {
        p.note(format!(
            "auto_trade.user_id {user_id:?} must be 1 to 64 printable characters"
        ));
    }
    let max_risk_percent = at.max_risk_percent.unwrap_or(1.5);
    if !(max_risk_percent > 0.0 && max_risk_percent <= 100.0) {
        p.range(
            "auto_trade.max_risk_percent",
            max_risk_percent.to_string(),
            "must be > 0 and <= 100",
        );
    }
    let min_confidence = at.min_confidence.unwrap_or(0.75);
    if !(0.0..=1.0).contains(&min_confidence) {
        p.range(
            "auto_trade.min_confidence",
            min_confidence.to_string(),
            "must be between 0 and 1",
        );
    }
    let max_open_positions = at.max_open_positions.unwrap_or(3);
    if !(1..=10_000).contains(&max_open_positions) {
        p.range(
            "auto_trade.max_open_positions",
            max_open_positions.to_string(),
            "must be between 1 and 10000",
        );
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
    let mut check_interval_minutes = at.check_interval_minutes.unwrap_or(default_interval);
    // At least 0.001 min (60 ms): a smaller value would be a loop that never rests.
    if !(0.001..=1440.0 * 7.0).contains(&check_interval_minutes) {
        p.range(
            "auto_trade.check_interval_minutes",
            check_interval_minutes.to_string(),
            "must be between 0.001 (60 ms; fractions allowed, 0.05 = 3 s) and 10080 (a week)",
        );
        // The default expiry below is two intervals: from a valid one, so it is not a problem too.
        check_interval_minutes = default_interval;
    }
    let pending_expiry_minutes = at
        .pending_expiry_minutes
        .unwrap_or(2.0 * check_interval_minutes);
    // Bounded so that it is a valid duration: 1e300 minutes used to panic at start.
    if !(pending_expiry_minutes > 0.0 && pending_expiry_minutes <= MAX_PENDING_EXPIRY_MINUTES) {
        p.range(
            "auto_trade.pending_expiry_minutes",
            pending_expiry_minutes.to_string(),
            "must be > 0 and at most 43200 (30 days)",
        );
    }

    let outcome_horizon_hours = at.outcome_horizon_hours.unwrap_or(24.0);
    if !(outcome_horizon_hours > 0.0 && outcome_horizon_hours <= MAX_OUTCOME_HORIZON_HOURS) {
        p.range(
            "auto_trade.outcome_horizon_hours",
            outcome_horizon_hours.to_string(),
            "must be > 0 and at most 8760 (a year)",
        );
    }

    let size = file.account.size.unwrap_or(10_000.0);
    // Bounded so that sizes and P&L stay exact to the cent in f64.
    if !(size > 0.0 && size <= 1e12) {
        p.range(
            "account.size",
            size.to_string(),
            "must be > 0 and at most 1e12",
        );
    }
    let max_position_percent = file.account.max_position_percent.unwrap_or(20.0);
    if !(max_position_percent > 0.0 && max_position_percent <= 100.0) {
        p.range(
            "account.max_position_percent",
            max_position_percent.to_string(),
            "must be > 0 and <= 100",
        );
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
                p.note(format!(
                    "ml_engine.url {:?} must be an http:// or https:// URL",
                    crate::net::redact_url(&url)
                ));
            }
            let timeout_seconds = timeout_seconds.unwrap_or(10.0);
            if !(0.01..=600.0).contains(&timeout_seconds) {
                p.range(
                    "ml_engine.timeout_seconds",
                    timeout_seconds.to_string(),
                    "must be between 0.01 and 600",
                );
            }
            let max_concurrent_requests = max_concurrent_requests.unwrap_or(512);
            if !(1..=4096).contains(&max_concurrent_requests) {
                p.range(
                    "ml_engine.max_concurrent_requests",
                    max_concurrent_requests.to_string(),
                    "must be between 1 and 4096",
                );
            }
            Some(MlEngine {
                url,
                timeout_seconds,
                max_concurrent_requests: max_concurrent_requests.clamp(1, 4096) as usize,
            })
        }
        _ => None,
    };

    let bf = file.broker;
    let broker_kind = match bf.kind.as_deref().map(str::trim) {
        None | Some("paper") => BrokerKind::Paper,
        Some("alpaca") => BrokerKind::Alpaca,
        Some(other) => {
            p.note(format!(
                "broker.kind {other:?} is not one of \"paper\", \"alpaca\""
            ));
            BrokerKind::Paper
        }
    };
    let broker_timeout = bf.timeout_seconds.unwrap_or(10.0);
    if !(0.1..=120.0).contains(&broker_timeout) {
        p.range(
            "broker.timeout_seconds",
            broker_timeout.to_string(),
            "must be between 0.1 and 120",
        );
    }
    let md = file.market_data;
    let provider = match md.provider.as_deref().map(str::trim) {
        None | Some("auto") if broker_kind == BrokerKind::Alpaca => {
            if ml_engine.is_none() {
                p.note(
                    "[broker] kind = \"alpaca\" needs an [ml_engine] url: the built-in simulated \
                     market's signals are about its own prices, not the market's"
                        .to_string(),
                );
            }
            PriceSource::Alpaca
        }
        None | Some("auto") => {
            if ml_engine.is_some() {
                PriceSource::MlEngine
            } else {
                PriceSource::Simulated
            }
        }
        Some("ml_engine") => {
            if ml_engine.is_none() {
                p.note("market_data.provider = \"ml_engine\" needs an [ml_engine] url".to_string());
            }
            PriceSource::MlEngine
        }
        Some("simulated") => {
            if ml_engine.is_some() {
                p.note(
                    "market_data.provider = \"simulated\" cannot price an ML engine's symbols: \
                     remove [ml_engine] or choose \"auto\", \"alpaca\" or \"coinbase\""
                        .to_string(),
                );
            }
            PriceSource::Simulated
        }
        Some(feed @ ("alpaca" | "coinbase")) => {
            if ml_engine.is_none() {
                p.note(format!(
                    "market_data.provider = {feed:?} needs an [ml_engine] url: the built-in \
                     simulated market's signals are about its own prices, not the market's"
                ));
            }
            if feed == "alpaca" {
                PriceSource::Alpaca
            } else {
                PriceSource::Coinbase
            }
        }
        Some(other) => {
            p.note(format!(
                "market_data.provider {other:?} is not one of \"auto\", \"alpaca\", \"coinbase\", \"ml_engine\", \"simulated\""
            ));
            PriceSource::Simulated
        }
    };
    if provider == PriceSource::Coinbase {
        for s in symbols.iter().filter(|s| is_stock(s)) {
            p.note(format!(
                "auto_trade.symbols: {s:?} is a US stock ticker, and market_data.provider = \"coinbase\" \
                 prices crypto pairs only (choose \"alpaca\" for US stocks)"
            ));
        }
    }
    let stock_feed = match md.stock_feed.as_deref().map(str::trim) {
        None | Some("iex") => StockFeed::Iex,
        Some("sip") => StockFeed::Sip,
        Some(other) => {
            p.note(format!(
                "market_data.stock_feed {other:?} is not one of \"iex\" (free), \"sip\" (a paid Alpaca plan)"
            ));
            StockFeed::Iex
        }
    };
    let stale_after_seconds = md.stale_after_seconds.unwrap_or(30.0);
    if !(1.0..=86_400.0).contains(&stale_after_seconds) {
        p.range(
            "market_data.stale_after_seconds",
            stale_after_seconds.to_string(),
            "must be between 1 and 86400",
        );
    }
    let mut url_of = |key: &str, url: Option<String>, schemes: [&str; 2]| {
        let url = url?.trim_end_matches('/').to_string();
        if !schemes.iter().any(|s| url.starts_with(s)) || reqwest::Url::parse(&url).is_err() {
            p.note(format!(
                "market_data.{key} {:?} must be a {} or {} URL",
                crate::net::redact_url(&url),
                schemes[0],
                schemes[1]
            ));
        }
        Some(url)
    };
    let market_data = MarketData {
        provider,
        stale_after_seconds,
        url: url_of("url", md.url, ["http://", "https://"]),
        stream_url: url_of("stream_url", md.stream_url, ["ws://", "wss://"]),
        stock_feed,
    };
    let mut broker_url = |key: &str, url: Option<String>| {
        let url = url?.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || reqwest::Url::parse(&url).is_err()
        {
            p.note(format!(
                "broker.{key} {:?} must be an http:// or https:// URL",
                crate::net::redact_url(&url)
            ));
        }
        Some(url)
    };
    // `[broker] data_url` is where Alpaca's market data is, when `[market_data] url` is not set.
    let mut market_data = market_data;
    if market_data.provider == PriceSource::Alpaca && market_data.url.is_none() {
        market_data.url = bf.data_url.clone();
    }
    let broker = BrokerConfig {
        kind: broker_kind,
        trading_url: broker_url("trading_url", bf.trading_url),
        data_url: broker_url("data_url", bf.data_url),
        timeout_seconds: broker_timeout,
    };

    let sim = file.simulation;
    let seconds_per_candle = sim.seconds_per_candle.unwrap_or(1.5);
    if !(0.05..=86_400.0).contains(&seconds_per_candle) {
        p.range(
            "simulation.seconds_per_candle",
            seconds_per_candle.to_string(),
            "must be between 0.05 and 86400",
        );
    }
    let mut start_prices = std::collections::BTreeMap::new();
    for (sym, price) in sim.start_prices.unwrap_or_default() {
        if !(price > 0.0 && price.is_finite()) {
            p.range(
                &format!("simulation.start_prices.\"{sym}\""),
                price.to_string(),
                "must be > 0",
            );
        }
        start_prices.insert(normalize_symbol(&sym), price);
    }

    let fee_percent = file.backtest.fee_percent.unwrap_or(0.1);
    if !(0.0..=10.0).contains(&fee_percent) {
        p.range(
            "backtest.fee_percent",
            fee_percent.to_string(),
            "must be between 0 and 10",
        );
    }
    let slippage_percent = file.backtest.slippage_percent.unwrap_or(0.0);
    if !(0.0..=10.0).contains(&slippage_percent) {
        p.range(
            "backtest.slippage_percent",
            slippage_percent.to_string(),
            "must be between 0 and 10",
        );
    }

    let rf = file.risk;
    let mut percent = |key: &str, value: Option<f64>, max: f64| {
        let v = value.unwrap_or(0.0);
        if !(0.0..=max).contains(&v) {
            p.range(
                &format!("risk.{key}"),
                v.to_string(),
                &format!("must be between 0 (off) and {max}"),
            );
        }
        v
    };
    let risk_limits = Risk {
        daily_loss_limit_percent: percent(
            "daily_loss_limit_percent",
            rf.daily_loss_limit_percent,
            100.0,
        ),
        max_drawdown_percent: percent("max_drawdown_percent", rf.max_drawdown_percent, 100.0),
        trailing_stop_percent: percent("trailing_stop_percent", rf.trailing_stop_percent, 50.0),
    };
    let nf = file.notifications;
    let webhook_url = nf.webhook_url.map(|u| u.trim().to_string());
    if let Some(u) = &webhook_url
        && !webhook_url_ok(u)
    {
        p.note("notifications.webhook_url must be an http:// or https:// URL".to_string());
    }
    let notifications = Notifications {
        bell: nf.bell.unwrap_or(true),
        desktop: nf.desktop.unwrap_or(true),
        webhook_url,
    };
    let sf = file.store;
    let store_url = sf.url.map(|u| u.trim().to_string());
    if let Some(u) = &store_url
        && let Err(why) = store_url_ok(u, false)
    {
        p.note(format!("store.url {why}"));
    }
    let pool_size = sf.pool_size.unwrap_or(8);
    if !(1..=64).contains(&pool_size) {
        p.range(
            "store.pool_size",
            pool_size.to_string(),
            "must be between 1 and 64",
        );
    }
    let max_users = sf.max_users.unwrap_or(100);
    if !(1..=100_000).contains(&max_users) {
        p.range(
            "store.max_users",
            max_users.to_string(),
            "must be between 1 and 100000",
        );
    }
    let store = StoreConfig {
        url: store_url,
        pool_size: pool_size.clamp(1, 64) as u32,
        max_users: max_users.clamp(1, 100_000) as usize,
    };

    Config {
        risk_limits,
        notifications,
        store,
        auto_trade: AutoTrade {
            user_id,
            enabled: at.enabled.unwrap_or(true),
            symbols,
            max_risk_percent,
            min_confidence,
            paper_trading: at.paper_trading.unwrap_or(true),
            require_confirmation: at.require_confirmation.unwrap_or(true),
            max_open_positions: max_open_positions.clamp(1, 10_000) as usize,
            check_interval_minutes,
            pending_expiry_minutes,
            outcome_horizon_hours,
            calibrated_confidence: at.calibrated_confidence.unwrap_or(false),
        },
        account: Account {
            size,
            max_position_percent,
        },
        ml_engine,
        broker,
        simulation: Simulation {
            seed: sim.seed.unwrap_or(42),
            seconds_per_candle,
            start_prices,
        },
        backtest: Backtest {
            fee_percent,
            slippage_percent,
        },
        market_data,
        source: origin.to_string(),
    }
}

/// A user id: 1 to 64 printable characters (characters, not bytes: the rule the API's
/// document states), not only spaces.
pub fn valid_user_id(user_id: &str) -> bool {
    !(user_id.trim().is_empty()
        || user_id.chars().count() > 64
        || user_id.chars().any(|c| c.is_control()))
}

/// A symbol as the trader typed it, the way it is stored: trimmed and upper-case
/// (`eth/usd` is `ETH/USD`).
pub fn normalize_symbol(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

/// What a symbol names: a pair (crypto, `BTC/USD`) or a US stock (`AAPL`). Alpaca's own
/// convention: a pair has a `/`, a stock ticker has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    Pair,
    Stock,
}

/// What a symbol may be, for messages: "… is not {SYMBOL_FORMS}".
pub const SYMBOL_FORMS: &str =
    "a pair like BTC/USD (BASE/QUOTE, letters and digits) or a US stock ticker like AAPL or BRK.B";

/// The kind of a symbol as stored (upper-case; see [`normalize_symbol`]), or `None` when it is
/// neither form: `BASE/QUOTE`, letters and digits, each side 1 to 12 characters; or a ticker of
/// 1 to 10 upper-case letters and digits starting with a letter, with at most one class suffix
/// of a dot and 1 or 2 letters (`BRK.B`).
pub fn symbol_kind(s: &str) -> Option<SymbolKind> {
    if let Some((base, quote)) = s.split_once('/') {
        let ok = |p: &str| {
            !p.is_empty() && p.len() <= 12 && p.chars().all(|c| c.is_ascii_alphanumeric())
        };
        return (ok(base) && ok(quote)).then_some(SymbolKind::Pair);
    }
    let (root, class) = match s.split_once('.') {
        Some((root, class)) => (root, Some(class)),
        None => (s, None),
    };
    let root_ok = root.len() <= 10
        && root.starts_with(|c: char| c.is_ascii_uppercase())
        && root
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let class_ok = class
        .is_none_or(|c| (1..=2).contains(&c.len()) && c.chars().all(|c| c.is_ascii_uppercase()));
    (root_ok && class_ok).then_some(SymbolKind::Stock)
}

/// A pair or a US stock ticker (see [`symbol_kind`]).
pub fn valid_symbol(s: &str) -> bool {
    symbol_kind(s).is_some()
}

/// A US stock ticker (`AAPL`, `BRK.B`), not a pair.
pub fn is_stock(s: &str) -> bool {
    symbol_kind(s) == Some(SymbolKind::Stock)
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
        let e = parse_str("[auto_trade]\nsymbols = [\"BTC-USD\"]\n", "c.toml").unwrap_err();
        assert!(
            e.0.contains("\"BTC-USD\" is not a pair like BTC/USD"),
            "{e}"
        );
        assert!(e.0.contains("or a US stock ticker like AAPL"), "{e}");
        assert!(!valid_symbol("BTC/US-D"));
        assert!(valid_symbol("ETH/USDT"));
    }

    #[test]
    fn a_symbol_is_a_pair_or_a_us_stock_ticker() {
        use SymbolKind::*;
        for (s, kind) in [
            ("BTC/USD", Some(Pair)),
            ("ETH/USDT", Some(Pair)),
            ("1INCH/USD", Some(Pair)),
            ("btc/usd", Some(Pair)),
            ("ABCDEFGHIJKL/USD", Some(Pair)),
            ("AAPL", Some(Stock)),
            ("MSFT", Some(Stock)),
            ("F", Some(Stock)),
            ("BRK.B", Some(Stock)),
            ("BF.AB", Some(Stock)),
            ("ABCDEFGHIJ", Some(Stock)),
            ("A1B2", Some(Stock)),
            // Neither form.
            ("", None),
            ("/", None),
            ("AAPL/", None),
            ("/USD", None),
            ("ABCDEFGHIJKLM/USD", None),
            ("BTC/US-D", None),
            ("BTC/USD/EUR", None),
            ("BTC-USD", None),
            ("aapl", None),
            ("Aapl", None),
            ("1AAPL", None),
            ("ABCDEFGHIJK", None),
            ("BRK..B", None),
            ("BRK.", None),
            (".B", None),
            ("BRK.ABC", None),
            ("BRK.B.C", None),
            ("BRK.1", None),
            ("BRK.b", None),
            ("AA PL", None),
            ("ÄAPL", None),
        ] {
            assert_eq!(symbol_kind(s), kind, "{s:?}");
            assert_eq!(valid_symbol(s), kind.is_some(), "{s:?}");
            assert_eq!(is_stock(s), kind == Some(Stock), "{s:?}");
        }
    }

    #[test]
    fn stock_tickers_are_accepted_in_any_case_and_malformed_ones_refused() {
        let c = parse_str(
            "[auto_trade]\nsymbols = [\"aapl\", \"BRK.B\", \"btc/usd\"]\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.auto_trade.symbols, vec!["AAPL", "BRK.B", "BTC/USD"]);
        for bad in ["aapl/", "AAPL/", "BRK..B"] {
            let e = parse_str(&format!("[auto_trade]\nsymbols = [{bad:?}]\n"), "c.toml")
                .unwrap_err()
                .0;
            assert!(
                e.contains("is not a pair like BTC/USD (BASE/QUOTE, letters and digits) or a US stock ticker like AAPL or BRK.B"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn coinbase_refuses_a_stock_naming_the_symbol_and_the_provider() {
        let doc = |provider: &str| {
            format!(
                "[auto_trade]\nsymbols = [\"BTC/USD\", \"AAPL\"]\n[ml_engine]\nurl = \"http://127.0.0.1:9\"\n\
                 [market_data]\nprovider = \"{provider}\"\n"
            )
        };
        let e = parse_str(&doc("coinbase"), "c.toml").unwrap_err().0;
        assert_eq!(
            e,
            "invalid config in c.toml: auto_trade.symbols: \"AAPL\" is a US stock ticker, and \
             market_data.provider = \"coinbase\" prices crypto pairs only (choose \"alpaca\" for US stocks)"
        );
        for fine in ["alpaca", "ml_engine", "auto"] {
            parse_str(&doc(fine), "c.toml").unwrap();
        }
        // The simulated market prices stocks too.
        parse_str("[auto_trade]\nsymbols = [\"AAPL\"]\n", "c.toml").unwrap();
    }

    #[test]
    fn stock_feed_is_iex_or_sip() {
        let md = |text: &str| parse_str(text, "t").map(|c| c.market_data);
        assert_eq!(md("").unwrap().stock_feed, StockFeed::Iex);
        assert_eq!(
            md("[market_data]\nstock_feed = \"sip\"")
                .unwrap()
                .stock_feed,
            StockFeed::Sip
        );
        let e = md("[market_data]\nstock_feed = \"nasdaq\"").unwrap_err().0;
        assert!(
            e.contains("market_data.stock_feed \"nasdaq\" is not one of \"iex\""),
            "{e}"
        );
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
    fn every_problem_is_named_at_once() {
        let doc = "verbose = true\n[auto_trade]\nmax_risk_percnt = 1.0\nmin_confidence = 1.5\n\
                   enabled = \"yes\"\nsymbols = [\"BTC-USD\", \"eth/usd\", \"ETH/USD\"]\n\
                   [account]\nsize = 0\n[mlengine]\nurl = \"http://x\"\n";
        let e = parse_str(doc, "c.toml").unwrap_err().0;
        for want in [
            "c.toml: 8 problems:",
            "auto_trade.max_risk_percnt: unknown key; did you mean auto_trade.max_risk_percent?",
            "auto_trade.min_confidence = 1.5 is out of range",
            "auto_trade.enabled: invalid type: string \"yes\", expected a boolean",
            "auto_trade.symbols: \"BTC-USD\" is not a pair like BTC/USD",
            "auto_trade.symbols: \"ETH/USD\" is listed twice",
            "account.size = 0 is out of range",
            "[mlengine]: unknown table; did you mean [ml_engine]?",
            "verbose: unknown key at the top level",
        ] {
            assert!(e.contains(want), "{want:?} missing from:\n{e}");
        }
        assert_eq!(e.lines().count(), 9, "{e}");
    }

    #[test]
    fn one_problem_is_one_line() {
        let e = parse_str("[account]\nsize = -1\n", "c.toml").unwrap_err().0;
        assert_eq!(
            e,
            "invalid config in c.toml: account.size = -1 is out of range: must be > 0 and at most 1e12"
        );
    }

    #[test]
    fn an_invalid_check_interval_is_not_also_an_invalid_expiry() {
        let e = parse_str("[auto_trade]\ncheck_interval_minutes = 0\n", "c.toml").unwrap_err();
        assert!(!e.0.contains("pending_expiry_minutes"), "{e}");
    }

    #[test]
    fn symbols_are_upper_case() {
        let c = parse_str(
            "[auto_trade]\nsymbols = [\"eth/usd\", \" Btc/Usdt \"]\n[simulation]\nstart_prices = { \"eth/usd\" = 2000.0 }\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.auto_trade.symbols, vec!["ETH/USD", "BTC/USDT"]);
        assert_eq!(c.simulation.start_prices.get("ETH/USD"), Some(&2000.0));
    }

    #[test]
    fn a_known_table_that_is_not_a_table_is_named() {
        let e = parse_str("auto_trade = 5\n", "c.toml").unwrap_err();
        assert!(e.0.contains("auto_trade must be a table"), "{e}");
    }

    #[test]
    fn example_config_is_valid_and_matches_defaults() {
        let text = include_str!("../config.example.toml");
        let c = parse_str(text, "config.example.toml").unwrap();
        let d = Config::defaults();
        assert_eq!(c.account, d.account);
        assert_eq!(c.auto_trade.max_risk_percent, d.auto_trade.max_risk_percent);
        assert_eq!(c.auto_trade.min_confidence, d.auto_trade.min_confidence);
        assert_eq!(c.market_data, d.market_data);
        assert_eq!(c.risk_limits, d.risk_limits);
        assert_eq!(c.notifications, d.notifications);
        assert_eq!(c.store, d.store);
    }

    #[test]
    fn the_store_table_is_checked_and_its_url_never_shown() {
        let c = parse_str(
            "[store]\nurl = \"postgres://trader@db:5432/autotrade\"\nmax_users = 1000\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(
            c.store_url().as_deref(),
            Some("postgres://trader@db:5432/autotrade")
        );
        assert_eq!((c.store.max_users, c.store.pool_size), (1000, 8));
        let e = parse_str(
            "[store]\nurl = \"mysql://db/x\"\npool_size = 0\nmax_users = 0\n",
            "c.toml",
        )
        .unwrap_err()
        .0;
        assert!(e.contains("store.url must be a postgres:// URL"), "{e}");
        assert!(e.contains("store.pool_size = 0 is out of range"), "{e}");
        assert!(e.contains("store.max_users = 0 is out of range"), "{e}");
        // From the environment a password may come; a wrong URL there is named, not shown.
        let env = std::ffi::OsString::from("postgres://u:s3cret@db/x");
        assert_eq!(
            store_url_from_env(Some(&env), None).unwrap().as_deref(),
            Some("postgres://u:s3cret@db/x")
        );
        let bad = std::ffi::OsString::from("http://u:s3cret@db/x");
        let e = store_url_from_env(Some(&bad), None).unwrap_err().0;
        assert!(
            e.contains("AUTOTRADE_STORE_URL") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(format!("{:?}", Config::defaults().store).contains("max_users: 100"));
    }

    #[test]
    fn risk_limits_are_percents_and_zero_is_off() {
        let c = parse_str(
            "[risk]\ndaily_loss_limit_percent = 3\nmax_drawdown_percent = 10.5\ntrailing_stop_percent = 2",
            "t",
        )
        .unwrap();
        assert_eq!(c.risk_limits.daily_loss_limit_percent, 3.0);
        assert_eq!(c.risk_limits.max_drawdown_percent, 10.5);
        assert_eq!(c.risk_limits.trailing_stop_percent, 2.0);
        let d = Config::defaults();
        assert_eq!(d.risk_limits.daily_loss_limit_percent, 0.0);
        let e = parse_str(
            "[risk]\nmax_drawdown_percent = -1\ntrailing_stop_percent = 60",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("risk.max_drawdown_percent"), "{e}");
        assert!(e.contains("risk.trailing_stop_percent"), "{e}");
        let e = parse_str("[risk]\ndaily_loss = 3", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("daily_loss"), "{e}");
    }

    #[test]
    fn a_webhook_is_an_http_url_and_is_not_echoed() {
        let e = parse_str(
            "[notifications]\nwebhook_url = \"ftp://x/secret-path\"",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("notifications.webhook_url"), "{e}");
        assert!(!e.contains("secret-path"), "{e}");
        let c = parse_str(
            "[notifications]\nbell = false\nwebhook_url = \"http://127.0.0.1:9/hook\"",
            "t",
        )
        .unwrap();
        assert!(!c.notifications.bell);
        assert!(c.notifications.desktop);
        assert_eq!(
            c.notifications.webhook_url.as_deref(),
            Some("http://127.0.0.1:9/hook")
        );
        // A debug print shows the host, never the path (the secret).
        let shown = format!("{:?}", c.notifications);
        assert!(
            shown.contains("127.0.0.1:9") && !shown.contains("/hook"),
            "{shown}"
        );
    }

    #[test]
    fn the_environment_s_webhook_takes_the_file_s_place() {
        use std::ffi::OsStr;
        let file = Some("https://file.example/hook".to_string());
        assert_eq!(webhook_from_env(None, file.clone()).unwrap(), file);
        assert_eq!(
            webhook_from_env(
                Some(OsStr::new(" https://env.example/T/secret ")),
                file.clone()
            )
            .unwrap()
            .as_deref(),
            Some("https://env.example/T/secret")
        );
        assert_eq!(
            webhook_from_env(Some(OsStr::new("http://127.0.0.1:9/h")), None)
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:9/h")
        );
        let e = webhook_from_env(Some(OsStr::new("hooks.example/secret-path")), file)
            .unwrap_err()
            .to_string();
        assert!(e.contains(WEBHOOK_URL_ENV), "{e}");
        assert!(!e.contains("secret-path"), "{e}");
    }

    #[test]
    fn market_data_chooses_the_price_source_and_checks_it() {
        let md = |text: &str| parse_str(text, "t").map(|c| c.market_data);
        let d = md("").unwrap();
        assert_eq!(
            (d.provider, d.stale_after_seconds),
            (PriceSource::Simulated, 30.0)
        );
        let ml = "[ml_engine]\nurl = \"http://127.0.0.1:1\"\n";
        assert_eq!(md(ml).unwrap().provider, PriceSource::MlEngine);
        let c = md(&format!(
            "{ml}[market_data]\nprovider = \"coinbase\"\nstale_after_seconds = 5\nurl = \"http://127.0.0.1:9\"\nstream_url = \"ws://127.0.0.1:9/\""
        ))
        .unwrap();
        assert_eq!(c.provider, PriceSource::Coinbase);
        assert!(c.provider.is_feed());
        assert_eq!(c.stale_after(), std::time::Duration::from_secs(5));
        assert_eq!(c.stream_url.as_deref(), Some("ws://127.0.0.1:9"));
        // Every problem at once, each naming its key.
        let err = md("[market_data]\nprovider = \"bloomberg\"\nstale_after_seconds = 0\nstream_url = \"http://x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 problems"), "{err}");
        assert!(
            err.contains("market_data.provider \"bloomberg\" is not one of"),
            "{err}"
        );
        assert!(
            err.contains("market_data.stale_after_seconds = 0 is out of range"),
            "{err}"
        );
        assert!(
            err.contains("market_data.stream_url \"http://x\" must be a ws:// or wss:// URL"),
            "{err}"
        );
        let err = md("[market_data]\nprovider = \"ml_engine\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs an [ml_engine] url"), "{err}");
    }
}
