//! Rows to records. A stored status, origin or side this program does not know is an error
//! naming the value, never a silent default.

use super::db::Row;
use super::{DecisionLog, Order, Position};
use super::{Result, StoreError};
use crate::domain::lifecycle::UnknownValue;
use crate::domain::rules::{Decision, RiskReward};
use crate::domain::trail::Trail;
use crate::domain::{Phase, Side, Verdict};
use serde_json::Value;
use std::str::FromStr;

fn conversion(_row: &Row<'_>, column: &str, e: UnknownValue) -> StoreError {
    StoreError::Other(format!("column {column}: {e}"))
}

/// A text column parsed as one of the lifecycle enums.
pub fn parsed<T: FromStr<Err = UnknownValue>>(row: &Row<'_>, column: &str) -> Result<T> {
    let s: String = row.get(column)?;
    s.parse::<T>().map_err(|e| conversion(row, column, e))
}

pub(super) fn side(row: &Row<'_>, column: &str) -> Result<Side> {
    let s: String = row.get(column)?;
    Side::parse(&s).ok_or_else(|| {
        conversion(
            row,
            column,
            UnknownValue {
                what: "side",
                value: s,
            },
        )
    })
}

/// Stored JSON; text that is not JSON (written by hand) reads as null rather than failing the row.
fn json(row: &Row<'_>, column: &str) -> Result<Value> {
    let s: String = row.get(column)?;
    Ok(serde_json::from_str(&s).unwrap_or(Value::Null))
}

pub fn decision(row: &Row<'_>) -> Result<DecisionLog> {
    let action: String = row.get("action")?;
    let action = Verdict::parse(&action).ok_or_else(|| {
        conversion(
            row,
            "action",
            UnknownValue {
                what: "decision action",
                value: action,
            },
        )
    })?;
    let phase: Option<String> = row.get("amd_phase")?;
    let rr: Option<String> = row.get("risk_reward")?;
    Ok(DecisionLog {
        log_id: row.get("log_id")?,
        user_id: row.get("user_id")?,
        created_at_ms: row.get("created_at")?,
        status: parsed(row, "status")?,
        status_reason: row.get("status_reason")?,
        executed_at_ms: row.get("executed_at")?,
        mode: row.get("mode")?,
        origin: parsed(row, "origin")?,
        amd_input: json(row, "amd_input")?,
        allowed_position_percent: row.get("allowed_position_percent")?,
        decision: Decision {
            symbol: row.get("symbol")?,
            action,
            confidence: row.get("confidence")?,
            reasoning: row.get("reasoning")?,
            entry_price: row.get("entry_price")?,
            take_profit: row.get("take_profit")?,
            stop_loss: row.get("stop_loss")?,
            position_size: row.get("position_size")?,
            ml_signal: json(row, "ml_signal")?,
            amd_phase: phase.as_deref().and_then(Phase::parse),
            risk_reward: rr.and_then(|s| serde_json::from_str::<RiskReward>(&s).ok()),
            raw_confidence: row.get("raw_confidence")?,
            trail: Trail::from_columns(row.get("trail_percent")?, row.get("trail_amount")?),
        },
    })
}

pub fn position(row: &Row<'_>) -> Result<Position> {
    Ok(Position {
        id: row.get("id")?,
        decision_id: row.get("decision_id")?,
        symbol: row.get("symbol")?,
        side: side(row, "side")?,
        quantity: row.get("quantity")?,
        entry_price: row.get("entry_price")?,
        take_profit: row.get("take_profit")?,
        stop_loss: row.get("stop_loss")?,
        opened_at_ms: row.get("opened_at")?,
        mode: row.get("mode")?,
        closed_at_ms: row.get("closed_at")?,
        exit_price: row.get("exit_price")?,
        realized_pnl: row.get("realized_pnl")?,
        close_reason: row.get("close_reason")?,
        exits_held_by: parsed(row, "exits_held_by")?,
        trail: Trail::from_columns(row.get("trail_percent")?, row.get("trail_amount")?),
        best_price: row.get("best_price")?,
    })
}

pub fn order(row: &Row<'_>) -> Result<Order> {
    Ok(Order {
        id: row.get("id")?,
        client_order_id: row.get("client_order_id")?,
        decision_id: row.get("decision_id")?,
        broker: row.get("broker")?,
        kind: parsed(row, "kind")?,
        symbol: row.get("symbol")?,
        side: side(row, "side")?,
        quantity: row.get("quantity")?,
        reference_price: row.get("reference_price")?,
        take_profit: row.get("take_profit")?,
        stop_loss: row.get("stop_loss")?,
        status: parsed(row, "status")?,
        filled_quantity: row.get("filled_quantity")?,
        fill_price: row.get("fill_price")?,
        reason: row.get("reason")?,
        exits_held_by: match row.get::<_, Option<String>>("exits_held_by")? {
            Some(_) => Some(parsed(row, "exits_held_by")?),
            None => None,
        },
        created_at_ms: row.get("created_at")?,
        updated_at_ms: row.get("updated_at")?,
    })
}
