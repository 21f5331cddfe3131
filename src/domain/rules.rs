//! The decision rules of the product contract, one function per rule, checkable against it by eye.
//!
//! Input: the raw JSON the source answered (or why it could not), the risk settings and
//! the gates as the store sees them. Output: a [`Decision`]. Nothing here does I/O.

pub use super::matrix::matrix;
pub use super::money::{QTY_DP, fmt_num, mul_exact, round_dp, sub_exact};
use super::money::{distance, floor_qty_div, percent_of};
use super::types::{AmdAnalysis, Direction, MlSignal, Phase, Verdict};
use crate::analytics::stats::Calibration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Account and risk limits used for sizing (SPEC rules 3 and 4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskSettings {
    pub account_size: f64,
    pub max_risk_percent: f64,
    pub max_position_percent: f64,
    pub min_confidence: f64,
}

/// What the store knows at decision time (SPEC rule 6).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Gates {
    pub enabled: bool,
    pub kill_switch: bool,
    /// A loss halt is in force (`[risk]`).
    pub halted: bool,
    pub symbol_has_open_position: bool,
    pub symbol_has_pending: bool,
    pub open_positions: usize,
    pub max_open_positions: usize,
}

impl Gates {
    /// The first gate that blocks a new trade, in the trader's words.
    pub fn blocked_by(&self, symbol: &str) -> Option<String> {
        if self.halted {
            return Some("a loss halt is in force (`enable --reset` clears it)".into());
        }
        if self.kill_switch {
            return Some("kill switch is on".into());
        }
        if !self.enabled {
            return Some("auto-trading is disabled".into());
        }
        if self.symbol_has_open_position {
            return Some(format!("{symbol} already has an open position"));
        }
        if self.symbol_has_pending {
            return Some(format!("{symbol} already has a pending decision"));
        }
        if self.open_positions >= self.max_open_positions {
            return Some(format!(
                "open positions {} >= max_open_positions {}",
                self.open_positions, self.max_open_positions
            ));
        }
        None
    }
}

/// Rule 5: the risk/reward analysis of an actionable decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskReward {
    pub risk_amount: f64,
    pub reward_amount: f64,
    pub risk_reward_ratio: f64,
    pub risk_percent: f64,
    pub reward_percent: f64,
}

/// A decision as the seed's TradeDecision names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub symbol: String,
    pub action: Verdict,
    pub confidence: f64,
    pub reasoning: String,
    pub entry_price: Option<f64>,
    pub take_profit: Option<f64>,
    pub stop_loss: Option<f64>,
    pub position_size: f64,
    pub ml_signal: Value,
    pub amd_phase: Option<Phase>,
    #[serde(default)]
    pub risk_reward: Option<RiskReward>,
    /// The score before calibration, when `confidence` is a calibrated one (see
    /// [`crate::analytics::stats::Calibration`]); none when `confidence` is the raw score.
    #[serde(default)]
    pub raw_confidence: Option<f64>,
    /// The trailing stop the position will have: asked for with the trade, or the config's
    /// `[risk] trailing_stop_percent`; none for a fixed stop.
    #[serde(default)]
    pub trail: Option<super::trail::Trail>,
}

impl Decision {
    /// A HOLD with confidence 0 and the reason nothing can be traded.
    pub fn untrusted(
        symbol: &str,
        reasoning: String,
        ml_signal: Value,
        phase: Option<Phase>,
    ) -> Self {
        Decision {
            symbol: symbol.to_string(),
            action: Verdict::Hold,
            confidence: 0.0,
            reasoning,
            entry_price: None,
            take_profit: None,
            stop_loss: None,
            position_size: 0.0,
            ml_signal,
            amd_phase: phase,
            risk_reward: None,
            raw_confidence: None,
            trail: None,
        }
    }
}

/// Decision confidences are kept to 10 decimal places: the exact product of rule 1 for any
/// ML confidence a model reports, without binary noise (0.87 × 0.95 is 0.8265).
pub const CONFIDENCE_DP: i32 = 10;

/// A confidence for the reasoning: four places, or every place it has when it has more.
fn fmt_confidence(c: f64) -> String {
    let four = format!("{c:.4}");
    if four.parse::<f64>().ok() == Some(c) {
        four
    } else {
        format!("{c}")
    }
}

fn field_f64(obj: &serde_json::Map<String, Value>, key: &str, what: &str) -> Result<f64, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(format!("{what}: missing field {key}")),
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("{what}: {key} {n} is not a number")),
        Some(Value::String(s))
            if s.eq_ignore_ascii_case("nan") || s.to_ascii_lowercase().contains("inf") =>
        {
            Err(format!("{what}: {key} {s} is not finite"))
        }
        Some(other) => Err(format!("{what}: {key} must be a number, got {other}")),
    }
}

fn confidence_field(obj: &serde_json::Map<String, Value>, what: &str) -> Result<f64, String> {
    let c = field_f64(obj, "confidence", what)?;
    if !c.is_finite() || !(0.0..=1.0).contains(&c) {
        return Err(format!("{what}: confidence {c} is outside 0..=1"));
    }
    Ok(c)
}

fn price_field(obj: &serde_json::Map<String, Value>, key: &str, what: &str) -> Result<f64, String> {
    let p = field_f64(obj, key, what)?;
    if !p.is_finite() {
        return Err(format!("{what}: {key} {p} is not finite"));
    }
    if p <= 0.0 {
        return Err(format!("{what}: {key} {p} is not > 0"));
    }
    // Beyond these, sizes and money stop being exact (or finite): not a price to trade on.
    if !(MIN_PRICE..=MAX_PRICE).contains(&p) {
        return Err(format!(
            "{what}: {key} {p} is outside the prices this program trades ({MIN_PRICE:e} to {MAX_PRICE:e})"
        ));
    }
    Ok(p)
}

/// The smallest and largest prices a signal may carry.
pub const MIN_PRICE: f64 = 1e-9;
pub const MAX_PRICE: f64 = 1e12;

/// Rule 2 for the ML signal: every field present, finite and in range.
pub fn parse_signal(v: &Value) -> Result<MlSignal, String> {
    let what = "ML signal";
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what}: expected a JSON object, got {}", kind_of(v)))?;
    let direction = match obj.get("direction") {
        None | Some(Value::Null) => return Err(format!("{what}: missing field direction")),
        Some(Value::String(s)) => {
            Direction::parse(s).ok_or_else(|| format!("{what}: unknown direction {s:?}"))?
        }
        Some(other) => return Err(format!("{what}: direction must be a string, got {other}")),
    };
    let confidence = confidence_field(obj, what)?;
    let entry_price = price_field(obj, "entry_price", what)?;
    let take_profit = price_field(obj, "take_profit", what)?;
    let stop_loss = price_field(obj, "stop_loss", what)?;
    let risk_reward_ratio = match obj.get("risk_reward_ratio") {
        None | Some(Value::Null) => return Err(format!("{what}: missing field risk_reward_ratio")),
        Some(_) => {
            let r = field_f64(obj, "risk_reward_ratio", what)?;
            if !r.is_finite() {
                return Err(format!("{what}: risk_reward_ratio {r} is not finite"));
            }
            r
        }
    };
    Ok(MlSignal {
        direction,
        confidence,
        entry_price,
        take_profit,
        stop_loss,
        risk_reward_ratio,
    })
}

/// Rule 2 for the AMD phase.
pub fn parse_phase(v: &Value) -> Result<AmdAnalysis, String> {
    let what = "AMD phase";
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what}: expected a JSON object, got {}", kind_of(v)))?;
    let phase = match obj.get("phase") {
        None | Some(Value::Null) => return Err(format!("{what}: missing field phase")),
        Some(Value::String(s)) => {
            Phase::parse(s).ok_or_else(|| format!("{what}: unknown phase {s:?}"))?
        }
        Some(other) => return Err(format!("{what}: phase must be a string, got {other}")),
    };
    let confidence = confidence_field(obj, what)?;
    let indicators = obj.get("indicators").cloned().unwrap_or(Value::Null);
    Ok(AmdAnalysis {
        phase,
        confidence,
        indicators,
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Rule 2, the price layout: SL and TP on the right side of entry for the action.
pub fn check_levels(
    action: Verdict,
    entry: f64,
    take_profit: f64,
    stop_loss: f64,
) -> Result<(), String> {
    if stop_loss == entry {
        return Err(format!(
            "stop_loss {} equals entry_price {}",
            fmt_num(stop_loss),
            fmt_num(entry)
        ));
    }
    match action {
        Verdict::Buy => {
            if stop_loss >= entry {
                return Err(format!(
                    "BUY needs stop_loss < entry_price, got stop_loss {} >= entry_price {}",
                    fmt_num(stop_loss),
                    fmt_num(entry)
                ));
            }
            if take_profit <= entry {
                return Err(format!(
                    "BUY needs take_profit > entry_price, got take_profit {} <= entry_price {}",
                    fmt_num(take_profit),
                    fmt_num(entry)
                ));
            }
        }
        Verdict::Sell => {
            if stop_loss <= entry {
                return Err(format!(
                    "SELL needs stop_loss > entry_price, got stop_loss {} <= entry_price {}",
                    fmt_num(stop_loss),
                    fmt_num(entry)
                ));
            }
            if take_profit >= entry {
                return Err(format!(
                    "SELL needs take_profit < entry_price, got take_profit {} >= entry_price {}",
                    fmt_num(take_profit),
                    fmt_num(entry)
                ));
            }
        }
        Verdict::Hold => {}
    }
    Ok(())
}

/// Rule 4: the largest position the risk limits allow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    pub quantity: f64,
    pub risk_quantity: f64,
    pub cap_quantity: f64,
    pub capped: bool,
}

pub fn size_position(risk: &RiskSettings, entry: f64, stop_loss: f64) -> Sizing {
    let risk_amount = percent_of(risk.account_size, risk.max_risk_percent);
    let risk_per_unit = distance(entry, stop_loss);
    let risk_quantity = floor_qty_div(risk_amount, risk_per_unit);
    let cap_quantity = max_quantity(risk, entry);
    let capped = risk_quantity > cap_quantity;
    Sizing {
        quantity: if capped { cap_quantity } else { risk_quantity },
        risk_quantity,
        cap_quantity,
        capped,
    }
}

/// The position cap in units: quantity × entry ≤ account × max_position_percent / 100.
pub fn max_quantity(risk: &RiskSettings, entry: f64) -> f64 {
    floor_qty_div(
        percent_of(risk.account_size, risk.max_position_percent),
        entry,
    )
}

/// Rule 5.
pub fn risk_reward(quantity: f64, entry: f64, take_profit: f64, stop_loss: f64) -> RiskReward {
    let risk_per_unit = distance(entry, stop_loss);
    let reward_per_unit = distance(take_profit, entry);
    let risk_amount = mul_exact(quantity, risk_per_unit);
    let reward_amount = mul_exact(quantity, reward_per_unit);
    RiskReward {
        risk_amount: round_dp(risk_amount, 2),
        reward_amount: round_dp(reward_amount, 2),
        risk_reward_ratio: if risk_per_unit > 0.0 {
            round_dp(reward_per_unit / risk_per_unit, 2)
        } else {
            0.0
        },
        risk_percent: round_dp(risk_per_unit / entry * 100.0, 2),
        reward_percent: round_dp(reward_per_unit / entry * 100.0, 2),
    }
}

/// Everything [`decide`] needs for one symbol.
pub struct DecisionInput<'a> {
    pub symbol: &'a str,
    pub signal: &'a Result<Value, String>,
    pub phase: &'a Result<Value, String>,
    pub risk: &'a RiskSettings,
    pub gates: &'a Gates,
}

/// Rules 1 to 6 for one symbol.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    decide_calibrated(input, None)
}

/// Rules 1 to 6 for one symbol, the decision's score mapped through `calibration` (when
/// given) before rule 3 compares it with `min_confidence`; the raw score is kept beside it.
pub fn decide_calibrated(input: &DecisionInput<'_>, calibration: Option<&Calibration>) -> Decision {
    let symbol = input.symbol;
    let raw_signal = input.signal.as_ref().cloned().unwrap_or(Value::Null);
    let raw_phase = match input.phase {
        Ok(v) => v
            .get("phase")
            .and_then(Value::as_str)
            .and_then(Phase::parse),
        Err(_) => None,
    };
    let signal = match input.signal {
        Err(e) => {
            return Decision::untrusted(
                symbol,
                format!("ML signal unavailable: {e}"),
                raw_signal,
                raw_phase,
            );
        }
        Ok(v) => match parse_signal(v) {
            Ok(s) => s,
            Err(e) => return Decision::untrusted(symbol, e, raw_signal, raw_phase),
        },
    };
    let amd = match input.phase {
        Err(e) => {
            return Decision::untrusted(
                symbol,
                format!("AMD phase unavailable: {e}"),
                raw_signal,
                None,
            );
        }
        Ok(v) => match parse_phase(v) {
            Ok(p) => p,
            Err(e) => return Decision::untrusted(symbol, e, raw_signal, None),
        },
    };
    decide_scored(
        symbol,
        &signal,
        &amd,
        raw_signal,
        input.risk,
        input.gates,
        calibration,
    )
}

/// A cheap necessary condition for [`decide_validated`] to return BUY or SELL: rule 1 gives an
/// action, its confidence is not below `min_confidence` by more than rule 3's rounding can
/// move it, and no gate blocks (rule 6). When false the decision is a HOLD, so a hot loop
/// (the backtest, every bar) may skip writing out that HOLD's reasoning.
pub fn may_act(
    symbol: &str,
    direction: Direction,
    phase: Phase,
    ml_confidence: f64,
    risk: &RiskSettings,
    gates: &Gates,
) -> bool {
    let (action, confidence) = matrix(direction, phase, ml_confidence);
    action.is_actionable()
        && confidence >= risk.min_confidence - 1e-9
        && gates.blocked_by(symbol).is_none()
}

/// Rules 1 and 3 to 6 on inputs that passed validation.
pub fn decide_validated(
    symbol: &str,
    signal: &MlSignal,
    amd: &AmdAnalysis,
    raw_signal: Value,
    risk: &RiskSettings,
    gates: &Gates,
) -> Decision {
    decide_scored(symbol, signal, amd, raw_signal, risk, gates, None)
}

/// Calibrated scores are kept to 4 places: a rate observed on outcomes has no more to give.
const CALIBRATED_DP: i32 = 4;

fn decide_scored(
    symbol: &str,
    signal: &MlSignal,
    amd: &AmdAnalysis,
    raw_signal: Value,
    risk: &RiskSettings,
    gates: &Gates,
    calibration: Option<&Calibration>,
) -> Decision {
    let (action, conf) = matrix(signal.direction, amd.phase, signal.confidence);
    let raw = round_dp(conf, CONFIDENCE_DP);
    let confidence = match calibration {
        Some(c) if action.is_actionable() => round_dp(c.apply(raw), CALIBRATED_DP),
        _ => raw,
    };
    let raw_confidence = (calibration.is_some() && action.is_actionable()).then_some(raw);
    // An uncalibrated confidence is a score: it ranks signals, it is no probability.
    let scored = match raw_confidence {
        Some(r) => format!(
            "calibrated confidence {} (raw score {})",
            fmt_confidence(confidence),
            fmt_confidence(r)
        ),
        None => format!("score {}", fmt_confidence(confidence)),
    };
    let mut d = Decision {
        symbol: symbol.to_string(),
        action: Verdict::Hold,
        confidence,
        reasoning: String::new(),
        entry_price: Some(signal.entry_price),
        take_profit: Some(signal.take_profit),
        stop_loss: Some(signal.stop_loss),
        position_size: 0.0,
        ml_signal: raw_signal,
        amd_phase: Some(amd.phase),
        risk_reward: None,
        raw_confidence,
        trail: None,
    };
    let situation = format!(
        "{} signal ({:.2}) during {} ({:.2})",
        signal.direction, signal.confidence, amd.phase, amd.confidence
    );
    // Rule 2 holds whatever the matrix says: a stop-loss at the entry is not a signal to trust.
    if signal.stop_loss == signal.entry_price {
        return Decision::untrusted(
            symbol,
            format!(
                "stop_loss {} equals entry_price {}",
                fmt_num(signal.stop_loss),
                fmt_num(signal.entry_price)
            ),
            d.ml_signal,
            Some(amd.phase),
        );
    }
    if !action.is_actionable() {
        d.reasoning = match signal.direction {
            Direction::Neutral => format!("HOLD: neutral signal during {}", amd.phase),
            _ => format!("HOLD: {situation} does not support a trade"),
        };
        return d;
    }
    if let Err(e) = check_levels(
        action,
        signal.entry_price,
        signal.take_profit,
        signal.stop_loss,
    ) {
        return Decision::untrusted(symbol, e, d.ml_signal, Some(amd.phase));
    }
    if confidence < risk.min_confidence {
        d.reasoning = format!(
            "HOLD: {action} {scored} is below min_confidence {} ({situation})",
            fmt_confidence(risk.min_confidence)
        );
        return d;
    }
    if let Some(gate) = gates.blocked_by(symbol) {
        d.reasoning = format!("HOLD: {action} blocked: {gate} ({situation})");
        return d;
    }
    let sizing = size_position(risk, signal.entry_price, signal.stop_loss);
    if !(sizing.quantity > 0.0 && sizing.quantity.is_finite()) {
        d.reasoning = format!(
            "HOLD: {action} position size rounds to 0 (account {}, max_position_percent {})",
            fmt_num(risk.account_size),
            fmt_num(risk.max_position_percent)
        );
        return d;
    }
    d.action = action;
    d.position_size = sizing.quantity;
    d.risk_reward = Some(risk_reward(
        sizing.quantity,
        signal.entry_price,
        signal.take_profit,
        signal.stop_loss,
    ));
    let cap_note = if sizing.capped {
        format!(
            ", size capped at {}% of account",
            fmt_num(risk.max_position_percent)
        )
    } else {
        String::new()
    };
    d.reasoning = format!("{action}: {situation}, {scored}{cap_note}");
    d
}

/// The config's defaults (account 10,000, 1.5 % risk, 20 % cap, 0.75), for unit tests.
#[cfg(test)]
pub(crate) const DEFAULT_RISK: RiskSettings = RiskSettings {
    account_size: 10_000.0,
    max_risk_percent: 1.5,
    max_position_percent: 20.0,
    min_confidence: 0.75,
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn risk() -> RiskSettings {
        DEFAULT_RISK
    }

    fn decide_on(signal: Value, phase: &str) -> Decision {
        let gates = Gates {
            enabled: true,
            max_open_positions: 3,
            ..Gates::default()
        };
        decide(&DecisionInput {
            symbol: "X/USD",
            signal: &Ok(signal),
            phase: &Ok(json!({"phase": phase, "confidence": 0.8})),
            risk: &risk(),
            gates: &gates,
        })
    }

    #[test]
    fn risk_amounts_are_exact_to_the_cent() {
        // 0.01095 × 300 = 3.285 exactly: rounds up to 3.29 (binary gives 3.2849999…).
        let rr = risk_reward(0.01095, 45_300.0, 46_200.0, 45_000.0);
        assert_eq!(rr.risk_amount, 3.29);
        assert_eq!(rr.reward_amount, 9.86);
    }

    #[test]
    fn absurd_prices_are_untrusted_and_never_size_to_infinity() {
        let d = decide_on(
            json!({"direction": "bullish", "confidence": 0.9, "entry_price": 1e-300,
                   "take_profit": 2e-300, "stop_loss": 5e-301, "risk_reward_ratio": 2.0}),
            "accumulation",
        );
        assert_eq!(d.action, Verdict::Hold);
        assert_eq!(d.confidence, 0.0);
        assert!(
            d.reasoning.contains("outside the prices"),
            "{}",
            d.reasoning
        );
        let d = decide_on(
            json!({"direction": "bullish", "confidence": 0.9, "entry_price": 100.0,
                   "take_profit": 1e308, "stop_loss": 99.0, "risk_reward_ratio": 2.0}),
            "accumulation",
        );
        assert_eq!(d.action, Verdict::Hold);
        assert!(d.reasoning.contains("take_profit"), "{}", d.reasoning);
    }

    #[test]
    fn stop_loss_at_entry_is_untrusted_even_where_the_matrix_holds() {
        let d = decide_on(
            json!({"direction": "bullish", "confidence": 0.9, "entry_price": 50.0,
                   "take_profit": 55.0, "stop_loss": 50.0, "risk_reward_ratio": 2.0}),
            "distribution",
        );
        assert_eq!(d.action, Verdict::Hold);
        assert_eq!(d.confidence, 0.0);
        assert_eq!(d.reasoning, "stop_loss 50 equals entry_price 50");
    }
}
