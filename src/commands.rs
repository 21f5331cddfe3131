//! The scriptable commands: each returns the process exit code (0 ok, 1 refused, 2 usage).

use crate::desk::{Desk, DeskError};
use crate::domain::manual::{Level, ManualOrder, ManualRefusal};
use crate::domain::money::{fmt_money, fmt_num, fmt_price, fmt_qty};
use crate::domain::score::score_phrase;
use crate::engine::Engine;
use crate::store::{self, DecisionLog, Origin, Status, Store};
use color_eyre::eyre::Result;
use std::io::Write;
use std::sync::Arc;

/// Exit codes of the SPEC.
pub const EXIT_OK: u8 = 0;
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// What went wrong, as scripts branch on it: the `error` field of `--json` errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad flags or arguments (exit 2).
    Usage,
    /// A bad config file, or a config that cannot run (exit 2).
    Config,
    /// An action the rules or the store's state refuse, or input the command cannot use (exit 1).
    Refused,
    /// `once`: the source failed for every symbol (exit 1).
    SourceFailed,
    /// A failure of the program itself: the store, the disk (exit 1).
    Failed,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Config => "config",
            ErrorKind::Refused => "refused",
            ErrorKind::SourceFailed => "source_failed",
            ErrorKind::Failed => "failed",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage | ErrorKind::Config => EXIT_USAGE,
            ErrorKind::Refused | ErrorKind::SourceFailed | ErrorKind::Failed => EXIT_REFUSED,
        }
    }
}

/// Report a refusal or an error on stderr and return its exit code. In words
/// (`refused: …`, `error: …`), or with `--json` as one JSON object:
/// `{"error": "refused", "message": "…"}`.
pub fn report_error(json: bool, kind: ErrorKind, message: &str) -> u8 {
    let line = if json {
        serde_json::json!({ "error": kind.as_str(), "message": message }).to_string()
    } else if kind == ErrorKind::Refused {
        format!("refused: {message}")
    } else {
        format!("error: {message}")
    };
    // `eprintln!` would panic if the terminal is gone (a dropped SSH session).
    let _ = writeln!(std::io::stderr(), "{line}");
    kind.exit_code()
}

/// A warning on stderr: `warning: …`, or with `--json` `{"warning": "…"}`.
pub fn report_warning(json: bool, message: &str) {
    let line = if json {
        serde_json::json!({ "warning": message }).to_string()
    } else {
        format!("warning: {message}")
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn print_json_line(v: &serde_json::Value) -> Result<()> {
    crate::outln!("{v}")?;
    Ok(())
}

/// One line of a decision for people: its score (or the counter-signal mark), levels and
/// size, then its risk and reward each said of what (`risk 44.44 = 0.44% of account, SL 2.22%
/// from entry`: the amount against `account_size`, the stop's distance against the entry).
pub fn decision_line(log: &DecisionLog, account_size: f64) -> String {
    let d = &log.decision;
    let mut s = format!(
        "{}  {:<4} {:<10} {:<9} {}",
        log.log_id,
        d.action.as_str(),
        d.symbol,
        log.status.as_str(),
        score_phrase(d, log.origin)
    );
    if d.action.is_actionable() {
        if let (Some(e), Some(tp), Some(sl)) = (d.entry_price, d.take_profit, d.stop_loss) {
            s.push_str(&format!(
                "  size {}  entry {}  TP {}  SL {}",
                fmt_qty(d.position_size),
                fmt_price(e),
                fmt_price(tp),
                fmt_price(sl)
            ));
            if let Some(t) = d.trail {
                s.push_str(&format!(" trail {t}"));
            }
        }
        if let Some(rr) = &d.risk_reward {
            use crate::ui::{fmt_pct, fmt_pct_of, fmt_ratio};
            s.push_str(&format!(
                "  risk {} = {} of account (SL {} from entry)  reward {} = {} of account (TP {} from entry)  R:R {}",
                fmt_money(rr.risk_amount),
                fmt_pct_of(rr.risk_amount, account_size),
                fmt_pct(rr.risk_percent),
                fmt_money(rr.reward_amount),
                fmt_pct_of(rr.reward_amount, account_size),
                fmt_pct(rr.reward_percent),
                fmt_ratio(rr.risk_reward_ratio)
            ));
        }
    }
    s.push_str(&format!("\n    {}", d.reasoning));
    s
}

/// A manual-order refusal in the command line's words.
pub fn in_cli_words(e: &ManualRefusal) -> String {
    if let ManualRefusal::Trail { trail, problem } = e {
        return format!(
            "{} {}: {problem}",
            trail_flag(*trail),
            fmt_num(trail.value())
        );
    }
    e.explain(
        |level| match level {
            Level::TakeProfit => "pass --tp".into(),
            Level::StopLoss => "pass --sl".into(),
        },
        "give --tp/--sl",
    )
}

/// The `trade` flag that gives `trail`.
fn trail_flag(trail: crate::domain::trail::Trail) -> &'static str {
    match trail {
        crate::domain::trail::Trail::Percent(_) => "--trail",
        crate::domain::trail::Trail::Amount(_) => "--trail-by",
    }
}

/// A refusal printed for the trader (exit 1); anything else is a failure of the program.
fn refused(json: bool, e: DeskError) -> Result<u8> {
    match e {
        DeskError::Trade(t) => Ok(report_error(json, ErrorKind::Refused, &in_cli_words(&t))),
        e if e.is_refusal() => Ok(report_error(json, ErrorKind::Refused, &e.to_string())),
        other => Err(other.into()),
    }
}

/// The source in words: "the ML engine at URL" or "the simulated market".
fn source_in_words(desk: &Desk) -> String {
    match &desk.config.ml_engine {
        Some(ml) => format!("the ML engine at {}", crate::net::Shown(&ml.url)),
        None => "the simulated market".into(),
    }
}

/// One monitoring cycle. Symbols that failed at the source are stored HOLDs with reasons
/// (exit 0); when every symbol failed, nothing could be decided (exit 1, saying why); a
/// store failure is exit 1 too.
pub async fn once(desk: &Desk, json: bool) -> Result<u8> {
    let engine = Engine::new(desk.clone(), desk.source()?);
    let (views, summary) = engine.run_cycle().await;
    let mut logs: Vec<&DecisionLog> = Vec::new();
    let mut store_errors = Vec::new();
    let mut source_errors = Vec::new();
    for v in &views {
        match &v.outcome {
            Ok(o) => {
                logs.push(&o.log);
                if let Some(e) = &o.source_error {
                    source_errors.push(format!("{}: {e}", v.symbol));
                }
            }
            Err(e) => store_errors.push(e.clone()),
        }
    }
    logs.reverse();
    for log in &logs {
        if json {
            print_json_line(&log.to_json())?;
        } else {
            crate::outln!("{}", decision_line(log, desk.config.account.size))?;
        }
    }
    if !json {
        crate::outln!(
            "cycle: {} symbols, {} actionable, {} executed, {} unreachable, in {} ms",
            summary.symbols,
            summary.actionable,
            summary.executed,
            summary.unreachable,
            summary.elapsed.as_millis()
        )?;
    }
    if !store_errors.is_empty() {
        return Ok(report_error(
            json,
            ErrorKind::Failed,
            &store_errors.join("; "),
        ));
    }
    if !views.is_empty() && source_errors.len() == views.len() {
        let message = format!(
            "{} failed for every symbol ({n} of {n}), so nothing could be decided: {}",
            source_in_words(desk),
            source_errors.join("; "),
            n = views.len(),
        );
        return Ok(report_error(json, ErrorKind::SourceFailed, &message));
    }
    Ok(EXIT_OK)
}

pub fn decisions(
    desk: &Desk,
    limit: usize,
    executed_only: bool,
    pending: bool,
    json: bool,
) -> Result<u8> {
    let status = if executed_only {
        Some(Status::Executed)
    } else if pending {
        Some(Status::Pending)
    } else {
        None
    };
    let logs = desk.decisions(limit, status)?;
    if json {
        for log in &logs {
            crate::outln!("{}", log.to_json())?;
        }
    } else if logs.is_empty() {
        crate::outln!("no decisions")?;
    } else {
        for log in &logs {
            crate::outln!(
                "{}  {}",
                store::fmt_ts(log.created_at_ms),
                decision_line(log, desk.config.account.size)
            )?;
        }
    }
    Ok(EXIT_OK)
}

pub async fn confirm(desk: &Desk, log_id: &str) -> Result<u8> {
    match desk.confirm(log_id).await {
        Ok((log, pos)) => {
            crate::outln!(
                "executed {} {} {} @ {} ({})",
                log.decision.action,
                fmt_qty(pos.quantity),
                pos.symbol,
                fmt_price(pos.entry_price),
                log.mode
            )?;
            Ok(EXIT_OK)
        }
        Err(e) => refused(false, e),
    }
}

pub fn cancel(desk: &Desk, log_id: &str) -> Result<u8> {
    match desk.cancel(log_id, "cancelled from the command line") {
        Ok(log) => {
            crate::outln!(
                "cancelled {} {} ({})",
                log.decision.action,
                log.decision.symbol,
                log.log_id
            )?;
            Ok(EXIT_OK)
        }
        Err(e) => refused(false, e),
    }
}

/// The desk of `user` on the same data dir, for the read-only views (`--user`). A user the
/// store has never seen is refused (Err: the message, naming the users it knows). A user the
/// REST API created has its own settings; any other is shown with this config's.
pub fn desk_for_user(desk: &Desk, user: &str) -> Result<std::result::Result<Desk, String>> {
    if user == desk.config.auto_trade.user_id {
        return Ok(Ok(desk.clone()));
    }
    let known = desk.store.known_users()?;
    if !known.iter().any(|u| u == user) {
        let hint = crate::suggest::nearest(user, known.iter().map(String::as_str))
            .map(|u| format!(" (did you mean {u}?)"))
            .unwrap_or_default();
        return Ok(Err(format!(
            "no user {user:?} in the data dir {}{hint}; the users it knows are {}",
            desk.data_dir.display(),
            known.join(", ")
        )));
    }
    let mut config = (*desk.config).clone();
    let stored = desk
        .store
        .all_user_settings()?
        .into_iter()
        .find(|(u, _)| u == user)
        .and_then(|(_, v)| serde_json::from_value(v).ok())
        .and_then(|s| crate::api::settings::user_config(&desk.config, &s).ok());
    if let Some(c) = stored {
        config = c;
        config.source = crate::api::settings::API_SOURCE.to_string();
    }
    config.auto_trade.user_id = user.to_string();
    let store = Store::open_configured(&config, &desk.data_dir, user, config.auto_trade.enabled)?;
    let mut other = Desk::new(Arc::new(config), desk.data_dir.clone(), Arc::new(store));
    other.viewer = true;
    Ok(Ok(other))
}

pub fn status(desk: &Desk, json: bool) -> Result<u8> {
    let s = desk.status_json()?;
    // A store that cannot write is unhealthy: the status is shown, and the exit code says so.
    let health = desk.store.health();
    let code = if health.is_failing() {
        EXIT_REFUSED
    } else {
        EXIT_OK
    };
    if json {
        print_json_line(&s)?;
        return Ok(code);
    }
    let yes = |b: bool, t: &'static str, f: &'static str| if b { t } else { f };
    let st = desk.state()?;
    if let Some(banner) = health.banner() {
        crate::outln!("store       {banner}")?;
        report_error(false, ErrorKind::Failed, &banner);
    }
    crate::outln!("user        {}", desk.config.auto_trade.user_id)?;
    crate::outln!(
        "auto-trade  {}{}",
        yes(st.enabled, "ENABLED", "DISABLED"),
        yes(st.kill_switch, " (kill switch on)", "")
    )?;
    if let Some(h) = &st.halt {
        crate::outln!(
            "HALTED      since {}: {}; new entries stop until `enable --reset`",
            crate::store::fmt_ts(h.at_ms),
            h.reason
        )?;
    }
    let limit = |name: &str, v: &serde_json::Value| match v["percent"].as_f64() {
        Some(p) => {
            let limit = v["limit_percent"].as_f64().unwrap_or(0.0);
            format!(
                "{name} {} of {}% (loss {} from {})",
                crate::domain::halt::pct_under(p, limit),
                crate::domain::money::fmt_num(limit),
                crate::domain::money::fmt_money(v["amount"].as_f64().unwrap_or(0.0)),
                crate::domain::money::fmt_money(v["base"].as_f64().unwrap_or(0.0)),
            )
        }
        None => format!("{name} off"),
    };
    let ll = &s["loss_limits"];
    if !ll["daily_loss"].is_null() || !ll["drawdown"].is_null() {
        crate::outln!(
            "loss limits {}; {}",
            limit("today", &ll["daily_loss"]),
            limit("drawdown", &ll["drawdown"])
        )?;
    }
    crate::outln!("mode        {}", desk.config.mode().to_uppercase())?;
    if desk.config.is_simulated() {
        crate::outln!("source      SIMULATED: the built-in market and its analyzer")?;
        crate::outln!(
            "speed       {}",
            crate::simulated::source::describe_speed(desk.config.simulation.seconds_per_candle)
        )?;
    } else {
        crate::outln!("source      ML ENGINE")?;
    }
    if let Some(ml) = &desk.config.ml_engine {
        crate::outln!("ml engine   {}", crate::net::Shown(&ml.url))?;
    }
    let since = s["source_since"].as_str().unwrap_or("");
    match s["source_reachable"].as_bool() {
        None => crate::outln!("reachable   not checked yet (no monitoring cycle has run)")?,
        Some(true) => crate::outln!("reachable   yes, since {since}")?,
        Some(false) => crate::outln!(
            "reachable   NO, since {since}: {}",
            s["source_error"].as_str().unwrap_or("no answer")
        )?,
    }
    let md = &desk.config.market_data;
    if md.provider.is_feed() {
        let f = &s["feed"];
        let state = match (f["state"].as_str(), f["since"].as_str()) {
            (Some(state), Some(since)) => match f["why"].as_str() {
                Some(why) => format!("{state} since {since}: {why}"),
                None => format!("{state} since {since}"),
            },
            _ => "not started yet (it runs with the dashboard, `serve` or `run`)".into(),
        };
        crate::outln!(
            "prices      {} live feed, {state}; stale after {} s",
            md.provider.as_str(),
            md.stale_after_seconds
        )?;
    }
    crate::outln!("symbols     {}", desk.config.auto_trade.symbols.join(", "))?;
    let c = &s["calibration"];
    let source = crate::analytics::text::source_name(c["source"].as_str().unwrap_or(""));
    let judged = c["judged"].as_u64().unwrap_or(0);
    crate::outln!(
        "scores      {}",
        match (c["on"].as_bool(), c["applied"].as_bool()) {
            (Some(true), Some(true)) => format!(
                "calibrated on the {source}'s {judged} judged outcomes (confidence = the win rate its score earned)"
            ),
            (Some(true), _) => format!(
                "raw: calibration waits for {} judged outcomes of the {source}, with wins and losses ({judged} so far)",
                c["needed"]
            ),
            _ => format!(
                "raw, uncalibrated: they rank signals, they are no win rates ({judged} judged outcomes of the {source}: see `report`)"
            ),
        }
    )?;
    crate::outln!(
        "positions   {} open / {} max",
        s["open_positions"],
        s["max_open_positions"]
    )?;
    crate::outln!("pending     {}", s["pending"])?;
    crate::outln!(
        "equity      {}",
        fmt_money(s["equity"].as_f64().unwrap_or(desk.config.account.size))
    )?;
    // A real broker's account is the truth: say what it holds, or that it did not answer.
    if !desk.broker.is_ledger() {
        let name = desk.broker.name();
        let account = &s["broker_account"];
        let line = match (account["equity"].as_f64(), account["buying_power"].as_f64()) {
            (Some(eq), Some(bp)) => format!(
                "{name} equity {}, buying power {}",
                fmt_money(eq),
                fmt_money(bp)
            ),
            _ => format!("{name}, account not known yet"),
        };
        crate::outln!("broker      {line}")?;
        if let Some(why) = s["broker_error"].as_str() {
            crate::outln!("            unreachable at the last reconciliation: {why}")?;
        }
        let external = s["external_positions"].as_array().map_or(0, Vec::len);
        if external > 0 {
            crate::outln!(
                "            {external} external position(s) at the broker, never touched"
            )?;
        }
    }
    crate::outln!(
        "last cycle  {}",
        st.last_cycle_at_ms
            .map(store::fmt_ts)
            .unwrap_or_else(|| "never".into())
    )?;
    crate::outln!("config      {}", desk.config.source)?;
    crate::outln!("data dir    {}", desk.data_dir.display())?;
    if let Some(db) = desk.store.pg() {
        crate::outln!("store       PostgreSQL {}", db.shown())?;
    }
    Ok(code)
}

/// `enable`; with `--reset`, a loss halt is cleared first (and said so).
pub fn enable(desk: &Desk, reset: bool) -> Result<u8> {
    if reset {
        match desk.reset_halt()? {
            Some(h) => crate::outln!(
                "loss halt cleared (was: {}); the limits start again from today's equity; auto-trading enabled",
                h.reason
            )?,
            None => crate::outln!("no loss halt to clear; auto-trading enabled")?,
        }
        return Ok(EXIT_OK);
    }
    desk.set_enabled(true)?;
    crate::outln!("auto-trading enabled")?;
    Ok(EXIT_OK)
}

pub fn disable(desk: &Desk) -> Result<u8> {
    desk.set_enabled(false)?;
    crate::outln!("auto-trading disabled")?;
    Ok(EXIT_OK)
}

pub fn kill(desk: &Desk) -> Result<u8> {
    let n = desk.kill()?;
    crate::outln!(
        "kill switch on: auto-trading disabled, {n} pending decision(s) cancelled; `enable` to resume"
    )?;
    Ok(EXIT_OK)
}

/// `kill --flatten`: the kill switch, then every open position closed. Exit 1 when one could
/// not be closed (its line says why).
pub async fn flatten(desk: &Desk) -> Result<u8> {
    let (cancelled, closed) = desk.flatten().await?;
    crate::outln!(
        "kill switch on: auto-trading disabled, {cancelled} pending decision(s) cancelled; `enable` to resume"
    )?;
    let mut code = EXIT_OK;
    if closed.is_empty() {
        crate::outln!("flatten: no open positions")?;
    }
    for c in closed {
        match c {
            Ok(p) => crate::outln!(
                "closed {} {} {} @ {}, realized P&L {}",
                p.side,
                fmt_qty(p.quantity),
                p.symbol,
                p.exit_price.map(fmt_price).unwrap_or_default(),
                p.realized_pnl
                    .map(crate::domain::money::fmt_signed)
                    .unwrap_or_default()
            )?,
            Err(why) => {
                let _ = writeln!(std::io::stderr(), "{why}");
                code = EXIT_REFUSED;
            }
        }
    }
    Ok(code)
}

/// The symbol the trader typed, upper-cased (`eth/usd` is `ETH/USD`), when it is one of
/// `known`. Otherwise the refusal names them all and the nearest one; a symbol that is not
/// a pair or a stock ticker at all is a usage error.
fn known_symbol(typed: &str, known: &[String]) -> std::result::Result<String, (ErrorKind, String)> {
    let symbol = crate::config::normalize_symbol(typed);
    if known.contains(&symbol) {
        return Ok(symbol);
    }
    let hint = crate::suggest::nearest(&symbol, known.iter().map(String::as_str))
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default();
    let list = format!("the configured symbols are {}", known.join(", "));
    if crate::config::valid_symbol(&symbol) {
        Err((
            ErrorKind::Refused,
            format!("{symbol} is not a configured symbol{hint}; {list}"),
        ))
    } else {
        Err((
            ErrorKind::Usage,
            format!(
                "symbol {typed:?} is not {}{hint}; {list}",
                crate::config::SYMBOL_FORMS
            ),
        ))
    }
}

pub async fn trade(
    desk: &Desk,
    order: &ManualOrder,
    allow: &crate::domain::manual::Overrides,
    yes: bool,
    json: bool,
) -> Result<u8> {
    if let Some(p) = allow.risk_percent
        && !(p.is_finite() && p > 0.0 && p <= 100.0)
    {
        let m =
            format!("--allow-risk {p}: must be a percent of the account above 0 and at most 100");
        return Ok(report_error(json, ErrorKind::Usage, &m));
    }
    if let Some(p) = allow.position_percent
        && !(p.is_finite() && p > 0.0 && p <= 100.0)
    {
        let m =
            format!("--allow-value {p}: must be a percent of the account above 0 and at most 100");
        return Ok(report_error(json, ErrorKind::Usage, &m));
    }
    if let Some(r) = allow.reward_to_risk
        && !(r.is_finite() && r >= 0.0)
    {
        let m = format!("--allow-rr {r}: must be a ratio of 0 or more");
        return Ok(report_error(json, ErrorKind::Usage, &m));
    }
    if let Some(t) = order.trail
        && let Err(e) = t.check()
    {
        let m = format!("{} {}: {e}", trail_flag(t), fmt_num(t.value()));
        return Ok(report_error(json, ErrorKind::Usage, &m));
    }
    let order = match known_symbol(&order.symbol, &desk.config.auto_trade.symbols) {
        Ok(symbol) => ManualOrder {
            symbol,
            ..order.clone()
        },
        Err((kind, message)) => return Ok(report_error(json, kind, &message)),
    };
    match desk.trade(&order, Origin::Manual, yes, allow).await {
        Ok((log, pos)) => {
            if json {
                print_json_line(&log.to_json())?;
            } else {
                crate::outln!("{}", decision_line(&log, desk.config.account.size))?;
                match pos {
                    Some(p) => crate::outln!(
                        "executed: {} {} {} @ {} ({})",
                        log.decision.action,
                        fmt_qty(p.quantity),
                        p.symbol,
                        fmt_price(p.entry_price),
                        log.mode
                    )?,
                    None => crate::outln!(
                        "pending: confirm with `autotrade-tui confirm {}` or on the dashboard",
                        log.log_id
                    )?,
                }
            }
            Ok(EXIT_OK)
        }
        Err(e) => refused(json, e),
    }
}

/// `report`: what the decisions made, as text or one JSON object.
pub fn report(desk: &Desk, since: Option<&str>, json: bool) -> Result<u8> {
    let since = match since
        .map(|s| crate::analytics::report::parse_since(s).map(|ms| (s.trim().to_string(), ms)))
    {
        Some(Err(e)) => return Ok(report_error(json, ErrorKind::Usage, &e)),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let report = desk.report(since)?;
    if json {
        print_json_line(&serde_json::to_value(&report)?)?;
    } else {
        crate::out!("{}", crate::analytics::text::render(&report))?;
    }
    Ok(EXIT_OK)
}

pub fn positions(desk: &Desk, json: bool) -> Result<u8> {
    let rows = desk.positions_json()?;
    if json {
        for r in &rows {
            print_json_line(r)?;
        }
        return Ok(EXIT_OK);
    }
    if rows.is_empty() {
        crate::outln!("no open positions")?;
    }
    for r in &rows {
        let f = |k: &str| r[k].as_f64();
        // A trailing stop: `SL 44,550.00 trail 1%`, the stop where the trail has moved it.
        let trail =
            crate::domain::trail::Trail::from_columns(f("trail_percent"), f("trail_amount"))
                .map(|t| format!(" trail {t}"))
                .unwrap_or_default();
        crate::outln!(
            "{:<10} {:<4} {:>12}  entry {}  TP {}  SL {}{trail}  last {}  P&L {}  since {}",
            r["symbol"].as_str().unwrap_or(""),
            r["side"].as_str().unwrap_or(""),
            fmt_qty(f("quantity").unwrap_or(0.0)),
            fmt_price(f("entry_price").unwrap_or(0.0)),
            fmt_price(f("take_profit").unwrap_or(0.0)),
            fmt_price(f("stop_loss").unwrap_or(0.0)),
            f("last_price").map(fmt_price).unwrap_or_else(|| "—".into()),
            f("unrealized_pnl")
                .map(crate::domain::money::fmt_signed)
                .unwrap_or_else(|| "—".into()),
            r["opened_at"].as_str().unwrap_or("")
        )?;
    }
    Ok(EXIT_OK)
}

/// Close the open position on `typed`: a configured symbol (any case), or one a position is
/// open on (a symbol since removed from the config, or stored in lower case by an older release).
pub async fn close(desk: &Desk, typed: &str) -> Result<u8> {
    let open: Vec<String> = desk
        .positions()?
        .into_iter()
        .map(|(p, _)| p.symbol)
        .collect();
    let symbol = match open.iter().find(|s| s.eq_ignore_ascii_case(typed.trim())) {
        Some(s) => s.clone(),
        None => match known_symbol(typed, &desk.config.auto_trade.symbols) {
            Ok(s) => s,
            Err((kind, message)) => return Ok(report_error(false, kind, &message)),
        },
    };
    match desk.close(&symbol, None, "closed by trader").await {
        Ok(p) => {
            crate::outln!(
                "closed {} {} {} @ {}, realized P&L {}",
                p.side,
                fmt_qty(p.quantity),
                p.symbol,
                p.exit_price.map(fmt_price).unwrap_or_default(),
                crate::domain::money::fmt_signed(p.realized_pnl.unwrap_or(0.0))
            )?;
            Ok(EXIT_OK)
        }
        Err(e) => refused(false, e),
    }
}
