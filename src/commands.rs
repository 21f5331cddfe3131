//! The scriptable commands: each returns the process exit code (0 ok, 1 refused).

use crate::desk::{Desk, DeskError};
use crate::domain::manual::{Level, ManualOrder, ManualRefusal};
use crate::domain::money::{fmt_money, fmt_price, fmt_qty};
use crate::engine::Engine;
use crate::store::{self, DecisionLog, Origin, Status};
use color_eyre::eyre::Result;
use std::io::Write;

/// Exit codes of the SPEC.
pub const EXIT_OK: u8 = 0;
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

fn print_json_line(v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")?;
    Ok(())
}

/// One line of a decision for people.
pub fn decision_line(log: &DecisionLog) -> String {
    let d = &log.decision;
    let mut s = format!(
        "{}  {:<4} {:<10} {:<9} conf {:.4}",
        log.log_id,
        d.action.as_str(),
        d.symbol,
        log.status.as_str(),
        d.confidence
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
        }
        if let Some(rr) = &d.risk_reward {
            s.push_str(&format!(
                "  risk {}  reward {}  R:R {:.2}",
                fmt_money(rr.risk_amount),
                fmt_money(rr.reward_amount),
                rr.risk_reward_ratio
            ));
        }
    }
    s.push_str(&format!("\n    {}", d.reasoning));
    s
}

/// A manual-order refusal in the command line's words.
pub fn in_cli_words(e: &ManualRefusal) -> String {
    e.explain(
        |level| match level {
            Level::TakeProfit => "pass --tp".into(),
            Level::StopLoss => "pass --sl".into(),
        },
        "give --tp/--sl",
    )
}

/// A refusal printed for the trader (exit 1); anything else is a failure of the program.
fn refused(e: DeskError) -> Result<u8> {
    match e {
        DeskError::Trade(t) => {
            eprintln!("refused: {}", in_cli_words(&t));
            Ok(EXIT_REFUSED)
        }
        e if e.is_refusal() => {
            eprintln!("refused: {e}");
            Ok(EXIT_REFUSED)
        }
        other => Err(other.into()),
    }
}

pub async fn once(desk: &Desk, json: bool) -> Result<u8> {
    let engine = Engine::new(desk.clone(), desk.source()?);
    let (views, summary) = engine.run_cycle().await;
    let mut logs: Vec<&DecisionLog> = Vec::new();
    let mut failed = 0;
    for v in &views {
        match &v.outcome {
            Ok(o) => logs.push(&o.log),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    logs.reverse();
    for log in &logs {
        if json {
            print_json_line(&log.to_json())?;
        } else {
            println!("{}", decision_line(log));
        }
    }
    if !json {
        println!(
            "cycle: {} symbols, {} actionable, {} executed, {} unreachable, in {} ms",
            summary.symbols,
            summary.actionable,
            summary.executed,
            summary.unreachable,
            summary.elapsed.as_millis()
        );
    }
    // Symbols that failed at the source are HOLDs with reasons (exit 0); a store failure is not.
    Ok(if failed > 0 { EXIT_REFUSED } else { EXIT_OK })
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
        let mut out = std::io::stdout().lock();
        for log in &logs {
            writeln!(out, "{}", log.to_json())?;
        }
    } else if logs.is_empty() {
        println!("no decisions");
    } else {
        for log in &logs {
            println!(
                "{}  {}",
                store::fmt_ts(log.created_at_ms),
                decision_line(log)
            );
        }
    }
    Ok(EXIT_OK)
}

pub async fn confirm(desk: &Desk, log_id: &str) -> Result<u8> {
    match desk.confirm(log_id).await {
        Ok((log, pos)) => {
            println!(
                "executed {} {} {} @ {} ({})",
                log.decision.action,
                fmt_qty(pos.quantity),
                pos.symbol,
                fmt_price(pos.entry_price),
                log.mode
            );
            Ok(EXIT_OK)
        }
        Err(e) => refused(e),
    }
}

pub fn cancel(desk: &Desk, log_id: &str) -> Result<u8> {
    match desk.cancel(log_id, "cancelled from the command line") {
        Ok(log) => {
            println!(
                "cancelled {} {} ({})",
                log.decision.action, log.decision.symbol, log.log_id
            );
            Ok(EXIT_OK)
        }
        Err(e) => refused(e),
    }
}

pub fn status(desk: &Desk, json: bool) -> Result<u8> {
    let s = desk.status_json()?;
    if json {
        print_json_line(&s)?;
        return Ok(EXIT_OK);
    }
    let yes = |b: bool, t: &'static str, f: &'static str| if b { t } else { f };
    let st = desk.state()?;
    println!("user        {}", desk.config.auto_trade.user_id);
    println!(
        "auto-trade  {}{}",
        yes(st.enabled, "ENABLED", "DISABLED"),
        yes(st.kill_switch, " (kill switch on)", "")
    );
    println!("mode        {}", desk.config.mode().to_uppercase());
    println!(
        "source      {}",
        yes(
            desk.config.is_simulated(),
            "SIMULATED (built-in market)",
            "ML ENGINE"
        )
    );
    if let Some(ml) = &desk.config.ml_engine {
        println!("ml engine   {}", ml.url);
    }
    println!("symbols     {}", desk.config.auto_trade.symbols.join(", "));
    println!(
        "positions   {} open / {} max",
        s["open_positions"], s["max_open_positions"]
    );
    println!("pending     {}", s["pending"]);
    println!(
        "equity      {}",
        fmt_money(s["equity"].as_f64().unwrap_or(desk.config.account.size))
    );
    println!(
        "last cycle  {}",
        st.last_cycle_at_ms
            .map(store::fmt_ts)
            .unwrap_or_else(|| "never".into())
    );
    println!("config      {}", desk.config.source);
    println!("data dir    {}", desk.data_dir.display());
    Ok(EXIT_OK)
}

pub fn enable(desk: &Desk) -> Result<u8> {
    desk.set_enabled(true)?;
    println!("auto-trading enabled");
    Ok(EXIT_OK)
}

pub fn disable(desk: &Desk) -> Result<u8> {
    desk.set_enabled(false)?;
    println!("auto-trading disabled");
    Ok(EXIT_OK)
}

pub fn kill(desk: &Desk) -> Result<u8> {
    let n = desk.kill()?;
    println!(
        "kill switch on: auto-trading disabled, {n} pending decision(s) cancelled; `enable` to resume"
    );
    Ok(EXIT_OK)
}

pub async fn trade(desk: &Desk, order: &ManualOrder, yes: bool, json: bool) -> Result<u8> {
    if !crate::config::valid_symbol(&order.symbol) {
        eprintln!(
            "error: symbol {:?} is not BASE/QUOTE (letters and digits only, e.g. BTC/USD)",
            order.symbol
        );
        return Ok(EXIT_USAGE);
    }
    match desk.trade(order, Origin::Manual, yes).await {
        Ok((log, pos)) => {
            if json {
                print_json_line(&log.to_json())?;
            } else {
                println!("{}", decision_line(&log));
                match pos {
                    Some(p) => println!(
                        "executed: {} {} {} @ {} ({})",
                        log.decision.action,
                        fmt_qty(p.quantity),
                        p.symbol,
                        fmt_price(p.entry_price),
                        log.mode
                    ),
                    None => println!(
                        "pending: confirm with `autotrade-tui confirm {}` or on the dashboard",
                        log.log_id
                    ),
                }
            }
            Ok(EXIT_OK)
        }
        Err(e) => refused(e),
    }
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
        println!("no open positions");
    }
    for r in &rows {
        let f = |k: &str| r[k].as_f64();
        println!(
            "{:<10} {:<4} {:>12}  entry {}  TP {}  SL {}  last {}  P&L {}  since {}",
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
        );
    }
    Ok(EXIT_OK)
}

pub async fn close(desk: &Desk, symbol: &str) -> Result<u8> {
    if !crate::config::valid_symbol(symbol) {
        eprintln!(
            "error: symbol {symbol:?} is not BASE/QUOTE (letters and digits only, e.g. BTC/USD)"
        );
        return Ok(EXIT_USAGE);
    }
    match desk.close(symbol, None, "closed by trader").await {
        Ok(p) => {
            println!(
                "closed {} {} {} @ {}, realized P&L {}",
                p.side,
                fmt_qty(p.quantity),
                p.symbol,
                p.exit_price.map(fmt_price).unwrap_or_default(),
                crate::domain::money::fmt_signed(p.realized_pnl.unwrap_or(0.0))
            );
            Ok(EXIT_OK)
        }
        Err(e) => refused(e),
    }
}
