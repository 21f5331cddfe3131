//! The tool catalog: each tool's name, what an LLM is told about it, and its arguments.
//!
//! The argument types are both the JSON schema the client sees and the parser the server
//! uses, so the two cannot disagree. Parsing never fails the protocol: a bad argument is
//! a message the agent can read and correct.

use rmcp::handler::server::common::schema_for_input;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub const GET_AMD_PHASE: &str = "get_amd_phase";
pub const GET_ML_SIGNAL: &str = "get_ml_signal";
pub const AUTO_TRADE_DECISION: &str = "auto_trade_decision";
pub const EXECUTE_TRADE: &str = "execute_trade";
pub const LIST_PENDING: &str = "list_pending";
pub const GET_STATUS: &str = "get_status";
pub const GET_DECISIONS: &str = "get_decisions";

pub const NAMES: [&str; 7] = [
    GET_AMD_PHASE,
    GET_ML_SIGNAL,
    AUTO_TRADE_DECISION,
    EXECUTE_TRADE,
    LIST_PENDING,
    GET_STATUS,
    GET_DECISIONS,
];

/// What the server tells a client about itself at `initialize`.
pub const INSTRUCTIONS: &str = "autotrade-tui: trading signals (an ML engine's, or on the simulated market the \
built-in analyzer's) and AMD (accumulation/manipulation/distribution) phases turned into sized trading decisions, stored in the same log the trader's dashboard shows. \
You can analyse (get_ml_signal, get_amd_phase, get_status, get_decisions, list_pending) and propose \
(auto_trade_decision, execute_trade). Every proposal is stored as a PENDING decision with origin \"agent\" \
and waits for the human trader, who confirms or cancels it on the dashboard or the command line; \
no tool here confirms, cancels or executes a trade, and pending decisions expire after \
pending_expiry_minutes. Prices are in the symbol's quote currency (USD for BTC/USD; a US stock \
ticker like AAPL is priced in USD), sizes in units of its base currency (BTC for BTC/USD) or in \
shares (AAPL). Every confidence is an uncalibrated score in 0..1: it ranks signals and decisions, it is \
not a probability of winning. A manual trade (execute_trade) against the signal's direction is marked \
counter-signal in its reasoning and has confidence 0; one on a neutral signal (or none) has confidence 0 and \
no signal support. A refused proposal (kill switch, \
auto-trading disabled, a position or pending decision already on the symbol, max_open_positions \
reached, size over the cap, take-profit/stop-loss on the wrong side) comes back as a tool error \
that says why.";

/// A market, for the tools that take only a symbol.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SymbolArgs {
    /// The market: a pair as BASE/QUOTE, letters and digits (e.g. "BTC/USD"), or a US stock ticker (e.g. "AAPL", "BRK.B"). The configured symbols are in get_status.symbols.
    pub symbol: String,
}

/// Which way a manual trade goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum Side {
    Buy,
    Sell,
}

// By hand, so that "BUY" is accepted too and "hold" is refused in the trader's words.
impl<'de> Deserialize<'de> for Side {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Side, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err(serde::de::Error::custom(format!(
                "side must be \"buy\" or \"sell\", got {s:?}"
            ))),
        }
    }
}

impl Side {
    pub fn side(self) -> crate::domain::Side {
        match self {
            Side::Buy => crate::domain::Side::Buy,
            Side::Sell => crate::domain::Side::Sell,
        }
    }
}

/// The seed's execute_trade arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TradeArgs {
    /// The market: a pair like "BTC/USD" or a US stock ticker like "AAPL".
    pub symbol: String,
    /// "buy" (profit when the price rises) or "sell" (profit when it falls).
    pub side: Side,
    /// Quantity in units of the base currency (BTC for BTC/USD) or in shares (AAPL), > 0. Omit to size by the risk rules: max_risk_percent of the account at risk between entry and stop_loss, capped at max_position_percent of the account. A size over that cap is refused.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub size: Option<f64>,
    /// Take-profit price in the quote currency, > 0. Omit to use the signal's (which suits only a trade in the signal's direction). A buy needs take_profit > entry, a sell take_profit < entry.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub take_profit: Option<f64>,
    /// Stop-loss price in the quote currency, > 0. Omit to use the signal's (which suits only a trade in the signal's direction). A buy needs stop_loss < entry, a sell stop_loss > entry.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub stop_loss: Option<f64>,
    /// A trailing stop: the stop follows the best price since the fill by this percent of it (at most 50), never loosening. Give this or trail_amount, not both; omit both for the configured default trail (none when trailing_stop_percent is 0).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub trail_percent: Option<f64>,
    /// A trailing stop that follows the best price by this amount in the quote currency (below the entry price).
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub trail_amount: Option<f64>,
}

/// The decision log query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionsArgs {
    /// At most this many decisions, newest first; 1 to 1000, default 50.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// Only decisions that were executed (filled on the paper broker); default false.
    #[serde(default)]
    pub executed_only: Option<bool>,
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 50;

/// Parse a tool's arguments (absent means `{}`), or say what is wrong in words an agent can act on.
pub fn parse<T: DeserializeOwned>(tool: &str, args: Option<JsonObject>) -> Result<T, String> {
    let value = serde_json::Value::Object(args.unwrap_or_default());
    serde_json::from_value(value).map_err(|e| format!("bad arguments for {tool}: {e}"))
}

/// A price or a size an agent gave: a finite number > 0.
pub fn positive(tool: &str, name: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(format!(
            "bad arguments for {tool}: {name} must be a number > 0, got {}",
            crate::domain::rules::fmt_num(x)
        )),
        other => Ok(other),
    }
}

fn schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    // The argument types are fixed objects; a failure here is a programming error caught by the tests.
    let mut schema = schema_for_input::<T>()
        .map(|s| s.as_ref().clone())
        .unwrap_or_else(|_| {
            let mut o = JsonObject::new();
            o.insert("type".into(), serde_json::json!("object"));
            o
        });
    one_type_per_argument(&mut schema);
    Arc::new(schema)
}

/// An optional argument is declared by leaving it out of `required`, with its one type:
/// clients that allow one type per field refuse schemars' `["number", "null"]` (and the
/// `anyOf` with a null branch it makes for an optional enum), and a `"default": null` that is
/// not of that type; the Rust-only formats (`double`, `uint32`) are no JSON Schema format and
/// some clients refuse them. The server still takes `null` for an optional argument, as if it
/// were left out.
fn one_type_per_argument(schema: &mut JsonObject) {
    let Some(serde_json::Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    for prop in props.values_mut() {
        let Some(p) = prop.as_object_mut() else {
            continue;
        };
        if p.get("default").is_some_and(serde_json::Value::is_null) {
            p.remove("default");
        }
        if matches!(
            p.get("type").and_then(|t| t.as_str()),
            Some("number" | "integer")
        ) || p.get("type").is_some_and(|t| t.is_array())
        {
            p.remove("format");
        }
        if let Some(serde_json::Value::Array(types)) = p.get("type") {
            let kept: Vec<serde_json::Value> =
                types.iter().filter(|t| *t != "null").cloned().collect();
            if let [only] = kept.as_slice() {
                p.insert("type".into(), only.clone());
            }
        }
        for key in ["anyOf", "oneOf"] {
            let Some(serde_json::Value::Array(branches)) = p.get(key) else {
                continue;
            };
            let kept: Vec<serde_json::Value> = branches
                .iter()
                .filter(|b| b.get("type").is_none_or(|t| t != "null"))
                .cloned()
                .collect();
            if let [serde_json::Value::Object(only)] = kept.as_slice() {
                let only = only.clone();
                p.remove(key);
                for (k, v) in only {
                    p.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// A JSON Schema written here as JSON: the results are the command line's `--json` shapes.
fn object_schema(v: serde_json::Value) -> Arc<JsonObject> {
    match v {
        serde_json::Value::Object(o) => Arc::new(o),
        _ => Arc::new(JsonObject::new()),
    }
}

/// One entry of the decision log, as `decisions --json` prints it.
fn decision_log_schema() -> serde_json::Value {
    use serde_json::json;
    let price = json!({"type": ["number", "null"], "description": "in the quote currency; null on a HOLD without levels"});
    json!({
        "type": "object",
        "required": ["log_id", "created_at", "status", "executed", "executed_at", "mode", "origin", "decision", "risk_reward"],
        "properties": {
            "log_id": {"type": "string", "description": "decision_ followed by lowercase hex"},
            "created_at": {"type": "string", "description": "UTC, RFC 3339"},
            "status": {"type": "string", "enum": ["hold", "pending", "executed", "cancelled", "expired", "failed"]},
            "executed": {"type": "boolean"},
            "executed_at": {"type": ["string", "null"]},
            "mode": {"type": "string", "enum": ["paper", "live"]},
            "origin": {"type": "string", "enum": ["auto", "manual", "agent"]},
            "status_reason": {"type": ["string", "null"]},
            "decision": {
                "type": "object",
                "required": ["symbol", "action", "confidence", "reasoning", "entry_price", "take_profit", "stop_loss", "position_size", "ml_signal", "amd_phase"],
                "properties": {
                    "symbol": {"type": "string"},
                    "action": {"type": "string", "enum": ["BUY", "SELL", "HOLD"]},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "an uncalibrated score, not a probability"},
                    "raw_confidence": {"type": ["number", "null"]},
                    "reasoning": {"type": "string"},
                    "entry_price": price,
                    "take_profit": price,
                    "stop_loss": price,
                    "position_size": {"type": "number", "minimum": 0},
                    "ml_signal": {"description": "the signal as the source gave it (or why there was none)"},
                    "amd_phase": {"type": ["string", "null"]},
                    "trail_percent": {"type": ["number", "null"]},
                    "trail_amount": {"type": ["number", "null"]}
                }
            },
            "risk_reward": {
                "type": ["object", "null"],
                "description": "null on a HOLD",
                "required": ["risk_amount", "reward_amount", "risk_reward_ratio", "risk_percent", "reward_percent"],
                "properties": {
                    "risk_amount": {"type": "number"},
                    "reward_amount": {"type": "number"},
                    "risk_reward_ratio": {"type": "number"},
                    "risk_percent": {"type": "number"},
                    "reward_percent": {"type": "number"}
                }
            }
        }
    })
}

/// What each tool answers when it succeeds (`structuredContent`); a refusal is a tool error
/// (`isError: true`) with text content only.
pub fn output_schema(tool: &str) -> Arc<JsonObject> {
    use serde_json::json;
    let number = json!({"type": "number"});
    let v = match tool {
        GET_AMD_PHASE => json!({
            "type": "object",
            "required": ["symbol", "phase", "confidence"],
            "properties": {
                "symbol": {"type": "string"},
                "phase": {"type": "string", "enum": ["accumulation", "manipulation", "distribution"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "indicators": {"description": "the source's indicators, as it gave them"}
            }
        }),
        GET_ML_SIGNAL => json!({
            "type": "object",
            "required": ["symbol", "direction", "confidence", "entry_price", "take_profit", "stop_loss", "risk_reward_ratio"],
            "properties": {
                "symbol": {"type": "string"},
                "direction": {"type": "string", "enum": ["bullish", "bearish", "neutral"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "entry_price": number,
                "take_profit": number,
                "stop_loss": number,
                "risk_reward_ratio": number
            }
        }),
        AUTO_TRADE_DECISION | EXECUTE_TRADE => decision_log_schema(),
        LIST_PENDING | GET_DECISIONS => json!({
            "type": "object",
            "required": ["count", "decisions"],
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "decisions": {"type": "array", "items": decision_log_schema()}
            }
        }),
        GET_STATUS => json!({
            "type": "object",
            "required": ["user_id", "enabled", "kill_switch", "mode", "source", "symbols", "open_positions", "max_open_positions", "pending", "last_cycle"],
            "properties": {
                "user_id": {"type": "string"},
                "enabled": {"type": "boolean"},
                "kill_switch": {"type": "boolean"},
                "mode": {"type": "string", "enum": ["paper", "live"]},
                "source": {"type": "string", "enum": ["ml_engine", "simulated"]},
                "symbols": {"type": "array", "items": {"type": "string"}},
                "open_positions": {"type": "integer", "minimum": 0},
                "max_open_positions": {"type": "integer", "minimum": 1},
                "pending": {"type": "integer", "minimum": 0},
                "last_cycle": {"type": ["string", "null"]},
                "equity": number,
                "realized_pnl": number,
                "unrealized_pnl": number
            }
        }),
        _ => json!({"type": "object"}),
    };
    object_schema(v)
}

fn read_only(title: &str, open_world: bool) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(true)
        .open_world(open_world)
}

fn proposes(title: &str) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(false)
        .destructive(false)
        .idempotent(false)
        .open_world(true)
}

/// Every tool, in the order a client lists them, each with its output schema.
pub fn catalog() -> Vec<Tool> {
    let tools = vec![
        Tool::new(
            GET_AMD_PHASE,
            "The current AMD market phase of one symbol from the configured source (the ML engine, or \
             the built-in simulated market): {symbol, phase: \"accumulation\"|\"manipulation\"|\"distribution\", \
             confidence: an uncalibrated score in 0..1, not a probability, indicators: {...}}. Read-only: stores and proposes nothing. An unreachable \
             source or an answer that cannot be trusted is a tool error that says why.",
            schema::<SymbolArgs>(),
        )
        .with_annotations(read_only("AMD phase", true)),
        Tool::new(
            GET_ML_SIGNAL,
            "The current signal for one symbol from the configured source (the ML engine's, or on the simulated \
             market the built-in analyzer's): {symbol, direction: \"bullish\"|\"bearish\"|\"neutral\", \
             confidence: an uncalibrated score in 0..1 that ranks signals (not a probability of winning), entry_price, take_profit, stop_loss (prices in the quote currency), \
             risk_reward_ratio}. Read-only: stores and proposes nothing. An unreachable source or an answer \
             that cannot be trusted is a tool error that says why.",
            schema::<SymbolArgs>(),
        )
        .with_annotations(read_only("Signal", true)),
        Tool::new(
            AUTO_TRADE_DECISION,
            "Run the trading rules for one symbol now, as the monitoring loop does: signal direction x AMD phase \
             (bullish+accumulation BUY x0.95, bullish+manipulation BUY x0.70, bearish+distribution SELL x0.95, \
             bearish+manipulation SELL x0.70, anything else HOLD), min_confidence, risk sizing capped at \
             max_position_percent, and every gate (kill switch, auto-trading disabled, a position or pending \
             decision already on the symbol, max_open_positions). The decision is stored in the log with \
             origin \"agent\". A BUY or SELL is stored as PENDING: a proposal only, which waits for the human \
             trader to confirm or cancel it (never executed by this tool, even where the config auto-executes; \
             it expires after pending_expiry_minutes). A HOLD by the rules is a normal result with its \
             reasoning. When a gate blocks the trade, or the inputs cannot be trusted, the result is a tool \
             error that says why (the HOLD is still logged). Returns the decision log entry: {log_id, status, \
             origin, decision: {symbol, action, confidence (the signal's score x the matrix factor: an \
             uncalibrated score in 0..1, not a probability), reasoning, entry_price, take_profit, stop_loss, \
             position_size, ml_signal, amd_phase}, risk_reward: {risk_amount, reward_amount (in the quote \
             currency), risk_reward_ratio, risk_percent, reward_percent (the stop-loss's and the take-profit's \
             distance from the entry, as a percent of the entry price)} or null}.",
            schema::<SymbolArgs>(),
        )
        .with_annotations(proposes("Propose the rules' decision")),
        Tool::new(
            EXECUTE_TRADE,
            "Propose a manual trade on one symbol: entry at the latest market price; take_profit and \
             stop_loss from the symbol's signal unless given (a trade against the signal needs its own); size \
             from the risk rules unless given. Its confidence (an uncalibrated score in 0..1, not a \
             probability) is the signal's score when the side goes the signal's way, else 0, and its reasoning says counter-signal (against the signal) or no signal \
             support (a neutral signal, or none). It \
             does NOT execute: the trade is stored as a PENDING decision with origin \"agent\" and its \
             risk/reward analysis, and only the human trader can confirm or cancel it (it expires after \
             pending_expiry_minutes). Refused, as a tool error with the reason, when a gate blocks it (kill \
             switch, auto-trading disabled, a position or pending decision already on the symbol, \
             max_open_positions reached), when the levels are on the wrong side (buy: stop_loss < entry < \
             take_profit; sell: take_profit < entry < stop_loss), when size is over the cap, or when no \
             price is known. Returns the decision log entry, as auto_trade_decision does.",
            schema::<TradeArgs>(),
        )
        .with_annotations(proposes("Propose a manual trade")),
        Tool::new(
            LIST_PENDING,
            "The decisions waiting for the trader's confirmation, newest first: {count, decisions: \
             [decision log entry]}. Each has its log_id, origin (auto, manual or agent), age (created_at, \
             UTC) and risk/reward. At most one per symbol; they expire after pending_expiry_minutes. An \
             agent cannot confirm or cancel them.",
            schema::<NoArgs>(),
        )
        .with_annotations(read_only("Pending decisions", false)),
        Tool::new(
            GET_STATUS,
            "The engine's state: {user_id, enabled, kill_switch, mode: \"paper\"|\"live\", source: \
             \"ml_engine\"|\"simulated\", symbols, open_positions, max_open_positions, pending, last_cycle \
             (UTC), equity, realized_pnl, unrealized_pnl (account currency), config, data_dir, database (\"sqlite\", or the PostgreSQL URL without its password)}. Proposals \
             are refused while enabled is false or kill_switch is true.",
            schema::<NoArgs>(),
        )
        .with_annotations(read_only("Status", false)),
        Tool::new(
            GET_DECISIONS,
            "The decision log, the audit trail, newest first: {count, decisions: [decision log entry]}. \
             Every decision is there, HOLDs included, with status hold|pending|executed|cancelled|expired|failed \
             and origin auto|manual|agent.",
            schema::<DecisionsArgs>(),
        )
        .with_annotations(read_only("Decision log", false)),
    ];
    tools
        .into_iter()
        .map(|t| {
            let schema = output_schema(&t.name);
            t.with_raw_output_schema(schema)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        let tools = catalog();
        assert_eq!(
            tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(),
            NAMES
        );
        for t in &tools {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            assert!(t.description.as_ref().is_some_and(|d| d.len() > 80));
        }
        let trade = &tools[3].input_schema;
        assert_eq!(trade["required"], json!(["symbol", "side"]));
        assert_eq!(trade["additionalProperties"], json!(false));
    }

    #[test]
    fn every_confidence_an_agent_reads_about_is_called_an_uncalibrated_score() {
        assert!(
            INSTRUCTIONS.contains("uncalibrated score in 0..1")
                && INSTRUCTIONS.contains("not a probability of winning")
                && INSTRUCTIONS.contains("counter-signal"),
            "{INSTRUCTIONS}"
        );
        for t in catalog() {
            let d = t.description.as_deref().unwrap_or_default();
            if d.contains("confidence") {
                assert!(d.contains("uncalibrated score"), "{}: {d}", t.name);
            }
            // The signal may be the built-in analyzer's: no tool says it is the ML engine's alone.
            assert!(!d.contains("The ML engine's"), "{}: {d}", t.name);
        }
        let trade = &catalog()[3];
        let d = trade.description.as_deref().unwrap_or_default();
        assert!(
            d.contains("counter-signal") && d.contains("no signal support"),
            "{d}"
        );
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let e = parse::<SymbolArgs>("get_ml_signal", None).unwrap_err();
        assert!(e.contains("missing field `symbol`"), "{e}");
        let e = parse::<TradeArgs>(
            "execute_trade",
            obj(json!({"symbol": "BTC/USD", "side": "hold"})),
        )
        .unwrap_err();
        assert!(
            e.contains(r#"side must be "buy" or "sell", got "hold""#),
            "{e}"
        );
        let e = parse::<TradeArgs>(
            "execute_trade",
            obj(json!({"symbol": "BTC/USD", "side": "buy", "tp": 1.0})),
        )
        .unwrap_err();
        assert!(e.contains("unknown field `tp`"), "{e}");
        let t = parse::<TradeArgs>(
            "execute_trade",
            obj(json!({"symbol": "BTC/USD", "side": "SELL", "size": null})),
        )
        .unwrap();
        assert_eq!((t.side, t.size), (Side::Sell, None));
        assert!(positive("execute_trade", "size", Some(-1.0)).is_err());
        assert!(positive("execute_trade", "size", Some(f64::NAN)).is_err());
        assert_eq!(
            positive("execute_trade", "size", Some(0.5)).unwrap(),
            Some(0.5)
        );
    }
}
