//! What each tool does, on the same engine code and store as the dashboard and the
//! command line. A tool answers with the command line's `--json` shapes, or refuses with
//! a reason; it never confirms, cancels or executes.

use super::tools::{self, DecisionsArgs, NoArgs, SymbolArgs, TradeArgs};
use crate::desk::{CycleInput, Desk, DeskError};
use crate::domain::manual::{Level, ManualOrder, ManualRefusal};
use crate::domain::rules::{self, Gates, RiskSettings};
use crate::domain::trail::Trail;
use crate::source::MarketSource;
use crate::store::{DecisionLog, Origin, Status};
use rmcp::model::JsonObject;
use serde_json::{Value, json};
use std::sync::Arc;

/// A tool's answer before it becomes an MCP result.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The result, as the command line's `--json` prints it.
    Done(Value),
    /// Refused or failed: why, and what was logged, if anything.
    Refused {
        reason: String,
        logged: Option<Value>,
    },
}

impl Reply {
    fn refused(reason: impl Into<String>) -> Reply {
        Reply::Refused {
            reason: reason.into(),
            logged: None,
        }
    }
}

/// The tools, bound to one config, store and source.
pub struct Tools {
    ctx: Arc<Desk>,
    source: Arc<dyn MarketSource>,
}

/// Run store work off the async workers; a failure is a reason, not a panic.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::desk::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the store task failed: {e}")),
    }
}

/// `{"count": n, "decisions": [...]}`: each entry is a line of `decisions --json`.
fn decision_list(logs: &[DecisionLog]) -> Value {
    json!({
        "count": logs.len(),
        "decisions": logs.iter().map(DecisionLog::to_json).collect::<Vec<_>>(),
    })
}

/// The source's answer with the symbol it is about in front.
fn with_symbol(symbol: &str, raw: Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("symbol".into(), Value::String(symbol.to_string()));
    match raw {
        Value::Object(m) => out.extend(m.into_iter().filter(|(k, _)| k != "symbol")),
        other => {
            out.insert("value".into(), other);
        }
    }
    Value::Object(out)
}

/// A trade's trail from its two optional arguments, checked on its own.
fn trail_arg(percent: Option<f64>, amount: Option<f64>) -> Result<Option<Trail>, String> {
    let tool = tools::EXECUTE_TRADE;
    let trail = match (percent, amount) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "bad arguments for {tool}: give trail_percent or trail_amount, not both"
            ));
        }
        (Some(p), None) => Trail::Percent(p),
        (None, Some(a)) => Trail::Amount(a),
        (None, None) => return Ok(None),
    };
    trail.check().map(Some).map_err(|e| {
        format!(
            "bad arguments for {tool}: {} {}: {e}",
            trail_name(trail),
            rules::fmt_num(trail.value())
        )
    })
}

/// The argument that gave `trail`.
fn trail_name(trail: Trail) -> &'static str {
    match trail {
        Trail::Percent(_) => "trail_percent",
        Trail::Amount(_) => "trail_amount",
    }
}

/// A manual-order refusal in the tool's terms: an agent knows the arguments.
fn in_tool_terms(e: &ManualRefusal) -> String {
    if let ManualRefusal::Trail { trail, problem } = e {
        return format!(
            "{} {}: {problem}",
            trail_name(*trail),
            rules::fmt_num(trail.value())
        );
    }
    e.explain(
        |level| match level {
            Level::TakeProfit => "pass take_profit".into(),
            Level::StopLoss => "pass stop_loss".into(),
        },
        "give take_profit/stop_loss",
    )
}

/// Why a stored decision is not a proposal, when that is a refusal rather than the rules' HOLD.
#[derive(Debug, PartialEq)]
enum Verdict {
    Proposal,
    Hold,
    Blocked,
    Untrusted,
}

fn verdict(
    log: &DecisionLog,
    signal: &Result<Value, String>,
    phase: &Result<Value, String>,
    risk: &RiskSettings,
) -> Verdict {
    if log.status == Status::Pending {
        return Verdict::Proposal;
    }
    let (Ok(s), Ok(p)) = (signal, phase) else {
        return Verdict::Untrusted;
    };
    let (Ok(signal), Ok(amd)) = (rules::parse_signal(s), rules::parse_phase(p)) else {
        return Verdict::Untrusted;
    };
    let (action, _) = rules::matrix(signal.direction, amd.phase, signal.confidence);
    if action.is_actionable()
        && rules::check_levels(
            action,
            signal.entry_price,
            signal.take_profit,
            signal.stop_loss,
        )
        .is_err()
    {
        return Verdict::Untrusted;
    }
    // With every gate open, would the same inputs have traded? Then a gate is why not.
    let open = Gates {
        enabled: true,
        max_open_positions: usize::MAX,
        ..Gates::default()
    };
    let unblocked =
        rules::decide_validated(&log.decision.symbol, &signal, &amd, s.clone(), risk, &open);
    if unblocked.action.is_actionable() {
        Verdict::Blocked
    } else {
        Verdict::Hold
    }
}

impl Tools {
    pub fn new(ctx: Arc<Desk>, source: Arc<dyn MarketSource>) -> Tools {
        Tools { ctx, source }
    }

    /// Call a tool by name. Unknown tools and bad arguments are refusals, so an agent can correct itself.
    pub async fn call(&self, name: &str, args: Option<JsonObject>) -> Reply {
        let reply = match name {
            tools::GET_AMD_PHASE => match self.symbol_arg(name, args) {
                Ok(s) => self.amd_phase(&s).await,
                Err(e) => Reply::refused(e),
            },
            tools::GET_ML_SIGNAL => match self.symbol_arg(name, args) {
                Ok(s) => self.ml_signal(&s).await,
                Err(e) => Reply::refused(e),
            },
            tools::AUTO_TRADE_DECISION => match self.symbol_arg(name, args) {
                Ok(s) => self.auto_trade_decision(&s).await,
                Err(e) => Reply::refused(e),
            },
            tools::EXECUTE_TRADE => match self.trade_arg(args) {
                Ok(order) => self.execute_trade(order).await,
                Err(e) => Reply::refused(e),
            },
            tools::LIST_PENDING => match tools::parse::<NoArgs>(name, args) {
                Ok(_) => self.list_pending().await,
                Err(e) => Reply::refused(e),
            },
            tools::GET_STATUS => match tools::parse::<NoArgs>(name, args) {
                Ok(_) => self.status().await,
                Err(e) => Reply::refused(e),
            },
            tools::GET_DECISIONS => match tools::parse::<DecisionsArgs>(name, args) {
                Ok(a) => self.decisions(a).await,
                Err(e) => Reply::refused(e),
            },
            other => Reply::refused(format!(
                "unknown tool {other:?}: the tools are {}",
                tools::NAMES.join(", ")
            )),
        };
        match &reply {
            Reply::Done(_) => tracing::info!(tool = name, "mcp tool answered"),
            Reply::Refused { reason, .. } => {
                tracing::warn!(tool = name, "mcp tool refused: {reason}")
            }
        }
        reply
    }

    /// A symbol as configured when it names one (any case), else upper-cased when well-formed.
    fn symbol(&self, tool: &str, raw: &str) -> Result<String, String> {
        let s = raw.trim();
        if let Some(c) = self
            .ctx
            .config
            .auto_trade
            .symbols
            .iter()
            .find(|c| c.eq_ignore_ascii_case(s))
        {
            return Ok(c.clone());
        }
        let symbol = crate::config::normalize_symbol(s);
        if crate::config::valid_symbol(&symbol) {
            return Ok(symbol);
        }
        Err(format!(
            "bad arguments for {tool}: symbol {raw:?} is not {}; configured symbols: {}",
            crate::config::SYMBOL_FORMS,
            self.ctx.config.auto_trade.symbols.join(", ")
        ))
    }

    fn symbol_arg(&self, tool: &str, args: Option<JsonObject>) -> Result<String, String> {
        let a: SymbolArgs = tools::parse(tool, args)?;
        self.symbol(tool, &a.symbol)
    }

    fn trade_arg(&self, args: Option<JsonObject>) -> Result<ManualOrder, String> {
        let tool = tools::EXECUTE_TRADE;
        let a: TradeArgs = tools::parse(tool, args)?;
        Ok(ManualOrder {
            symbol: self.symbol(tool, &a.symbol)?,
            side: a.side.side(),
            size: tools::positive(tool, "size", a.size)?,
            take_profit: tools::positive(tool, "take_profit", a.take_profit)?,
            stop_loss: tools::positive(tool, "stop_loss", a.stop_loss)?,
            trail: trail_arg(a.trail_percent, a.trail_amount)?,
        })
    }

    async fn amd_phase(&self, symbol: &str) -> Reply {
        let report = self.source.fetch(symbol).await;
        match report.phase {
            Err(e) => Reply::refused(format!("AMD phase for {symbol} unavailable: {e}")),
            Ok(raw) => match rules::parse_phase(&raw) {
                Ok(_) => Reply::Done(with_symbol(symbol, raw)),
                Err(e) => Reply::Refused {
                    reason: format!("AMD phase for {symbol} cannot be trusted: {e}"),
                    logged: None,
                },
            },
        }
    }

    async fn ml_signal(&self, symbol: &str) -> Reply {
        let report = self.source.fetch(symbol).await;
        let maker = crate::domain::score::signal_maker(self.ctx.config.is_simulated());
        match report.signal {
            Err(e) => Reply::refused(format!("{maker} signal for {symbol} unavailable: {e}")),
            Ok(raw) => match rules::parse_signal(&raw) {
                Ok(_) => Reply::Done(with_symbol(symbol, raw)),
                Err(e) => Reply::refused(format!(
                    "{maker} signal for {symbol} cannot be trusted: {e}"
                )),
            },
        }
    }

    async fn auto_trade_decision(&self, symbol: &str) -> Reply {
        let report = self.source.fetch(symbol).await;
        let signal = report.signal_input();
        let phase = report.phase_input();
        let price = report.price;
        let limits = self.ctx.limits();
        let desk = self.ctx.clone();
        let sym = symbol.to_string();
        let (sig, ph) = (signal.clone(), phase.clone());
        let outcome = blocking(move || {
            desk.record_agent_decision(&CycleInput {
                symbol: &sym,
                signal: &sig,
                phase: &ph,
                price,
            })
        })
        .await;
        let log = match outcome {
            Ok(o) => o.log,
            Err(e) => return Reply::refused(format!("storing the decision failed: {e}")),
        };
        let json = log.to_json();
        let reason = &log.decision.reasoning;
        match verdict(&log, &signal, &phase, &limits.risk) {
            Verdict::Proposal | Verdict::Hold => Reply::Done(json),
            Verdict::Blocked => {
                let msg = format!("agent decision on {symbol} refused: {reason}");
                let (desk, event) = (self.ctx.clone(), msg.clone());
                // The refusal is in the decision log already; the event only tells the dashboard.
                let _ = blocking(move || desk.note("warn", &event)).await;
                Reply::Refused {
                    reason: format!(
                        "refused: {reason}. Nothing was proposed; the HOLD is logged as {}",
                        log.log_id
                    ),
                    logged: Some(json),
                }
            }
            Verdict::Untrusted => Reply::Refused {
                reason: format!(
                    "no decision can be trusted for {symbol}: {reason}. Nothing was proposed; the HOLD is logged as {}",
                    log.log_id
                ),
                logged: Some(json),
            },
        }
    }

    async fn execute_trade(&self, order: ManualOrder) -> Reply {
        match self
            .ctx
            .trade(&order, Origin::Agent, false, &Default::default())
            .await
        {
            Ok((log, _)) => Reply::Done(log.to_json()),
            Err(DeskError::Trade(e)) => Reply::refused(format!("refused: {}", in_tool_terms(&e))),
            Err(DeskError::Source(e)) => {
                Reply::refused(format!("no market data for {}: {e}", order.symbol))
            }
            Err(e) if e.is_refusal() => Reply::refused(format!("refused: {e}")),
            Err(e) => Reply::refused(format!("storing the trade failed: {e}")),
        }
    }

    async fn list_pending(&self) -> Reply {
        let ctx = self.ctx.clone();
        match blocking(move || ctx.decisions(tools::MAX_LIMIT as usize, Some(Status::Pending)))
            .await
        {
            Ok(logs) => Reply::Done(decision_list(&logs)),
            Err(e) => Reply::refused(format!("reading the pending decisions failed: {e}")),
        }
    }

    async fn status(&self) -> Reply {
        let ctx = self.ctx.clone();
        match blocking(move || ctx.status_json()).await {
            Ok(v) => Reply::Done(v),
            Err(e) => Reply::refused(format!("reading the status failed: {e}")),
        }
    }

    async fn decisions(&self, args: DecisionsArgs) -> Reply {
        let limit = args.limit.unwrap_or(tools::DEFAULT_LIMIT);
        if !(1..=tools::MAX_LIMIT).contains(&limit) {
            return Reply::refused(format!(
                "bad arguments for {}: limit must be 1 to {}, got {limit}",
                tools::GET_DECISIONS,
                tools::MAX_LIMIT
            ));
        }
        let status = args
            .executed_only
            .unwrap_or(false)
            .then_some(Status::Executed);
        let ctx = self.ctx.clone();
        match blocking(move || ctx.decisions(limit as usize, status)).await {
            Ok(logs) => Reply::Done(decision_list(&logs)),
            Err(e) => Reply::refused(format!("reading the decision log failed: {e}")),
        }
    }
}
