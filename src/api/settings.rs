//! One user's auto-trade settings as the API takes them: the seed's AutoTradeConfig, checked
//! by the very code that checks the config file (so the ranges can never drift apart).

use super::error::ApiError;
use crate::config::{self, AutoTrade, Config};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The seed's AutoTradeConfig. Omitted fields take the config file's built-in defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoTradeConfig {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_risk_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper_trading: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_confirmation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_open_positions: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_interval_minutes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_expiry_minutes: Option<f64>,
}

/// `POST /api/v1/auto-trade/config`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    pub config: AutoTradeConfig,
}

/// Where the settings of a user that the API created come from, for `status`.
pub const API_SOURCE: &str = "POST /api/v1/auto-trade/config";

/// Most symbols a user created through the API may watch (the config file's user: any).
pub const MAX_API_SYMBOLS: usize = 20;
/// The shortest check interval of a user created through the API, in minutes (the config
/// file's user: the SPEC's 0.001). Every cycle stores a decision per symbol, so this and
/// [`MAX_API_SYMBOLS`] bound what one user can make the server write: 20 a minute.
pub const MIN_API_CHECK_MINUTES: f64 = 1.0;

/// [`user_config`] for a user created through the API: at most [`MAX_API_SYMBOLS`] symbols,
/// checked at most once every [`MIN_API_CHECK_MINUTES`] (omitted: the file's default, or the
/// minimum when that is shorter).
pub fn api_user_config(base: &Config, settings: &AutoTradeConfig) -> Result<Config, ApiError> {
    if let Some(symbols) = &settings.symbols
        && symbols.len() > MAX_API_SYMBOLS
    {
        return Err(ApiError::invalid(
            "config.symbols",
            format!(
                "config.symbols: {} symbols is too many: a user created through the API watches                  at most {MAX_API_SYMBOLS}",
                symbols.len()
            ),
        ));
    }
    if let Some(m) = settings.check_interval_minutes
        && m < MIN_API_CHECK_MINUTES
    {
        return Err(ApiError::invalid(
            "config.check_interval_minutes",
            format!(
                "config.check_interval_minutes = {m} is out of range: a user created through the                  API is checked at most once a minute (at least {MIN_API_CHECK_MINUTES}); only the                  config file's user may be checked more often"
            ),
        ));
    }
    let mut settings = settings.clone();
    if settings.check_interval_minutes.is_none() {
        let default = user_config(base, &settings)?
            .auto_trade
            .check_interval_minutes;
        if default < MIN_API_CHECK_MINUTES {
            settings.check_interval_minutes = Some(MIN_API_CHECK_MINUTES);
        }
    }
    user_config(base, &settings)
}

/// The whole config one user runs with: the file's ML engine, account, simulation and
/// backtest, with this user's auto-trade settings. Errors name the field (`config.<name>`).
pub fn user_config(base: &Config, settings: &AutoTradeConfig) -> Result<Config, ApiError> {
    let mut doc = toml::Table::new();
    let at = toml::Value::try_from(settings)
        .map_err(|e| ApiError::invalid("config", format!("config: {e}")))?;
    doc.insert("auto_trade".into(), at);
    // The default check interval depends on whether an ML engine is configured.
    if let Some(ml) = &base.ml_engine {
        let mut t = toml::Table::new();
        t.insert("url".into(), toml::Value::String(ml.url.clone()));
        doc.insert("ml_engine".into(), toml::Value::Table(t));
    }
    let text = toml::to_string(&doc).map_err(ApiError::internal)?;
    let parsed = config::parse_str(&text, "the request body").map_err(|e| field_error(&e.0))?;
    if !parsed.auto_trade.paper_trading {
        return Err(ApiError::invalid(
            "config.paper_trading",
            "config.paper_trading = false is refused: live trading is armed only from the config file, \
             with the --live flag, [broker] kind = \"alpaca\" and Alpaca's live keys in the \
             environment, never through the API. Set paper_trading to true.",
        ));
    }
    let mut c = base.clone();
    c.auto_trade = parsed.auto_trade;
    Ok(c)
}

/// A config-file message ("invalid config in the request body: auto_trade.min_confidence = 2 is
/// out of range: ...") as the API says it: 422, naming `config.min_confidence`.
fn field_error(msg: &str) -> ApiError {
    let msg = msg
        .strip_prefix("invalid config in the request body: ")
        .unwrap_or(msg)
        .replace("auto_trade.", "config.");
    let field = msg
        .find("config.")
        .map(|i| {
            let name: String = msg[i + "config.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            format!("config.{name}")
        })
        .unwrap_or_else(|| "config".to_string());
    ApiError::invalid(field, msg)
}

/// A user's settings in full, as `GET config` shows them and the store keeps them.
pub fn settings_json(at: &AutoTrade, enabled: bool) -> Value {
    json!({
        "user_id": at.user_id,
        "enabled": enabled,
        "symbols": at.symbols,
        "max_risk_percent": at.max_risk_percent,
        "min_confidence": at.min_confidence,
        "paper_trading": at.paper_trading,
        "require_confirmation": at.require_confirmation,
        "max_open_positions": at.max_open_positions,
        "check_interval_minutes": at.check_interval_minutes,
        "pending_expiry_minutes": at.pending_expiry_minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        config::parse_str("[ml_engine]\nurl = \"http://127.0.0.1:9\"\n", "t.toml").unwrap()
    }

    fn settings(v: Value) -> AutoTradeConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_seeds_example_is_valid_and_keeps_the_files_account() {
        let c = user_config(
            &base(),
            &settings(
                json!({"user_id": "user_123", "enabled": true, "symbols": ["BTC/USD"],
                             "max_risk_percent": 1.5, "min_confidence": 0.75}),
            ),
        )
        .unwrap();
        assert_eq!(c.auto_trade.user_id, "user_123");
        assert_eq!(c.auto_trade.symbols, vec!["BTC/USD"]);
        assert_eq!(c.auto_trade.check_interval_minutes, 5.0);
        assert_eq!(c.ml_engine, base().ml_engine);
        assert_eq!(c.account, base().account);
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        for (v, field) in [
            (
                json!({"user_id": "u", "min_confidence": 1.5}),
                "config.min_confidence",
            ),
            (
                json!({"user_id": "u", "max_risk_percent": 0}),
                "config.max_risk_percent",
            ),
            (
                json!({"user_id": "u", "max_open_positions": 0}),
                "config.max_open_positions",
            ),
            (
                json!({"user_id": "u", "check_interval_minutes": -1}),
                "config.check_interval_minutes",
            ),
            (
                json!({"user_id": "u", "pending_expiry_minutes": 0}),
                "config.pending_expiry_minutes",
            ),
            (
                json!({"user_id": "u", "symbols": ["BTC-USD"]}),
                "config.symbols",
            ),
            (json!({"user_id": "u", "symbols": []}), "config.symbols"),
            (
                json!({"user_id": "", "symbols": ["BTC/USD"]}),
                "config.user_id",
            ),
            (
                json!({"user_id": "u", "paper_trading": false}),
                "config.paper_trading",
            ),
        ] {
            let e = user_config(&base(), &settings(v.clone())).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{v}: {}", e.detail);
            assert_eq!(e.status.as_u16(), 422);
            assert!(e.detail.contains(field), "{v}: {}", e.detail);
        }
    }

    #[test]
    fn api_users_are_bounded_and_the_files_ranges_stay() {
        let many: Vec<String> = (0..21).map(|i| format!("S{i}/USD")).collect();
        let e = api_user_config(&base(), &settings(json!({"user_id": "u", "symbols": many})))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("config.symbols"), "{}", e.detail);
        assert!(e.detail.contains("at most 20"), "{}", e.detail);
        let twenty: Vec<String> = (0..20).map(|i| format!("S{i}/USD")).collect();
        assert!(
            api_user_config(
                &base(),
                &settings(json!({"user_id": "u", "symbols": twenty}))
            )
            .is_ok()
        );
        let e = api_user_config(
            &base(),
            &settings(json!({"user_id": "u", "check_interval_minutes": 0.001})),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("config.check_interval_minutes"));
        assert_eq!(e.status.as_u16(), 422);
        // The file's ranges for the file's user.
        let c = user_config(
            &base(),
            &settings(json!({"user_id": "u", "check_interval_minutes": 0.001})),
        )
        .unwrap();
        assert_eq!(c.auto_trade.check_interval_minutes, 0.001);
        // Omitted on the simulated market (0.25 by default): the minimum, and two of them to expire.
        let sim = config::parse_str("", "t.toml").unwrap();
        let c = api_user_config(&sim, &settings(json!({"user_id": "u"}))).unwrap();
        assert_eq!(c.auto_trade.check_interval_minutes, 1.0);
        assert_eq!(c.auto_trade.pending_expiry_minutes, 2.0);
        // With an ML engine (5 by default): kept.
        let c = api_user_config(&base(), &settings(json!({"user_id": "u"}))).unwrap();
        assert_eq!(c.auto_trade.check_interval_minutes, 5.0);
    }

    #[test]
    fn settings_round_trip_through_their_json() {
        let c = user_config(
            &base(),
            &settings(json!({"user_id": "u", "symbols": ["ETH/USD"]})),
        )
        .unwrap();
        let v = settings_json(&c.auto_trade, true);
        let again = user_config(&base(), &serde_json::from_value(v).unwrap()).unwrap();
        assert_eq!(again.auto_trade, c.auto_trade);
    }
}
