use autotrade_tui::cli::{Cli, Command};
use autotrade_tui::commands::{self, EXIT_USAGE, ErrorKind, report_error, report_warning};
use autotrade_tui::config::{self, Config};
use autotrade_tui::desk::Desk;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.json();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return ExitCode::from(report_error(json, ErrorKind::Config, &e.0)),
    };
    if let Err(msg) = live_guard(&config, cli.live) {
        return ExitCode::from(report_error(json, ErrorKind::Config, &msg));
    }
    // A broker that cannot be made (a key missing from the environment) refuses to start;
    // a backtest and a remote dashboard send no orders from here.
    let broker = if matches!(
        cli.command,
        Some(Command::Backtest { .. } | Command::Attach { .. })
    ) {
        None
    } else {
        match autotrade_tui::broker::for_config(&config) {
            Ok(b) => Some(b),
            Err(msg) => return ExitCode::from(report_error(json, ErrorKind::Config, &msg)),
        }
    };
    let data_dir = match config::data_dir(cli.data_dir.as_deref()) {
        Ok(d) => d,
        Err(e) => return ExitCode::from(report_error(json, ErrorKind::Config, &e.0)),
    };
    if let Err(e) = color_eyre::install() {
        report_warning(json, &e.to_string());
    }
    let _log_guard = match autotrade_tui::logging::init(&data_dir) {
        Ok(g) => Some(g),
        Err(e) => {
            report_warning(json, &format!("logging to a file is off: {e}"));
            None
        }
    };
    match run(cli, config, data_dir, broker) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(report_error(json, ErrorKind::Failed, &format!("{e:#}")))
        }
    }
}

/// Bad flags or arguments: clap's own words and exit 2, or with `--json` one JSON object.
/// `--help` and `--version` print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    let json = std::env::args_os().any(|a| a == "--json");
    if !e.use_stderr() || !json {
        e.exit();
    }
    let text = e.render().to_string();
    // The first paragraph says what is wrong; the rest is the usage line and a tip.
    let message = text
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("error: ");
    ExitCode::from(report_error(true, ErrorKind::Usage, message))
}

/// `paper_trading = false` alone never trades live: live needs it, the `--live` flag, a broker
/// that trades live (`[broker] kind = "alpaca"`) and that broker's live keys in the
/// environment. Each missing piece is named.
fn live_guard(config: &Config, live_flag: bool) -> Result<(), String> {
    if config.auto_trade.paper_trading {
        if live_flag {
            return Err(format!(
                "--live given but paper_trading = true in {}: live trading needs paper_trading = false as well",
                config.source
            ));
        }
        return Ok(());
    }
    let mut missing = Vec::new();
    if !live_flag {
        missing.push("the --live flag on the command line".to_string());
    }
    if config.broker.kind != config::BrokerKind::Alpaca {
        missing.push(
            "a broker that trades live ([broker] kind = \"alpaca\"; the built-in paper ledger never does)"
                .to_string(),
        );
    } else if let Err(e) = autotrade_tui::broker::alpaca::AlpacaKeys::from_env(true) {
        missing.push(format!("Alpaca's live keys: {e}"));
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "live trading refused: paper_trading = false in {} but {} {} missing. Set paper_trading = true to trade on paper.",
        config.source,
        missing.join(" and "),
        if missing.len() > 1 { "are" } else { "is" }
    ))
}

fn run(
    cli: Cli,
    config: Config,
    data_dir: std::path::PathBuf,
    broker: Option<std::sync::Arc<dyn autotrade_tui::broker::Broker>>,
) -> color_eyre::Result<u8> {
    let json = cli.json();
    // The backtest needs no store, no source and no runtime: history in, report out.
    if let Some(Command::Backtest {
        candles,
        symbol,
        baseline_seeds,
        seed,
        trail,
        json,
    }) = &cli.command
    {
        let baseline = match baseline_seeds {
            Some(runs) => autotrade_tui::backtest::BaselineOptions::exactly(*runs, *seed),
            None => autotrade_tui::backtest::BaselineOptions {
                seed: *seed,
                ..Default::default()
            },
        };
        return autotrade_tui::backtest::run_cli(
            &config,
            candles,
            symbol.as_deref(),
            baseline,
            *trail,
            *json,
        );
    }
    // A remote dashboard needs no store, no source and no broker here: everything is the server's.
    if let Some(Command::Attach { url, user }) = &cli.command {
        let token = std::env::var("AUTOTRADE_API_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        let remote = match autotrade_tui::remote::Remote::new(url, user, token.as_deref()) {
            Ok(r) => r,
            Err(e) => return Ok(report_error(json, ErrorKind::Usage, &e)),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        return match rt.block_on(autotrade_tui::tui::run_remote(
            remote,
            &config.notifications,
        )) {
            Ok(code) => Ok(code),
            Err(e) => Ok(report_error(json, ErrorKind::Refused, &format!("{e:#}"))),
        };
    }
    // Numbered threads, so that `scripts/idle-cpu.sh` can tell them apart: the two workers
    // start with the runtime and take the first numbers, the blocking pool the later ones.
    let threads = std::sync::atomic::AtomicUsize::new(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name_fn(move || {
            let n = threads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("tokio-{n}")
        })
        .enable_all()
        .build()?;
    let Some(broker) = broker else {
        return Err(color_eyre::eyre::eyre!("no broker for this command"));
    };
    if cli.command.is_none() && config.store_url().is_some() {
        // The dashboard keeps its store in SQLite; a shared store is watched through a server.
        return Ok(report_error(
            json,
            ErrorKind::Refused,
            "this config keeps the store in PostgreSQL ([store] url): the dashboard runs on a SQLite data dir only; start `autotrade-tui serve` on it and watch with `autotrade-tui attach URL`",
        ));
    }
    let ctx = Desk::open(config, data_dir, broker)?;
    let ctx = match cli.user() {
        Some(user) => match commands::desk_for_user(&ctx, user)? {
            Ok(other) => other,
            Err(msg) => return Ok(report_error(json, ErrorKind::Refused, &msg)),
        },
        None => ctx,
    };
    // After a crash: executions half done are resolved, orders whose answer was lost looked up
    // (not for a view of another user, which only reads).
    // The dashboard and `serve` start at once and leave the broker to their first cycle (a
    // broker that hangs must not hold the screen); a command waits for the broker's truth.
    let engine = matches!(
        cli.command,
        None | Some(Command::Serve { .. } | Command::Run)
    );
    // The kill switch does not wait for the recovery's writes: on a busy store they could
    // fail it ("database is locked"); the next command or engine cycle recovers.
    let kill_first = matches!(cli.command, Some(Command::Kill { flatten: false }));
    if !ctx.viewer && !kill_first {
        let found = match if engine {
            ctx.recover_executed()
        } else {
            rt.block_on(ctx.recover())
        } {
            Ok(found) => found,
            // A store that cannot write: the recovery waits for it; the command says the rest.
            Err(e) if ctx.store.health().is_failing() => {
                tracing::error!("recovery after a crash postponed: {e}");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        for problem in found {
            // `run` has no terminal to speak to: the log file has it.
            if matches!(cli.command, Some(Command::Run)) {
                tracing::warn!("{problem}");
            } else {
                report_warning(json, &problem.to_string());
            }
        }
    }
    // Rolling backups of the store, checked whole above: an engine backs it up at its start
    // and every new day on a blocking thread of its own; a command makes today's if due.
    // PostgreSQL's backups are the database's own (pg_dump, archiving), not ours.
    let sqlite = !ctx.store.is_shared();
    if engine {
        if sqlite {
            rt.spawn(autotrade_tui::store::backup::keep_rolling(
                ctx.data_dir.clone(),
            ));
        }
        // Headless, a store that cannot write is said on stderr (the dashboard shows a banner).
        if cli.command.is_some() {
            rt.spawn(autotrade_tui::notify::announce_store_health(
                ctx.store.health_cell().subscribe(),
                ctx.config.notifications.clone(),
                ctx.config.auto_trade.user_id.clone(),
            ));
        }
    } else if sqlite {
        autotrade_tui::store::backup::daily_if_due(&ctx.data_dir);
    }
    match cli.command {
        // Run above, before any store is opened.
        Some(Command::Attach { .. }) => Ok(commands::EXIT_OK),
        None => rt.block_on(autotrade_tui::tui::run(ctx)),
        Some(Command::Once { json }) => rt.block_on(commands::once(&ctx, json)),
        Some(Command::Decisions {
            limit,
            executed_only,
            pending,
            json,
            ..
        }) => commands::decisions(&ctx, limit, executed_only, pending, json),
        Some(Command::Confirm { log_id }) => rt.block_on(commands::confirm(&ctx, &log_id)),
        Some(Command::Cancel { log_id }) => commands::cancel(&ctx, &log_id),
        Some(Command::Status { json, .. }) => commands::status(&ctx, json),
        Some(Command::Enable { reset }) => commands::enable(&ctx, reset),
        Some(Command::Disable) => commands::disable(&ctx),
        Some(Command::Kill { flatten: false }) => commands::kill(&ctx),
        Some(Command::Kill { flatten: true }) => rt.block_on(commands::flatten(&ctx)),
        Some(Command::Trade {
            symbol,
            side,
            size,
            tp,
            sl,
            allow_risk,
            allow_rr,
            allow_value,
            trail,
            trail_by,
            yes,
            json,
        }) => rt.block_on(commands::trade(
            &ctx,
            &autotrade_tui::domain::manual::ManualOrder {
                symbol,
                side: side.side(),
                size,
                take_profit: tp,
                stop_loss: sl,
                trail: trail
                    .map(autotrade_tui::domain::trail::Trail::Percent)
                    .or(trail_by.map(autotrade_tui::domain::trail::Trail::Amount)),
            },
            &autotrade_tui::domain::manual::Overrides {
                risk_percent: allow_risk,
                reward_to_risk: allow_rr,
                position_percent: allow_value,
                from_command_line: true,
            },
            yes,
            json,
        )),
        Some(Command::Positions { json, .. }) => commands::positions(&ctx, json),
        Some(Command::Report { since, json, .. }) => commands::report(&ctx, since.as_deref(), json),
        Some(Command::Close { symbol }) => rt.block_on(commands::close(&ctx, &symbol)),
        Some(Command::Serve { listen }) => rt.block_on(autotrade_tui::api::serve(ctx, &listen)),
        Some(Command::Run) => rt.block_on(autotrade_tui::api::headless::run(ctx)),
        Some(Command::Mcp) => rt.block_on(autotrade_tui::mcp::run(ctx)),
        Some(Command::Backtest { .. }) => Ok(EXIT_USAGE),
    }
}
