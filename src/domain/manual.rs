//! The seed's execute_trade: a trader names a symbol and a side; take-profit and stop-loss
//! come from the symbol's signal (the ML engine's, or the built-in analyzer's) unless given,
//! the size from the risk rules unless given, and the same validation and cap apply as for
//! automatic decisions.
//!
//! A manual order keeps its signal's score only when it goes the signal's way (a BUY on a
//! bullish signal). Against the signal (a BUY on a bearish one) it is a counter-signal trade;
//! on a neutral signal, or with no valid signal, nothing supports it: either way its score is
//! 0 and its reasoning says so, so that no trade borrows a confidence it does not have.

use super::lifecycle::Origin;
use super::rules::{self, Decision, RiskSettings};
use super::score::{Support, fmt_score};
use super::trail::{Trail, TrailProblem};
use super::types::{Direction, MlSignal, Phase, Side, Verdict};
use serde_json::Value;

/// What the trader asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualOrder {
    pub symbol: String,
    pub side: Side,
    pub size: Option<f64>,
    pub take_profit: Option<f64>,
    pub stop_loss: Option<f64>,
    /// A trailing stop; none: a fixed stop (the desk gives it the config's default trail).
    pub trail: Option<Trail>,
}

/// What the market says at the time of the order.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketContext {
    /// The latest known price: the entry.
    pub price: Option<f64>,
    /// The symbol's signal, when it could be had and was valid.
    pub signal: Option<MlSignal>,
    /// The raw signal as received (stored with the decision).
    pub raw_signal: Value,
    pub phase: Option<Phase>,
}

/// A level of a manual order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    TakeProfit,
    StopLoss,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::TakeProfit => "take_profit",
            Level::StopLoss => "stop_loss",
        }
    }
}

/// Why the rules refuse a manual order. Each front end says how to fix it in its own words
/// (a flag, a form field, a tool argument): see [`ManualRefusal::explain`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManualRefusal {
    #[error("{0}")]
    Invalid(String),
    /// No level given, and no valid signal to take it from.
    #[error("no {} given and no valid signal for {symbol} to take it from", level.name())]
    NoLevel { level: Level, symbol: String },
    /// The signal's levels are on the wrong side for the order (as they always are for an
    /// order against the signal: `against` is then the signal's direction and the order's side).
    #[error("{message} ({})", levels_from(*against))]
    SignalLevels {
        message: String,
        against: Option<(Direction, Side)>,
    },
    /// The trail cannot be used; each front end names its field or flag with the value.
    #[error("trail {trail}: {problem}")]
    Trail { trail: Trail, problem: TrailProblem },
}

/// Where the refused levels came from: `levels from the signal`, or, for an order against
/// it, `levels from the bullish signal, which this SELL goes against`.
fn levels_from(against: Option<(Direction, Side)>) -> String {
    match against {
        Some((direction, side)) => {
            format!("levels from the {direction} signal, which this {side} goes against")
        }
        None => "levels from the signal".into(),
    }
}

impl ManualRefusal {
    /// The refusal with its fix: `give(level)` names how to give one level, `override_levels`
    /// how to give both.
    pub fn explain(&self, give: impl Fn(Level) -> String, override_levels: &str) -> String {
        match self {
            ManualRefusal::Invalid(m) => m.clone(),
            ManualRefusal::Trail { .. } => self.to_string(),
            ManualRefusal::NoLevel { level, .. } => format!("{self}: {}", give(*level)),
            ManualRefusal::SignalLevels { message, against } => {
                format!(
                    "{message} ({}; {override_levels} to override)",
                    levels_from(*against)
                )
            }
        }
    }
}

impl From<String> for ManualRefusal {
    fn from(m: String) -> Self {
        ManualRefusal::Invalid(m)
    }
}

fn positive(name: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{name} {} must be a number > 0", rules::fmt_num(v)))
    }
}

/// A price the trader typed: > 0 and within the prices the rules trade.
fn price(name: &str, v: f64) -> Result<f64, String> {
    let v = positive(name, v)?;
    if !(rules::MIN_PRICE..=rules::MAX_PRICE).contains(&v) {
        return Err(format!(
            "{name} {} is outside the prices this program trades ({:e} to {:e})",
            rules::fmt_num(v),
            rules::MIN_PRICE,
            rules::MAX_PRICE
        ));
    }
    Ok(v)
}

/// Build the decision for a manual order, or say why it is refused.
pub fn manual_decision(
    order: &ManualOrder,
    market: &MarketContext,
    risk: &RiskSettings,
    origin: Origin,
) -> Result<Decision, ManualRefusal> {
    let verdict = Verdict::from(order.side);
    let entry = market
        .price
        .filter(|p| p.is_finite() && *p > 0.0)
        .ok_or_else(|| {
            format!(
                "no price available for {}: cannot size or place the trade",
                order.symbol
            )
        })?;
    let from_signal = |level: Level, v: Option<f64>| match v {
        Some(x) => Ok((x, "signal")),
        None => Err(ManualRefusal::NoLevel {
            level,
            symbol: order.symbol.clone(),
        }),
    };
    let (take_profit, tp_from) = match order.take_profit {
        Some(tp) => (price("take_profit", tp)?, "given"),
        None => from_signal(
            Level::TakeProfit,
            market.signal.as_ref().map(|s| s.take_profit),
        )?,
    };
    let (stop_loss, sl_from) = match order.stop_loss {
        Some(sl) => (price("stop_loss", sl)?, "given"),
        None => from_signal(Level::StopLoss, market.signal.as_ref().map(|s| s.stop_loss))?,
    };
    let trail = order
        .trail
        .map(|t| {
            t.check_at(entry)
                .map_err(|problem| ManualRefusal::Trail { trail: t, problem })
        })
        .transpose()?;
    let support = Support::of(verdict, market.signal.as_ref());
    rules::check_levels(verdict, entry, take_profit, stop_loss).map_err(|e| {
        if tp_from == "signal" || sl_from == "signal" {
            ManualRefusal::SignalLevels {
                message: e,
                against: match support {
                    Support::Against(d) => Some((d, order.side)),
                    _ => None,
                },
            }
        } else {
            ManualRefusal::Invalid(e)
        }
    })?;
    let cap = rules::max_quantity(risk, entry);
    let (quantity, size_note) = match order.size {
        Some(q) => {
            let q = positive("size", q)?;
            if q > cap {
                return Err(ManualRefusal::Invalid(format!(
                    "size {} is over the cap of {} {} (max_position_percent {}% of account {} at price {})",
                    rules::fmt_num(q),
                    rules::fmt_num(cap),
                    order.symbol,
                    rules::fmt_num(risk.max_position_percent),
                    rules::fmt_num(risk.account_size),
                    rules::fmt_num(entry)
                )));
            }
            (q, "size given".to_string())
        }
        None => {
            let s = rules::size_position(risk, entry, stop_loss);
            if s.quantity <= 0.0 {
                return Err(ManualRefusal::Invalid(format!(
                    "the risk rules size this trade at 0 {}",
                    order.symbol
                )));
            }
            let note = if s.capped {
                format!(
                    "size from risk rules, capped at {}% of account",
                    rules::fmt_num(risk.max_position_percent)
                )
            } else {
                format!(
                    "size from risk rules ({}% risk)",
                    rules::fmt_num(risk.max_risk_percent)
                )
            };
            (s.quantity, note)
        }
    };
    let rr = rules::risk_reward(quantity, entry, take_profit, stop_loss);
    // Only an order that goes the signal's way keeps its score.
    let (confidence, stance, along) = match (support, market.signal.as_ref()) {
        (Support::Along(d), Some(s)) => {
            let c = rules::round_dp(s.confidence, 4);
            (
                c,
                String::new(),
                format!("; along the {d} signal, score {}", fmt_score(c)),
            )
        }
        (Support::Against(d), _) => (
            0.0,
            format!(" against a {d} signal (counter-signal, score 0)"),
            String::new(),
        ),
        (Support::Unsupported(Some(d)), _) => (
            0.0,
            format!(" with no signal support (the signal is {d}; score 0)"),
            String::new(),
        ),
        _ => (
            0.0,
            " with no signal support (no valid signal; score 0)".to_string(),
            String::new(),
        ),
    };
    Ok(Decision {
        symbol: order.symbol.clone(),
        action: verdict,
        confidence,
        reasoning: format!(
            "{}{stance}: {} {} at {}; take_profit {} ({tp_from}), stop_loss {} ({sl_from}); {size_note}{along}",
            match origin {
                Origin::Agent => "agent proposal",
                _ => "manual trade",
            },
            order.side,
            order.symbol,
            rules::fmt_num(entry),
            rules::fmt_num(take_profit),
            rules::fmt_num(stop_loss)
        ),
        entry_price: Some(entry),
        take_profit: Some(take_profit),
        stop_loss: Some(stop_loss),
        position_size: quantity,
        ml_signal: market.raw_signal.clone(),
        amd_phase: market.phase,
        risk_reward: Some(rr),
        raw_confidence: None,
        trail,
    })
}

/// Limits a trader lifts one at a time, on purpose (`trade --allow-risk PCT`,
/// `--allow-rr RATIO`). Agents never lift them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Overrides {
    /// Accept a risk up to this percent of the account, above `max_risk_percent`.
    pub risk_percent: Option<f64>,
    /// Accept a reward-to-risk ratio down to this, below 1.
    pub reward_to_risk: Option<f64>,
    /// Accept a position worth up to this percent of the account, above
    /// `max_position_percent` (at most 100).
    pub position_percent: Option<f64>,
    /// The order came from the command line: a refusal names the flag that lifts it.
    pub from_command_line: bool,
}

impl Overrides {
    /// Whether any limit is lifted.
    pub fn any(&self) -> bool {
        self.risk_percent.is_some()
            || self.reward_to_risk.is_some()
            || self.position_percent.is_some()
    }
}

/// `x` rounded up to 2 decimals: a limit that lets `x` through.
fn ceil2(x: f64) -> f64 {
    (x * 100.0 - 1e-9).ceil() / 100.0
}

/// The manual decision with every fat-finger limit: the position cap (in
/// [`manual_decision`]), the risk and the reward-to-risk ([`fat_finger`]), `allow` lifting
/// each one on purpose. A refusal from the command line names the flag that lifts it.
pub fn checked_decision(
    order: &ManualOrder,
    market: &MarketContext,
    risk: &RiskSettings,
    origin: Origin,
    allow: &Overrides,
) -> Result<Decision, ManualRefusal> {
    let mut lifted = *risk;
    if let Some(p) = allow.position_percent {
        lifted.max_position_percent = lifted.max_position_percent.max(p.min(100.0));
    }
    let entry = market.price.filter(|p| p.is_finite() && *p > 0.0);
    let d = manual_decision(order, market, &lifted, origin).map_err(|e| {
        match (e, order.size, entry) {
            (ManualRefusal::Invalid(m), Some(q), Some(entry))
                if allow.from_command_line
                    && allow.position_percent.is_none()
                    && q > rules::max_quantity(&lifted, entry)
                    && risk.account_size > 0.0 =>
            {
                let pct = ceil2(q * entry / risk.account_size * 100.0);
                ManualRefusal::Invalid(if pct <= 100.0 {
                    format!(
                        "{m} (to take it on purpose: --allow-value {})",
                        rules::fmt_num(pct)
                    )
                } else {
                    format!("{m}; no position may be worth more than the account")
                })
            }
            (e, ..) => e,
        }
    })?;
    fat_finger(&d, risk, allow, allow.from_command_line).map_err(ManualRefusal::Invalid)?;
    Ok(d)
}

/// The limits a manual order is over that may be lifted on purpose, each just enough for it
/// (`None`: it is over none, or over one that is never lifted, such as risking more than the
/// whole account). The dashboard's form asks before it takes them.
pub fn needed_overrides(
    order: &ManualOrder,
    market: &MarketContext,
    risk: &RiskSettings,
    origin: Origin,
) -> Option<Overrides> {
    let account = risk.account_size;
    let entry = market.price.filter(|p| p.is_finite() && *p > 0.0)?;
    if account <= 0.0 {
        return None;
    }
    let mut allow = Overrides::default();
    if let Some(q) = order.size.filter(|q| q.is_finite() && *q > 0.0)
        && q > rules::max_quantity(risk, entry)
    {
        allow.position_percent = Some(ceil2(q * entry / account * 100.0)).filter(|p| *p <= 100.0);
        allow.position_percent?;
    }
    let mut lifted = *risk;
    if let Some(p) = allow.position_percent {
        lifted.max_position_percent = p;
    }
    let d = manual_decision(order, market, &lifted, origin).ok()?;
    let rr = d.risk_reward?;
    let risk_pct = rr.risk_amount / account * 100.0;
    if risk_pct > risk.max_risk_percent + 1e-9 {
        allow.risk_percent = Some(ceil2(risk_pct)).filter(|p| *p <= 100.0);
        allow.risk_percent?;
    }
    if rr.risk_reward_ratio < MIN_REWARD_TO_RISK {
        allow.reward_to_risk = Some(rr.risk_reward_ratio);
    }
    (allow.any() && checked_decision(order, market, risk, origin, &allow).is_ok()).then_some(allow)
}

/// The lowest reward-to-risk a manual trade may have unless lifted.
pub const MIN_REWARD_TO_RISK: f64 = 1.0;

/// The fat-finger limits of a manual or agent trade, or of a new size: what it risks at its
/// stop-loss against `max_risk_percent` of the account, and its reward-to-risk against 1,
/// each liftable by its override; and, whatever is lifted, never more at risk than the
/// whole account. Each refusal names the figure, the limit and how to lift it.
/// `cli_hint`: the refusal names the command line's flag that lifts it.
pub fn fat_finger(
    d: &Decision,
    risk: &RiskSettings,
    allow: &Overrides,
    cli_hint: bool,
) -> Result<(), String> {
    let Some(rr) = d.risk_reward else {
        return Ok(());
    };
    let account = risk.account_size;
    if rr.risk_amount > account {
        return Err(format!(
            "risk {} is more than the whole account {}: never allowed",
            rules::fmt_num(rr.risk_amount),
            rules::fmt_num(account)
        ));
    }
    let risk_pct = if account > 0.0 {
        rr.risk_amount / account * 100.0
    } else {
        f64::INFINITY
    };
    // The rules round sizes down to 8 places: a hair over the limit from rounding is not over.
    let limit = allow.risk_percent.unwrap_or(risk.max_risk_percent);
    if risk_pct > limit + 1e-9 {
        return Err(format!(
            "risk {} = {}% of account {} is over {} {}%{}",
            rules::fmt_num(rr.risk_amount),
            rules::fmt_num(rules::round_dp(risk_pct, 2)),
            rules::fmt_num(account),
            if allow.risk_percent.is_some() {
                "the allowed"
            } else {
                "max_risk_percent"
            },
            rules::fmt_num(limit),
            if allow.risk_percent.is_some() || !cli_hint {
                String::new()
            } else {
                format!(
                    " (to take it on purpose: --allow-risk {})",
                    rules::fmt_num((risk_pct * 100.0).ceil() / 100.0)
                )
            }
        ));
    }
    let min_rr = allow.reward_to_risk.unwrap_or(MIN_REWARD_TO_RISK);
    if rr.risk_reward_ratio < min_rr {
        return Err(format!(
            "reward:risk {} (reward {} for risk {}) is below {}{}",
            rules::fmt_num(rr.risk_reward_ratio),
            rules::fmt_num(rr.reward_amount),
            rules::fmt_num(rr.risk_amount),
            rules::fmt_num(min_rr),
            if allow.reward_to_risk.is_some() || !cli_hint {
                String::new()
            } else {
                format!(
                    " (to take it on purpose: --allow-rr {})",
                    rules::fmt_num(rr.risk_reward_ratio)
                )
            }
        ));
    }
    Ok(())
}

/// A new size for a pending decision: validated against the cap, with its new risk/reward.
pub fn resize(decision: &Decision, size: f64, risk: &RiskSettings) -> Result<Decision, String> {
    let size = positive("size", size)?;
    let (Some(entry), Some(tp), Some(sl)) = (
        decision.entry_price,
        decision.take_profit,
        decision.stop_loss,
    ) else {
        return Err("this decision has no entry, take-profit or stop-loss".into());
    };
    let cap = rules::max_quantity(risk, entry);
    if size > cap {
        return Err(format!(
            "size {} is over the cap of {} (max_position_percent {}% of account {})",
            rules::fmt_num(size),
            rules::fmt_num(cap),
            rules::fmt_num(risk.max_position_percent),
            rules::fmt_num(risk.account_size)
        ));
    }
    let mut d = decision.clone();
    d.position_size = size;
    d.risk_reward = Some(rules::risk_reward(size, entry, tp, sl));
    Ok(d)
}

#[cfg(test)]
mod tests {

    #[test]
    fn fat_finger_limits_refuse_with_their_figures_and_lift_one_at_a_time() {
        // A SELL of 0.1 at 2,500 with TP 1 and SL 999,999: risks 99,749.9 on 10,000.
        let o = ManualOrder {
            symbol: "ETH/USD".into(),
            side: Side::Sell,
            size: Some(0.1),
            take_profit: Some(1.0),
            stop_loss: Some(999_999.0),
            trail: None,
        };
        let d = manual_decision(&o, &market(2_500.0), &risk(), Origin::Manual).unwrap();
        let lifted = Overrides {
            risk_percent: Some(100.0),
            reward_to_risk: Some(0.0),
            position_percent: None,
            from_command_line: true,
        };
        let e = fat_finger(&d, &risk(), &lifted, true).unwrap_err();
        assert_eq!(
            e,
            "risk 99749.9 is more than the whole account 10000: never allowed"
        );
        // 0.8 (the cap) at 2,500 with SL 2,750: risks 200, 2 % of the account, over 1.5 %.
        let o = ManualOrder {
            size: Some(0.8),
            take_profit: Some(2_000.0),
            stop_loss: Some(2_750.0),
            ..o
        };
        let d = manual_decision(&o, &market(2_500.0), &risk(), Origin::Manual).unwrap();
        let e = fat_finger(&d, &risk(), &Overrides::default(), true).unwrap_err();
        assert_eq!(
            e,
            "risk 200 = 2% of account 10000 is over max_risk_percent 1.5% (to take it on purpose: --allow-risk 2)"
        );
        let allow = Overrides {
            risk_percent: Some(2.0),
            ..Overrides::default()
        };
        assert_eq!(fat_finger(&d, &risk(), &allow, true), Ok(()));
        let short = Overrides {
            risk_percent: Some(1.9),
            ..Overrides::default()
        };
        assert!(
            fat_finger(&d, &risk(), &short, true)
                .unwrap_err()
                .contains("over the allowed 1.9%")
        );
        // TP 2,460 for SL 2,550: reward 32 for risk 40, R:R 0.8.
        let o = ManualOrder {
            take_profit: Some(2_460.0),
            stop_loss: Some(2_550.0),
            ..o
        };
        let d = manual_decision(&o, &market(2_500.0), &risk(), Origin::Manual).unwrap();
        let e = fat_finger(&d, &risk(), &Overrides::default(), true).unwrap_err();
        assert_eq!(
            e,
            "reward:risk 0.8 (reward 32 for risk 40) is below 1 (to take it on purpose: --allow-rr 0.8)"
        );
        let allow = Overrides {
            reward_to_risk: Some(0.8),
            ..Overrides::default()
        };
        assert_eq!(fat_finger(&d, &risk(), &allow, true), Ok(()));
    }

    use super::*;
    use crate::domain::Direction;

    fn risk() -> RiskSettings {
        rules::DEFAULT_RISK
    }

    /// A BUY of BTC/USD at 45,000 with the signal's levels and the rules' size.
    fn btc_buy() -> Decision {
        manual_decision(
            &order(Side::Buy),
            &market(45_000.0),
            &risk(),
            Origin::Manual,
        )
        .unwrap()
    }

    fn market(price: f64) -> MarketContext {
        MarketContext {
            price: Some(price),
            signal: Some(MlSignal {
                direction: Direction::Bullish,
                confidence: 0.87,
                entry_price: price,
                take_profit: 47_500.0,
                stop_loss: 44_000.0,
                risk_reward_ratio: 2.5,
            }),
            raw_signal: Value::Null,
            phase: Some(Phase::Accumulation),
        }
    }

    fn order(side: Side) -> ManualOrder {
        ManualOrder {
            symbol: "BTC/USD".into(),
            side,
            size: None,
            take_profit: None,
            stop_loss: None,
            trail: None,
        }
    }

    #[test]
    fn levels_from_signal_and_capped_risk_size() {
        let d = btc_buy();
        assert_eq!(d.take_profit, Some(47_500.0));
        assert_eq!(d.stop_loss, Some(44_000.0));
        assert_eq!(d.position_size, 0.04444444);
        let rr = d.risk_reward.unwrap();
        assert_eq!(rr.risk_amount, 44.44);
        assert_eq!(rr.reward_amount, 111.11);
        assert_eq!(rr.risk_reward_ratio, 2.5);
        assert!(d.reasoning.starts_with("manual trade"));
    }

    #[test]
    fn overrides_win_and_wrong_side_or_over_cap_is_refused() {
        let mut o = order(Side::Buy);
        o.size = Some(0.01);
        o.take_profit = Some(46_000.0);
        o.stop_loss = Some(44_500.0);
        let d = manual_decision(&o, &market(45_000.0), &risk(), Origin::Manual).unwrap();
        assert_eq!(
            (d.position_size, d.take_profit, d.stop_loss),
            (0.01, Some(46_000.0), Some(44_500.0))
        );
        o.size = Some(0.05);
        let e = manual_decision(&o, &market(45_000.0), &risk(), Origin::Manual)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cap of 0.04444444"), "{e}");
        // A SELL with the bullish signal's levels is on the wrong side.
        let e = manual_decision(
            &order(Side::Sell),
            &market(45_000.0),
            &risk(),
            Origin::Manual,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("SELL needs stop_loss > entry_price"), "{e}");
        let mut none = market(45_000.0);
        none.price = None;
        assert!(
            manual_decision(&order(Side::Buy), &none, &risk(), Origin::Manual)
                .unwrap_err()
                .to_string()
                .contains("no price")
        );
    }

    /// A SELL of BTC/USD at 45,000 with its own levels (the bullish signal's suit only a BUY).
    fn btc_sell_with_levels() -> ManualOrder {
        ManualOrder {
            take_profit: Some(43_000.0),
            stop_loss: Some(46_000.0),
            ..order(Side::Sell)
        }
    }

    #[test]
    fn a_trade_along_the_signal_keeps_its_score_and_says_so() {
        let d = btc_buy();
        assert_eq!(d.confidence, 0.87);
        assert!(
            d.reasoning
                .starts_with("manual trade: BUY BTC/USD at 45000"),
            "{}",
            d.reasoning
        );
        assert!(
            d.reasoning
                .ends_with("; along the bullish signal, score 0.87"),
            "{}",
            d.reasoning
        );
    }

    #[test]
    fn a_trade_against_the_signal_is_counter_signal_with_no_borrowed_score() {
        let d = manual_decision(
            &btc_sell_with_levels(),
            &market(45_000.0),
            &risk(),
            Origin::Manual,
        )
        .unwrap();
        assert_eq!(d.action, Verdict::Sell);
        assert_eq!(
            d.confidence, 0.0,
            "no confidence borrowed from the bullish signal"
        );
        assert!(
            d.reasoning.starts_with(
                "manual trade against a bullish signal (counter-signal, score 0): SELL BTC/USD at 45000"
            ),
            "{}",
            d.reasoning
        );
        assert!(!d.reasoning.contains("along"), "{}", d.reasoning);
        // A BUY against a bearish signal, proposed by an agent, likewise.
        let mut bearish = market(45_000.0);
        if let Some(s) = bearish.signal.as_mut() {
            s.direction = Direction::Bearish;
        }
        let o = ManualOrder {
            take_profit: Some(47_000.0),
            stop_loss: Some(44_000.0),
            ..order(Side::Buy)
        };
        let d = manual_decision(&o, &bearish, &risk(), Origin::Agent).unwrap();
        assert_eq!(d.confidence, 0.0);
        assert!(
            d.reasoning.starts_with(
                "agent proposal against a bearish signal (counter-signal, score 0): BUY"
            ),
            "{}",
            d.reasoning
        );
    }

    #[test]
    fn a_trade_on_a_neutral_or_missing_signal_has_no_signal_support() {
        let mut neutral = market(45_000.0);
        if let Some(s) = neutral.signal.as_mut() {
            s.direction = Direction::Neutral;
        }
        for side in [Side::Buy, Side::Sell] {
            let o = ManualOrder {
                take_profit: Some(if side == Side::Buy {
                    47_000.0
                } else {
                    43_000.0
                }),
                stop_loss: Some(if side == Side::Buy {
                    44_000.0
                } else {
                    46_000.0
                }),
                ..order(side)
            };
            let d = manual_decision(&o, &neutral, &risk(), Origin::Manual).unwrap();
            assert_eq!(d.confidence, 0.0, "{side}");
            assert!(
                d.reasoning.starts_with(
                    "manual trade with no signal support (the signal is neutral; score 0):"
                ),
                "{}",
                d.reasoning
            );
        }
        let mut none = market(45_000.0);
        none.signal = None;
        let d = manual_decision(&btc_sell_with_levels(), &none, &risk(), Origin::Manual).unwrap();
        assert_eq!(d.confidence, 0.0);
        assert!(
            d.reasoning
                .starts_with("manual trade with no signal support (no valid signal; score 0):"),
            "{}",
            d.reasoning
        );
    }

    #[test]
    fn the_signals_levels_refused_for_an_order_against_it_say_why() {
        let e = manual_decision(
            &order(Side::Sell),
            &market(45_000.0),
            &risk(),
            Origin::Manual,
        )
        .unwrap_err();
        assert_eq!(
            e.explain(|_| String::new(), "give --tp/--sl"),
            "SELL needs stop_loss > entry_price, got stop_loss 44000 <= entry_price 45000 \
             (levels from the bullish signal, which this SELL goes against; give --tp/--sl to override)"
        );
        // Along the signal, levels of the wrong side are the signal's fault alone.
        let mut odd = market(45_000.0);
        if let Some(s) = odd.signal.as_mut() {
            s.take_profit = 44_500.0;
        }
        let e = manual_decision(&order(Side::Buy), &odd, &risk(), Origin::Manual).unwrap_err();
        assert!(e.to_string().ends_with("(levels from the signal)"), "{e}");
    }

    #[test]
    fn resize_checks_the_cap_and_recomputes_risk() {
        let d = btc_buy();
        let r = resize(&d, 0.02, &risk()).unwrap();
        assert_eq!(r.risk_reward.unwrap().risk_amount, 20.0);
        assert!(resize(&d, 0.5, &risk()).is_err());
        assert!(resize(&d, -1.0, &risk()).is_err());
    }
}
