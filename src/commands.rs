//! The scriptable commands: each returns the process exit code (0 ok, 1 refused).

use crate::config::Config;
use crate::engine::{Engine, limits_for};
use crate::money::{fmt_money, fmt_price, fmt_qty};
use crate::source::MarketSource;
use crate::store::{self, DecisionLog, Status, Store, StoreError};
use color_eyre::eyre::{Result, WrapErr, eyre};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Exit codes of the SPEC.
pub const EXIT_OK: u8 = 0;
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// What every command needs.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub data_dir: PathBuf,
    pub store: Arc<Store>,
    /// The source, made once and shared by the loop and every manual action (the simulated
    /// market regenerates its history when made, and the ML client keeps its connections).
    source: Arc<std::sync::Mutex<Option<Arc<dyn MarketSource>>>>,
}

impl Context {
    pub fn open(config: Config, data_dir: PathBuf) -> Result<Context> {
        let store = Store::open(
            &data_dir,
            &config.auto_trade.user_id,
            config.auto_trade.enabled,
        )
        .wrap_err_with(|| format!("opening the store in {}", data_dir.display()))?;
        for problem in store.recover_on_start()? {
            eprintln!("warning: {problem}");
        }
        Ok(Context::new(Arc::new(config), data_dir, Arc::new(store)))
    }

    pub fn new(config: Arc<Config>, data_dir: PathBuf, store: Arc<Store>) -> Context {
        Context {
            config,
            data_dir,
            store,
            source: Arc::default(),
        }
    }

    /// The configured source: the ML engine, or the built-in simulated market.
    pub fn source(&self) -> Result<Arc<dyn MarketSource>> {
        let mut cached = match self.source.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let made = make_source(&self.config, &self.store)?;
        *cached = Some(made.clone());
        Ok(made)
    }

    pub fn engine(&self) -> Result<Engine> {
        Ok(Engine::new(
            self.config.clone(),
            self.store.clone(),
            self.source()?,
        ))
    }
}

pub fn make_source(config: &Config, store: &Store) -> Result<Arc<dyn MarketSource>> {
    match &config.ml_engine {
        Some(ml) => {
            let client = crate::ml_engine::MlEngineClient::new(
                &ml.url,
                Duration::from_secs_f64(ml.timeout_seconds),
                ml.max_concurrent_requests,
            )
            .map_err(|e| eyre!(e))?;
            Ok(Arc::new(client))
        }
        None => Ok(Arc::new(crate::simulated::SimulatedSource::for_store(
            config, store,
        )?)),
    }
}

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

pub async fn once(ctx: &Context, json: bool) -> Result<u8> {
    let engine = ctx.engine()?;
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
    ctx: &Context,
    limit: usize,
    executed_only: bool,
    pending: bool,
    json: bool,
) -> Result<u8> {
    ctx.store.expire_stale(ctx.config.pending_expiry())?;
    let status = if executed_only {
        Some(Status::Executed)
    } else if pending {
        Some(Status::Pending)
    } else {
        None
    };
    let logs = ctx.store.decisions(limit, status)?;
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

fn refused(e: StoreError) -> Result<u8> {
    match e {
        StoreError::Refused(_) | StoreError::UnknownDecision(_) => {
            eprintln!("refused: {e}");
            Ok(EXIT_REFUSED)
        }
        other => Err(other.into()),
    }
}

pub fn confirm(ctx: &Context, log_id: &str) -> Result<u8> {
    match ctx.store.confirm(log_id, &limits_for(&ctx.config)) {
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

pub fn cancel(ctx: &Context, log_id: &str) -> Result<u8> {
    match ctx.store.cancel(log_id, "cancelled from the command line") {
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

/// Equity: account size plus realized P&L plus unrealized P&L at the latest prices.
pub fn equity(config: &Config, store: &Store) -> Result<(f64, f64, f64)> {
    let realized = store.realized_pnl()?;
    let prices = store.prices()?;
    let unrealized: f64 = store
        .open_positions()?
        .iter()
        .map(|p| {
            let last = prices
                .get(&p.symbol)
                .map(|x| x.price)
                .unwrap_or(p.entry_price);
            crate::broker::paper::pnl(p.side, p.quantity, p.entry_price, last)
        })
        .sum();
    Ok((
        config.account.size + realized + unrealized,
        realized,
        unrealized,
    ))
}

pub fn status_json(ctx: &Context) -> Result<serde_json::Value> {
    let st = ctx.store.state()?;
    let open = ctx.store.open_positions()?.len();
    let pending = ctx.store.count_decisions(Some(Status::Pending))?;
    let (eq, realized, unrealized) = equity(&ctx.config, &ctx.store)?;
    Ok(serde_json::json!({
        "user_id": ctx.config.auto_trade.user_id,
        "enabled": st.enabled,
        "kill_switch": st.kill_switch,
        "mode": ctx.config.mode(),
        "source": ctx.config.source_name(),
        "symbols": ctx.config.auto_trade.symbols,
        "open_positions": open,
        "max_open_positions": ctx.config.auto_trade.max_open_positions,
        "pending": pending,
        "last_cycle": st.last_cycle_at_ms.map(store::fmt_ts),
        "equity": crate::domain::rules::round_dp(eq, 2),
        "realized_pnl": crate::domain::rules::round_dp(realized, 2),
        "unrealized_pnl": crate::domain::rules::round_dp(unrealized, 2),
        "config": ctx.config.source,
        "data_dir": ctx.data_dir.display().to_string(),
    }))
}

pub fn status(ctx: &Context, json: bool) -> Result<u8> {
    ctx.store.expire_stale(ctx.config.pending_expiry())?;
    let s = status_json(ctx)?;
    if json {
        print_json_line(&s)?;
        return Ok(EXIT_OK);
    }
    let yes = |b: bool, t: &'static str, f: &'static str| if b { t } else { f };
    let st = ctx.store.state()?;
    println!("user        {}", ctx.config.auto_trade.user_id);
    println!(
        "auto-trade  {}{}",
        yes(st.enabled, "ENABLED", "DISABLED"),
        yes(st.kill_switch, " (kill switch on)", "")
    );
    println!("mode        {}", ctx.config.mode().to_uppercase());
    println!(
        "source      {}",
        yes(
            ctx.config.is_simulated(),
            "SIMULATED (built-in market)",
            "ML ENGINE"
        )
    );
    if let Some(ml) = &ctx.config.ml_engine {
        println!("ml engine   {}", ml.url);
    }
    println!("symbols     {}", ctx.config.auto_trade.symbols.join(", "));
    println!(
        "positions   {} open / {} max",
        s["open_positions"], s["max_open_positions"]
    );
    println!("pending     {}", s["pending"]);
    println!(
        "equity      {}",
        fmt_money(s["equity"].as_f64().unwrap_or(ctx.config.account.size))
    );
    println!(
        "last cycle  {}",
        st.last_cycle_at_ms
            .map(store::fmt_ts)
            .unwrap_or_else(|| "never".into())
    );
    println!("config      {}", ctx.config.source);
    println!("data dir    {}", ctx.data_dir.display());
    Ok(EXIT_OK)
}

pub fn enable(ctx: &Context) -> Result<u8> {
    ctx.store.enable()?;
    println!("auto-trading enabled");
    Ok(EXIT_OK)
}

pub fn disable(ctx: &Context) -> Result<u8> {
    ctx.store.disable()?;
    println!("auto-trading disabled");
    Ok(EXIT_OK)
}

pub fn kill(ctx: &Context) -> Result<u8> {
    let n = ctx.store.kill()?;
    println!(
        "kill switch on: auto-trading disabled, {n} pending decision(s) cancelled; `enable` to resume"
    );
    Ok(EXIT_OK)
}

/// The market as it stands for a manual order: a fresh report from the source, with the
/// store's latest price when the source has none.
pub async fn market_context(
    ctx: &Context,
    symbol: &str,
) -> Result<crate::domain::manual::MarketContext> {
    let source = ctx.source()?;
    let report = source.fetch(symbol).await;
    let store = ctx.store.clone();
    let sym = symbol.to_string();
    let fresh = report.price;
    let stored = tokio::task::spawn_blocking(move || -> Result<Option<f64>> {
        if let Some(p) = fresh.filter(|p| p.is_finite() && *p > 0.0) {
            store.update_price(&sym, p)?;
        }
        Ok(store.latest_price(&sym)?.map(|p| p.price))
    })
    .await??;
    let raw_signal = report.signal.clone().unwrap_or(serde_json::Value::Null);
    let signal = report
        .signal
        .as_ref()
        .ok()
        .and_then(|v| crate::domain::rules::parse_signal(v).ok());
    let phase = report
        .phase
        .as_ref()
        .ok()
        .and_then(|v| crate::domain::rules::parse_phase(v).ok())
        .map(|a| a.phase);
    Ok(crate::domain::manual::MarketContext {
        price: stored,
        signal,
        raw_signal,
        phase,
    })
}

/// A manual order placed the way `trade` places it (the dashboard's `t` uses it too): a fresh
/// market context, the manual rules, then the store's gates. `Ok(Err(why))` is a refusal that
/// is already recorded as an event; nothing actionable was stored.
pub async fn place_manual(
    ctx: &Context,
    order: &crate::domain::manual::ManualOrder,
    origin: store::Origin,
    execute: bool,
) -> Result<std::result::Result<(DecisionLog, Option<store::Position>), String>> {
    let market = market_context(ctx, &order.symbol).await?;
    let limits = limits_for(&ctx.config);
    let decision = crate::domain::manual::manual_decision(order, &market, &limits.risk);
    let store = ctx.store.clone();
    tokio::task::spawn_blocking(move || {
        let decision = match decision {
            Ok(d) => d,
            Err(e) => {
                store.add_event("warn", &format!("{} trade refused: {e}", origin.as_str()))?;
                return Ok(Err(e));
            }
        };
        match store.record_manual(&decision, origin, execute, &limits) {
            Ok(placed) => Ok(Ok(placed)),
            // The store recorded the gate that refused it.
            Err(StoreError::Refused(e)) => Ok(Err(e)),
            Err(e) => Err(e.into()),
        }
    })
    .await?
}

pub async fn trade(
    ctx: &Context,
    order: &crate::domain::manual::ManualOrder,
    yes: bool,
    json: bool,
) -> Result<u8> {
    if !crate::config::valid_symbol(&order.symbol) {
        eprintln!(
            "error: symbol {:?} is not BASE/QUOTE (letters and digits only, e.g. BTC/USD)",
            order.symbol
        );
        return Ok(EXIT_USAGE);
    }
    match place_manual(ctx, order, store::Origin::Manual, yes).await? {
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
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(EXIT_REFUSED)
        }
    }
}

/// Open positions as `positions --json` shows them.
pub fn positions_json(ctx: &Context) -> Result<Vec<serde_json::Value>> {
    let prices = ctx.store.prices()?;
    Ok(ctx
        .store
        .open_positions()?
        .iter()
        .map(|p| {
            let last = prices.get(&p.symbol).map(|x| x.price);
            let upnl = last.map(|l| {
                crate::domain::rules::round_dp(
                    crate::broker::paper::pnl(p.side, p.quantity, p.entry_price, l),
                    2,
                )
            });
            serde_json::json!({
                "symbol": p.symbol,
                "side": p.side.as_str(),
                "quantity": p.quantity,
                "entry_price": p.entry_price,
                "take_profit": p.take_profit,
                "stop_loss": p.stop_loss,
                "opened_at": store::fmt_ts(p.opened_at_ms),
                "last_price": last,
                "unrealized_pnl": upnl,
                "mode": p.mode,
                "log_id": p.decision_id,
            })
        })
        .collect())
}

pub fn positions(ctx: &Context, json: bool) -> Result<u8> {
    let rows = positions_json(ctx)?;
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
                .map(crate::money::fmt_signed)
                .unwrap_or_else(|| "—".into()),
            r["opened_at"].as_str().unwrap_or("")
        );
    }
    Ok(EXIT_OK)
}

/// Close the open position on `symbol` the way `close` does (the dashboard's `c` uses it
/// too): bring the price up to date first, then close at it. `Ok(Err(why))` is a refusal.
pub async fn close_symbol(
    ctx: &Context,
    symbol: &str,
    reason: &str,
) -> Result<std::result::Result<store::Position, String>> {
    let open = {
        let store = ctx.store.clone();
        tokio::task::spawn_blocking(move || store.open_positions()).await??
    };
    if open.iter().all(|p| p.symbol != symbol) {
        return Ok(Err(format!("no open position on {symbol}")));
    }
    // Bring the price up to date first; it may itself cross the take-profit or stop-loss.
    let _ = market_context(ctx, symbol).await?;
    let store = ctx.store.clone();
    let (symbol, reason) = (symbol.to_string(), reason.to_string());
    tokio::task::spawn_blocking(move || match store.close_position(&symbol, &reason) {
        Ok(p) => Ok(Ok(p)),
        Err(StoreError::Refused(_)) => Ok(Err(
            match store
                .closed_positions(1)?
                .into_iter()
                .find(|p| p.symbol == symbol)
            {
                Some(p) => format!(
                    "{symbol} was just closed by its {} at {}",
                    p.close_reason.unwrap_or_default(),
                    p.exit_price.map(fmt_price).unwrap_or_default()
                ),
                None => format!("no open position on {symbol}"),
            },
        )),
        Err(e) => Err(e.into()),
    })
    .await?
}

pub async fn close(ctx: &Context, symbol: &str) -> Result<u8> {
    if !crate::config::valid_symbol(symbol) {
        eprintln!(
            "error: symbol {symbol:?} is not BASE/QUOTE (letters and digits only, e.g. BTC/USD)"
        );
        return Ok(EXIT_USAGE);
    }
    match close_symbol(ctx, symbol, "closed by trader").await? {
        Ok(p) => {
            println!(
                "closed {} {} {} @ {}, realized P&L {}",
                p.side,
                fmt_qty(p.quantity),
                p.symbol,
                p.exit_price.map(fmt_price).unwrap_or_default(),
                crate::money::fmt_signed(p.realized_pnl.unwrap_or(0.0))
            );
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(EXIT_REFUSED)
        }
    }
}
