#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The dashboard without a terminal: `App::update` for every key, and every pane rendered on
//! a `TestBackend` at 80×24 and 120×40 from plain data with fixed times (text snapshots).

mod support;

use autotrade_tui::app::{Action, App, Effect, Focus, Outcome, Settings, Snapshot};
use autotrade_tui::domain::manual::ManualOrder;
use autotrade_tui::domain::rules;
use autotrade_tui::domain::{Direction, Phase, Side};
use autotrade_tui::engine::{EngineEvent, Health, SymbolView};
use autotrade_tui::form::{Form, TradeField};
use autotrade_tui::store::{PricePoint, RuntimeState, Status};
use autotrade_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::style::Color;
use support::fixtures::{NOW, SEC, actionable, event, hold, position, risk, symbol_view, trend};

fn settings(live: bool, color: bool) -> Settings {
    Settings {
        user_id: "default".into(),
        live,
        simulated: false,
        seconds_per_candle: None,
        symbols: vec!["BTC/USD".into(), "ETH/USD".into(), "SOL/USD".into()],
        max_open_positions: 3,
        account_size: 10_000.0,
        pending_expiry_ms: 600_000,
        stale_after_ms: None,
        broker: None,
        daily_loss_limit_percent: 0.0,
        max_drawdown_percent: 0.0,
        color,
    }
}

const BTC_ID: &str = "decision_1f3a9c0b7d2e";
const ETH_ID: &str = "decision_9b0c4d5e6f70";

/// Two pending decisions (ETH newest), a HOLD on SOL which has an open position.
fn snapshot() -> Snapshot {
    let btc = actionable(BTC_ID, "BTC/USD", Side::Buy, 45_000.0, Status::Pending, 42);
    let eth = actionable(ETH_ID, "ETH/USD", Side::Sell, 2_500.0, Status::Pending, 41);
    let sol = hold(
        "decision_5a5a5a5a5a5a",
        "SOL/USD",
        "HOLD: neutral signal during manipulation; SOL/USD already has an open position",
        40,
    );
    let mut prices = std::collections::BTreeMap::new();
    for (s, p) in [
        ("BTC/USD", 45_120.5),
        ("ETH/USD", 2_488.25),
        ("SOL/USD", 152.4),
    ] {
        prices.insert(
            s.to_string(),
            PricePoint {
                price: p,
                at_ms: NOW - 40 * SEC,
                bid: None,
                ask: None,
            },
        );
    }
    let sol_pos = position(1, "SOL/USD", Side::Buy, 13.157_894_73, 150.0, 3_700);
    let unrealized = (152.4 - 150.0) * sol_pos.quantity;
    Snapshot {
        taken_at_ms: NOW,
        state: RuntimeState {
            enabled: true,
            kill_switch: false,
            last_cycle_at_ms: Some(NOW - 42 * SEC),
            halt: None,
            marks: Default::default(),
        },
        pending: vec![eth.clone(), btc.clone()],
        latest: vec![sol, eth, btc],
        positions: vec![sol_pos],
        trends: [
            (
                "BTC/USD".to_string(),
                trend(&[44_800.0, 44_950.0, 45_300.0, 45_120.5], NOW - 40 * SEC),
            ),
            (
                "ETH/USD".to_string(),
                trend(&[2_520.0, 2_500.0, 2_488.25], NOW - 40 * SEC),
            ),
        ]
        .into_iter()
        .collect(),
        prices,
        events: vec![
            event(
                3,
                3_700,
                "info",
                "executed BUY 13.15789473 SOL/USD @ 150.000 (paper, decision_000000000001)",
            ),
            event(2, 7_200, "info", "auto-trading enabled"),
        ],
        equity: 10_000.0 + 12.5 + unrealized,
        realized_pnl: 12.5,
        unrealized_pnl: unrealized,
        broker: None,
    }
}

fn view(symbol: &str, direction: Direction, phase: Phase, price: f64) -> SymbolView {
    let log = snapshot()
        .latest
        .into_iter()
        .find(|l| l.decision.symbol == symbol)
        .unwrap();
    symbol_view(symbol, direction, phase, price, log)
}

/// A dashboard that has seen one snapshot and one engine cycle.
fn app_with(live: bool, color: bool) -> App {
    let mut app = App::new(settings(live, color), NOW).with_risk(risk());
    app.update(Action::Snapshot(Box::new(snapshot())));
    for v in [
        view("BTC/USD", Direction::Bullish, Phase::Accumulation, 45_120.5),
        view("ETH/USD", Direction::Bearish, Phase::Distribution, 2_488.25),
        view("SOL/USD", Direction::Neutral, Phase::Manipulation, 152.4),
    ] {
        app.update(Action::Engine(EngineEvent::Symbol(Box::new(v))));
    }
    app.update(Action::Engine(EngineEvent::Health(Health::Ok)));
    app.update(Action::Engine(EngineEvent::NextCheck {
        at_ms: NOW + 258 * SEC,
    }));
    app
}

fn app() -> App {
    app_with(false, true)
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(c: char) -> Action {
    key(KeyCode::Char(c))
}

fn render_buffer(app: &App, w: u16, h: u16) -> ratatui::buffer::Buffer {
    support::fixtures::screen_buffer(app, w, h)
}

/// The screen as text, one line per row, trailing spaces trimmed.
fn render(app: &App, w: u16, h: u16) -> String {
    support::fixtures::screen_text(app, w, h)
}

// ---------------------------------------------------------------- update: keys

#[test]
fn first_pending_is_selected_and_j_k_arrows_move_within_bounds() {
    let mut app = app();
    assert_eq!(app.focus, Focus::Pending);
    assert_eq!(app.selected_pending.as_deref(), Some(ETH_ID));
    app.update(ch('j'));
    assert_eq!(app.selected_pending.as_deref(), Some(BTC_ID));
    app.update(key(KeyCode::Down));
    assert_eq!(
        app.selected_pending.as_deref(),
        Some(BTC_ID),
        "stays on the last"
    );
    app.update(ch('k'));
    assert_eq!(app.selected_pending.as_deref(), Some(ETH_ID));
    app.update(key(KeyCode::Up));
    assert_eq!(
        app.selected_pending.as_deref(),
        Some(ETH_ID),
        "stays on the first"
    );
}

#[test]
fn selection_follows_the_same_log_id_across_refreshes() {
    let mut app = app();
    app.update(ch('j'));
    assert_eq!(app.selected_pending.as_deref(), Some(BTC_ID));
    // A newer decision arrives at the top: the selection stays on BTC.
    let mut s = snapshot();
    s.pending.insert(
        0,
        actionable(
            "decision_aaaaaaaaaaaa",
            "ADA/USD",
            Side::Buy,
            0.5,
            Status::Pending,
            1,
        ),
    );
    app.update(Action::Snapshot(Box::new(s.clone())));
    assert_eq!(app.selected_pending.as_deref(), Some(BTC_ID));
    assert_eq!(app.selected_pending_index(), Some(2));
    // BTC confirmed elsewhere: the item now at its place (the last) is selected.
    s.pending.retain(|d| d.log_id != BTC_ID);
    app.update(Action::Snapshot(Box::new(s.clone())));
    assert_eq!(app.selected_pending.as_deref(), Some(ETH_ID));
    // Nothing pending: nothing selected; then a new one is selected at once.
    s.pending.clear();
    app.update(Action::Snapshot(Box::new(s.clone())));
    assert_eq!(app.selected_pending, None);
    s.pending.push(actionable(
        BTC_ID,
        "BTC/USD",
        Side::Buy,
        45_000.0,
        Status::Pending,
        0,
    ));
    app.update(Action::Snapshot(Box::new(s)));
    assert_eq!(app.selected_pending.as_deref(), Some(BTC_ID));
}

#[test]
fn y_never_acts_on_a_selection_the_trader_has_not_seen() {
    let mut app = app();
    app.update(ch('j'));
    assert_eq!(app.selected_pending.as_deref(), Some(BTC_ID));
    // BTC is confirmed elsewhere and, in the same batch before any draw, `y` arrives.
    let mut s = snapshot();
    s.pending.retain(|d| d.log_id != BTC_ID);
    app.update(Action::Snapshot(Box::new(s)));
    assert_eq!(app.selected_pending.as_deref(), Some(ETH_ID));
    assert!(
        app.update(ch('y')).is_empty(),
        "ETH was never shown selected"
    );
    assert!(app.update(ch('n')).is_empty());
    let text = render(&app, 120, 40);
    assert!(text.contains("selected decision is gone"), "{text}");
    // Once drawn, the new selection is what the trader sees: `y` confirms it.
    app.mark_drawn();
    let effects = app.update(ch('y'));
    assert!(
        matches!(effects.as_slice(), [Effect::Confirm { log_id, .. }] if log_id == ETH_ID),
        "{effects:?}"
    );
}

#[test]
fn tab_switches_focus_and_arrows_then_move_in_positions() {
    let mut app = app();
    let mut s = snapshot();
    s.positions
        .push(position(2, "BTC/USD", Side::Buy, 0.1, 44_000.0, 60));
    app.update(Action::Snapshot(Box::new(s)));
    assert_eq!(app.selected_position, Some(1));
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Positions);
    app.update(ch('j'));
    assert_eq!(app.selected_position, Some(2));
    assert_eq!(
        app.selected_pending.as_deref(),
        Some(ETH_ID),
        "pending selection untouched"
    );
    // Then the signals and the events, which scroll too, and round to pending.
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Signals);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Events);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Pending);
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.focus, Focus::Events);
}

#[test]
fn y_and_enter_confirm_exactly_the_selected_decision() {
    let mut app = app();
    let effects = app.update(ch('y'));
    assert!(
        matches!(effects.as_slice(), [Effect::Confirm { log_id, .. }] if log_id == ETH_ID),
        "{effects:?}"
    );
    app.update(ch('j'));
    let effects = app.update(key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Confirm { log_id, .. }] if log_id == BTC_ID),
        "{effects:?}"
    );
}

#[test]
fn n_x_delete_cancel_the_selected_decision() {
    for k in [ch('n'), ch('x'), key(KeyCode::Delete)] {
        let mut app = app();
        app.update(ch('j'));
        let effects = app.update(k.clone());
        assert!(
            matches!(effects.as_slice(), [Effect::Cancel { log_id, .. }] if log_id == BTC_ID),
            "{k:?}: {effects:?}"
        );
    }
}

#[test]
fn confirm_needs_the_pending_pane_and_a_selection() {
    let mut app = app();
    app.update(key(KeyCode::Tab));
    assert!(app.update(ch('y')).is_empty(), "focus is on positions");
    assert!(app.event_lines()[0].message.contains("Tab"));
    let mut empty = App::new(settings(false, true), NOW);
    let mut s = snapshot();
    s.pending.clear();
    empty.update(Action::Snapshot(Box::new(s)));
    assert!(empty.update(ch('y')).is_empty());
    assert!(empty.update(ch('n')).is_empty());
    assert!(
        empty.event_lines()[0]
            .message
            .contains("no pending decision")
    );
}

#[test]
fn kill_switch_asks_first_then_y_kills_and_n_or_esc_dismiss() {
    let mut app = app();
    assert!(app.update(ch('K')).is_empty());
    assert!(app.popup.is_some());
    assert_eq!(app.popup.as_ref().unwrap().on_yes, Effect::Kill);
    // While the popup is up, keys mean yes/no only: j does not move the selection.
    app.update(ch('j'));
    assert_eq!(app.selected_pending.as_deref(), Some(ETH_ID));
    assert_eq!(app.update(ch('y')), vec![Effect::Kill]);
    assert!(app.popup.is_none());

    for dismiss in [ch('n'), key(KeyCode::Esc)] {
        let mut app = self::app();
        app.update(ch('K'));
        assert!(app.update(dismiss.clone()).is_empty(), "{dismiss:?}");
        assert!(app.popup.is_none());
        assert!(!app.should_quit());
    }
}

#[test]
fn shift_k_as_some_terminals_report_it_also_opens_the_popup() {
    let mut app = app();
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('K'),
        KeyModifiers::SHIFT,
    )));
    assert!(app.popup.is_some());
}

#[test]
fn e_toggles_enabled_and_enables_after_a_kill() {
    let mut app = app();
    assert_eq!(app.update(ch('e')), vec![Effect::SetEnabled(false)]);
    let mut s = snapshot();
    s.state.enabled = false;
    app.update(Action::Snapshot(Box::new(s.clone())));
    assert_eq!(app.update(ch('e')), vec![Effect::SetEnabled(true)]);
    // After the kill switch, enabling asks first, and only `y` enables.
    s.state.kill_switch = true;
    app.update(Action::Snapshot(Box::new(s.clone())));
    assert!(app.update(ch('e')).is_empty());
    let popup = app.popup.clone().expect("a question");
    assert_eq!(popup.on_yes, Effect::SetEnabled(true));
    assert!(
        popup.question.contains("Clear the kill switch"),
        "{}",
        popup.question
    );
    assert!(app.update(ch('n')).is_empty());
    assert!(app.popup.is_none());
    app.update(ch('e'));
    assert_eq!(app.update(ch('y')), vec![Effect::SetEnabled(true)]);
    // A loss halt is not cleared by `e`: it says how to reset.
    s.state.halt = Some(autotrade_tui::domain::halt::Halt {
        at_ms: NOW,
        reason: "daily loss 300.00 = 3.00% of 10,000.00 at the day's start ≥ limit 3%".into(),
    });
    app.update(Action::Snapshot(Box::new(s)));
    assert!(app.update(ch('e')).is_empty());
    assert!(app.popup.is_none());
    assert!(
        app.event_lines()[0].message.contains("`R` resets it"),
        "{:?}",
        app.event_lines()[0]
    );
    // Before the store has loaded there is nothing to toggle.
    let mut fresh = App::new(settings(false, true), NOW);
    assert!(fresh.update(ch('e')).is_empty());
}

#[test]
fn r_asks_the_engine_to_check_now() {
    let mut app = app();
    assert_eq!(app.update(ch('r')), vec![Effect::CheckNow]);
}

#[test]
fn question_mark_toggles_help_and_help_swallows_other_keys() {
    let mut app = app();
    app.update(ch('?'));
    assert!(app.show_help);
    assert!(app.update(ch('y')).is_empty(), "no confirm behind the help");
    app.update(ch('?'));
    assert!(!app.show_help);
    app.update(ch('?'));
    app.update(key(KeyCode::Esc));
    assert!(!app.show_help);
    app.update(ch('?'));
    app.update(ch('q'));
    assert!(!app.show_help);
    assert!(!app.should_quit(), "q closes the help first");
}

#[test]
fn q_ctrl_c_and_signals_quit() {
    // Nothing open, nothing pending: `q` quits at once.
    let mut a = app();
    let mut s = snapshot();
    s.pending.clear();
    s.positions.clear();
    a.update(Action::Snapshot(Box::new(s)));
    a.update(ch('q'));
    assert!(a.should_quit());
    let mut b = app();
    b.update(Action::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(b.should_quit());
    let mut c = app();
    c.update(Action::Quit);
    assert!(c.should_quit());
}

#[test]
fn key_releases_are_ignored() {
    let mut app = app();
    let mut ev = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    ev.kind = KeyEventKind::Release;
    app.update(Action::Key(ev));
    assert!(!app.should_quit());
}

#[test]
fn live_confirm_goes_through_a_popup_that_holds_the_order() {
    let mut app = app_with(true, true);
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    // A second Enter does not answer the question: only `y` does.
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    assert!(app.popup.is_some());
    let effects = app.update(ch('y'));
    assert!(
        matches!(effects.as_slice(), [Effect::Confirm { log_id, .. }] if log_id == ETH_ID),
        "{effects:?}"
    );
}

#[test]
fn refusals_and_failures_show_in_the_events_pane() {
    let mut app = app();
    app.update(Action::Done {
        what: "confirm BUY 0.1 BTC/USD".into(),
        outcome: Outcome::Refused("decision_x is executed, not pending".into()),
    });
    let top = &app.event_lines()[0];
    assert_eq!(top.level, "warn");
    assert!(
        top.message
            .contains("confirm BUY 0.1 BTC/USD refused: decision_x is executed"),
        "{top:?}"
    );
    app.update(Action::Done {
        what: "kill switch".into(),
        outcome: Outcome::Failed("store: disk I/O error".into()),
    });
    assert_eq!(app.event_lines()[0].level, "error");
}

#[test]
fn new_pending_decisions_and_symbol_errors_become_events_once_each() {
    let mut app = app();
    let mut s = snapshot();
    s.pending.insert(
        0,
        actionable(
            "decision_bbbbbbbbbbbb",
            "ADA/USD",
            Side::Buy,
            0.5,
            Status::Pending,
            0,
        ),
    );
    app.update(Action::Snapshot(Box::new(s.clone())));
    app.update(Action::Snapshot(Box::new(s)));
    let news: Vec<_> = app
        .event_lines()
        .into_iter()
        .filter(|e| e.message.contains("new pending"))
        .collect();
    assert_eq!(news.len(), 1, "{news:?}");
    assert!(news[0].message.contains("ADA/USD"));

    let mut failed = view("BTC/USD", Direction::Bullish, Phase::Accumulation, 1.0);
    failed.signal = Err("GET /api/v1/signals/BTC%2FUSD timed out after 2s".into());
    for _ in 0..3 {
        app.update(Action::Engine(EngineEvent::Symbol(Box::new(
            failed.clone(),
        ))));
    }
    let errs: Vec<_> = app
        .event_lines()
        .into_iter()
        .filter(|e| e.message.contains("timed out"))
        .collect();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.ends_with("(×3)"), "{errs:?}");
}

#[test]
fn ticks_redraw_once_a_second_not_more() {
    let mut app = app();
    app.take_dirty();
    app.update(Action::Tick { now_ms: NOW + 200 });
    assert!(!app.take_dirty());
    app.update(Action::Tick {
        now_ms: NOW + 1_000,
    });
    assert!(app.take_dirty());
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('z'),
        KeyModifiers::NONE,
    )));
    assert!(!app.take_dirty(), "an unbound key changes nothing");
}

// ---------------------------------------------------------------- rendering

#[test]
fn dashboard_120x40() {
    insta::assert_snapshot!(render(&app(), 120, 40));
}

#[test]
fn dashboard_80x24() {
    let text = render(&app(), 80, 24);
    // The symbols stay readable when the panes collapse.
    for s in ["BTC/USD", "ETH/USD", "SOL/USD", "bullish", "accumulation"] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
    insta::assert_snapshot!(text);
}

/// Trading through Alpaca: the header has the broker's account instead of the ledger's
/// equity; each position says who holds its stops; a holding the program did not open is an
/// `external` row, after the program's own.
#[test]
fn a_real_brokers_account_stops_and_external_positions_120x40() {
    let mut settings = settings(false, true);
    settings.broker = Some("alpaca".into());
    let mut app = App::new(settings, NOW).with_risk(risk());
    let mut snap = snapshot();
    snap.positions[0].exits_held_by = autotrade_tui::domain::lifecycle::ExitsHeldBy::Broker;
    snap.broker = Some(autotrade_tui::broker::BrokerView {
        broker: "alpaca".into(),
        at_ms: NOW - 5 * SEC,
        account: Some(autotrade_tui::broker::Account {
            equity: 100_234.56,
            cash: 80_000.0,
            buying_power: 160_469.12,
            blocked: None,
        }),
        external: vec![autotrade_tui::broker::Holding {
            symbol: "ETH/USD".into(),
            side: Side::Buy,
            quantity: 3.0,
            avg_entry_price: 2_400.0,
        }],
        error: None,
        error_since_ms: None,
    });
    app.update(Action::Snapshot(Box::new(snap.clone())));
    let text = render(&app, 120, 40);
    assert!(
        text.contains("alpaca equity 100,234.56  buying power 160,469.12"),
        "{text}"
    );
    assert!(text.contains("Stops"), "{text}");
    assert!(text.contains("external"), "{text}");
    insta::assert_snapshot!(text);
    // The broker does not answer: the header says so, with the account as last seen.
    let mut down = snap;
    if let Some(b) = down.broker.as_mut() {
        b.error = Some("the broker is unreachable: timed out".into());
        b.error_since_ms = Some(NOW - 30 * SEC);
    }
    app.update(Action::Snapshot(Box::new(down)));
    let text = render(&app, 120, 40);
    assert!(text.contains("ALPACA DOWN"), "{text}");
    assert!(text.contains("alpaca equity 100,234.56"), "{text}");
}

#[test]
fn positions_focused_80x24() {
    let mut app = app();
    app.update(key(KeyCode::Tab));
    insta::assert_snapshot!(render(&app, 80, 24));
}

/// Two trailing stops: SOL/USD 1 % behind its best 152.400 (the stop moved from 147 to
/// 150.876), BTC/USD 250 behind 45,120.50 (44,870.50).
fn trailing_app() -> App {
    let mut app = app();
    let mut snap = snapshot();
    let sol = &mut snap.positions[0];
    sol.trail = Some(autotrade_tui::domain::trail::Trail::Percent(1.0));
    sol.best_price = Some(152.4);
    sol.stop_loss = 150.876;
    let mut btc = position(2, "BTC/USD", Side::Buy, 0.044_444_44, 45_000.0, 600);
    btc.trail = Some(autotrade_tui::domain::trail::Trail::Amount(250.0));
    btc.best_price = Some(45_120.5);
    btc.stop_loss = 44_870.5;
    snap.positions.push(btc);
    app.update(Action::Snapshot(Box::new(snap)));
    app.update(key(KeyCode::Tab));
    app
}

#[test]
fn trailing_stops_on_the_positions_pane_80x24() {
    let text = render(&trailing_app(), 80, 24);
    // Narrow: the stop prices go before the distance to them and the trail. SOL/USD's stop
    // is 1.524 under 152.400 (1.00 %), BTC/USD's 250 under 45,120.50 (0.55 %).
    assert!(text.contains("to SL Trail"), "{text}");
    assert!(text.contains("1.00%    1%"), "{text}");
    assert!(text.contains("0.55%   250"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn trailing_stops_on_the_positions_pane_120x40() {
    let text = render(&trailing_app(), 120, 40);
    assert!(text.contains("150.876    1%"), "{text}");
    assert!(text.contains("44,870.50   250"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn loading_before_the_first_snapshot_80x24() {
    let app = App::new(settings(false, true), NOW);
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn loading_before_the_first_snapshot_120x40() {
    let app = App::new(settings(false, true), NOW);
    insta::assert_snapshot!(render(&app, 120, 40));
}

#[test]
fn help_80x24() {
    let mut app = app();
    app.update(ch('?'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn help_120x40() {
    let mut app = app();
    app.update(ch('?'));
    insta::assert_snapshot!(render(&app, 120, 40));
}

#[test]
fn kill_popup_80x24() {
    let mut app = app();
    app.update(ch('K'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn kill_popup_120x40() {
    let mut app = app();
    app.update(ch('K'));
    insta::assert_snapshot!(render(&app, 120, 40));
}

/// LIVE, the kill switch on, the ML engine down and a symbol that timed out.
fn troubled() -> App {
    let mut app = app_with(true, true);
    let mut s = snapshot();
    s.state.enabled = false;
    s.state.kill_switch = true;
    s.pending.clear();
    s.events.insert(
        0,
        event(
            4,
            5,
            "warn",
            "KILL SWITCH: auto-trading disabled, 2 pending decision(s) cancelled",
        ),
    );
    app.update(Action::Snapshot(Box::new(s)));
    let mut failed = view("BTC/USD", Direction::Bullish, Phase::Accumulation, 1.0);
    failed.price = None;
    failed.signal = Err("GET /api/v1/signals/BTC%2FUSD timed out after 2s".into());
    failed.phase = Err("GET /api/v1/amd/phase/BTC%2FUSD timed out after 2s".into());
    app.update(Action::Engine(EngineEvent::Symbol(Box::new(failed))));
    app.update(Action::Engine(EngineEvent::Health(Health::Unreachable {
        message: "connection refused".into(),
        failures: 3,
    })));
    app.update(Action::Engine(EngineEvent::CycleStarted));
    app
}

#[test]
fn live_killed_unreachable_120x40() {
    let text = render(&troubled(), 120, 40);
    assert!(text.contains("LIVE"));
    assert!(text.contains("ML ENGINE UNREACHABLE"));
    assert!(text.contains("KILL SWITCH"));
    insta::assert_snapshot!(text);
}

#[test]
fn live_killed_unreachable_80x24() {
    let text = render(&troubled(), 80, 24);
    assert!(text.contains("ML ENGINE UNREACHABLE"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn footer_hints_come_from_the_key_table_and_help_and_quit_always_fit() {
    use autotrade_tui::keymap::{self, Mode};
    let wide = ui::footer::hints(Mode::Normal, 200);
    let table: Vec<_> = keymap::NORMAL.iter().filter_map(|b| b.footer).collect();
    assert_eq!(wide, table);
    let narrow = ui::footer::hints(Mode::Normal, 60);
    assert!(narrow.contains(&("?", "help")) && narrow.contains(&("q", "quit")));
    assert!(narrow.len() < table.len());
    // The help screen lists every binding of the table.
    let help = render(
        &{
            let mut a = app();
            a.update(ch('?'));
            a
        },
        120,
        40,
    );
    for b in keymap::NORMAL {
        // The keys that move in a list share one line, Shift-Tab shares Tab's, the two kill
        // switches share one, and Ctrl-C is the help's last line.
        use keymap::Command as C;
        let shared = ui::help::MOVES.contains(&b.command)
            || matches!(
                b.command,
                C::SwitchFocusBack | C::KillSwitch | C::Flatten | C::QuitNow
            );
        assert!(help.contains(b.help) || shared, "help lacks {:?}", b.help);
        assert!(
            help.contains(&keymap::keys_label(b)),
            "{}",
            keymap::keys_label(b)
        );
    }
    assert!(
        help.contains("K, F            kill switch: K pauses entries, F also closes positions")
    );
    assert!(help.contains("Ctrl-C: quit, from anywhere"));
    assert!(help.contains("move in the focused pane: a row, a page, to either end"));
}

#[test]
fn tiny_terminals_draw_without_panicking() {
    let mut with_popup = app();
    with_popup.update(ch('K'));
    let mut with_help = app();
    with_help.update(ch('?'));
    let mut with_trade_form = free_app();
    with_trade_form.update(ch('t'));
    type_text(&mut with_trade_form, "\t\t0.05");
    let mut with_size_form = app();
    with_size_form.update(ch('s'));
    type_text(&mut with_size_form, "0.5");
    let mut with_history = app();
    with_history.update(ch('h'));
    with_history.update(loaded(history("")));
    let mut searching_history = with_history.clone();
    searching_history.update(ch('/'));
    type_text(&mut searching_history, "eth");
    let mut filtering = many(40, 30);
    filtering.update(ch('/'));
    type_text(&mut filtering, "s1");
    let mut on_events = many(3, 30);
    focus(&mut on_events, Focus::Events);
    on_events.update(ch('G'));
    for a in [
        app(),
        with_popup,
        with_help,
        troubled(),
        with_trade_form,
        with_size_form,
        with_history,
        searching_history,
        filtering,
        on_events,
    ] {
        // From one cell to wide, on both sides of each layout threshold.
        for w in [1, 10, 20, 30, 40, 50, 60, 79, 80, 139, 140] {
            for h in [1, 3, 5, 8, 12, 16, 23, 24, 31, 32, 40] {
                render(&a, w, h);
            }
        }
    }
}

// ---------------------------------------------------------------- colour

#[test]
fn no_color_means_no_colour_at_all() {
    for app in [
        app_with(true, false),
        {
            let mut a = troubled();
            a.settings.color = false;
            a.update(ch('K'));
            a
        },
        {
            let mut a = free_app();
            a.settings.color = false;
            a.update(ch('t'));
            type_text(&mut a, "\t\t0.05");
            a
        },
    ] {
        let buf = render_buffer(&app, 120, 40);
        for cell in buf.content() {
            assert_eq!(cell.fg, Color::Reset, "{cell:?}");
            assert_eq!(cell.bg, Color::Reset, "{cell:?}");
        }
    }
}

#[test]
fn live_is_red_and_directions_are_coloured() {
    let buf = render_buffer(&app_with(true, true), 120, 40);
    let find = |needle: &str| -> (u16, u16) {
        for y in 0..40 {
            let line: String = (0..120).map(|x| buf[(x, y)].symbol().to_string()).collect();
            if let Some(i) = line.find(needle) {
                // Column index in cells (the line is ASCII up to the needle on these rows).
                let x = line[..i].chars().count() as u16;
                return (x, y);
            }
        }
        panic!("{needle} not on screen");
    };
    let (x, y) = find("LIVE");
    assert_eq!(buf[(x, y)].bg, Color::Red);
    let (x, y) = find("bullish");
    assert_eq!(buf[(x, y)].fg, Color::Green);
    let (x, y) = find("bearish");
    assert_eq!(buf[(x, y)].fg, Color::Red);
}

// ---------------------------------------------------------------- manual trades: t, s, c

/// The fixture with nothing pending: BTC/USD and ETH/USD are free to trade, SOL/USD has a
/// position.
fn free_app() -> App {
    let mut app = app();
    let mut s = snapshot();
    s.pending.clear();
    app.update(Action::Snapshot(Box::new(s)));
    app
}

/// Keys as a trader types them: `\t` is Tab, `\x08` Backspace, `\n` Enter; the rest characters.
fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        let k = match c {
            '\t' => key(KeyCode::Tab),
            '\x08' => key(KeyCode::Backspace),
            '\n' => key(KeyCode::Enter),
            c => ch(c),
        };
        effects.extend(app.update(k));
    }
    effects
}

fn trade_form(app: &App) -> &autotrade_tui::form::TradeForm {
    match &app.form {
        Some(Form::Trade(f)) => f,
        other => panic!("no trade form: {other:?}"),
    }
}

fn size_form(app: &App) -> &autotrade_tui::form::SizeForm {
    match &app.form {
        Some(Form::Size(f)) => f,
        other => panic!("no size form: {other:?}"),
    }
}

/// BTC/USD as the engine saw it in the fixture: price 45,120.50, TP ×1.05, SL ×0.98.
const BTC_PRICE: f64 = 45_120.5;

#[test]
fn t_opens_the_form_on_a_free_symbol_with_levels_and_size_from_the_rules() {
    let mut app = free_app();
    assert!(app.update(ch('t')).is_empty());
    let f = trade_form(&app);
    assert_eq!(f.symbol(), "BTC/USD", "the first symbol free to trade");
    assert_eq!(f.side, Side::Buy, "follows the bullish signal");
    assert_eq!(f.field, TradeField::Symbol);
    assert_eq!(f.known.price, Some(BTC_PRICE));
    assert_eq!(f.known.blocked, None);
    let d = f.preview.as_ref().expect("a valid preview");
    let (tp, sl) = (BTC_PRICE * 1.05, BTC_PRICE * 0.98);
    assert_eq!(d.entry_price, Some(BTC_PRICE));
    assert_eq!((d.take_profit, d.stop_loss), (Some(tp), Some(sl)));
    // 1.5 % of 10,000 over a 902.41 stop is 0.166: capped at 20 % of the account.
    let cap = rules::max_quantity(&risk(), BTC_PRICE);
    assert_eq!(d.position_size, cap);
    assert_eq!(
        d.risk_reward,
        Some(rules::risk_reward(cap, BTC_PRICE, tp, sl))
    );
    assert!(d.reasoning.starts_with("manual trade"), "{}", d.reasoning);
}

#[test]
fn the_form_starts_on_the_first_free_symbol_and_the_side_follows_its_signal() {
    // BTC pending, SOL with a position: ETH/USD is the free one, and its signal is bearish.
    let mut app = app();
    let mut s = snapshot();
    s.pending.retain(|d| d.decision.symbol == "BTC/USD");
    app.update(Action::Snapshot(Box::new(s)));
    app.update(ch('t'));
    let f = trade_form(&app);
    assert_eq!(f.symbol(), "ETH/USD");
    assert_eq!(f.side, Side::Sell);
    // Everything taken: the first symbol, with the gate that will refuse it shown.
    let mut busy = self::app();
    busy.update(ch('t'));
    let f = trade_form(&busy);
    assert_eq!(f.symbol(), "BTC/USD");
    assert_eq!(
        f.known.blocked.as_deref(),
        Some("BTC/USD already has a pending decision")
    );
}

#[test]
fn typing_a_size_updates_the_risk_reward_live_and_enter_sends_the_order() {
    let mut app = free_app();
    app.update(ch('t'));
    // Tab twice to the size; letters are not numbers and are ignored.
    assert!(type_text(&mut app, "\t\t0.0x2").is_empty());
    let f = trade_form(&app);
    assert_eq!(f.field, TradeField::Size);
    assert_eq!(f.size.text, "0.02");
    let d = f.preview.as_ref().unwrap();
    assert_eq!(d.position_size, 0.02);
    let rr = d.risk_reward.unwrap();
    assert_eq!(rr.risk_amount, 18.05, "0.02 × 902.41");
    assert_eq!(rr.reward_amount, 45.12, "0.02 × 2256.03");
    assert_eq!(rr.risk_reward_ratio, 2.5);
    // A new price arrives while the form is open: the preview follows it.
    let mut s = snapshot();
    s.pending.clear();
    s.prices.get_mut("BTC/USD").unwrap().price = 45_500.0;
    app.update(Action::Snapshot(Box::new(s)));
    let d = trade_form(&app).preview.as_ref().unwrap();
    assert_eq!(d.entry_price, Some(45_500.0));
    assert_eq!(
        d.risk_reward.unwrap().risk_amount,
        rules::round_dp(0.02 * (45_500.0 - BTC_PRICE * 0.98), 2)
    );

    let effects = type_text(&mut app, "\n");
    assert_eq!(
        effects,
        vec![Effect::Trade {
            order: ManualOrder {
                symbol: "BTC/USD".into(),
                side: Side::Buy,
                size: Some(0.02),
                take_profit: None,
                stop_loss: None,
                trail: None,
            },
            label: "BUY BTC/USD".into(),
            allow: Default::default(),
        }]
    );
    assert!(app.form.is_none(), "Enter closes the form");
    assert!(
        app.event_lines()[0]
            .message
            .contains("placing manual trade BUY BTC/USD"),
        "{:?}",
        app.event_lines()[0]
    );
}

#[test]
fn tp_sl_and_side_typed_in_the_form_are_what_enter_sends() {
    let mut app = free_app();
    app.update(ch('t'));
    // Symbol → ETH/USD; side → SELL by hand; TP 2400, SL 2550.
    app.update(key(KeyCode::Right));
    assert_eq!(trade_form(&app).symbol(), "ETH/USD");
    assert_eq!(trade_form(&app).side, Side::Sell, "ETH is bearish");
    app.update(key(KeyCode::Tab));
    app.update(ch('b'));
    assert_eq!(trade_form(&app).side, Side::Buy);
    app.update(ch(' '));
    assert_eq!(trade_form(&app).side, Side::Sell);
    assert!(trade_form(&app).side_chosen);
    type_text(&mut app, "\t\t2400\t2550");
    let f = trade_form(&app);
    let d = f.preview.as_ref().unwrap();
    assert_eq!((d.take_profit, d.stop_loss), (Some(2400.0), Some(2550.0)));
    // Shift-Tab goes back; the SL field keeps its text.
    app.update(Action::Key(KeyEvent::new(
        KeyCode::BackTab,
        KeyModifiers::SHIFT,
    )));
    assert_eq!(trade_form(&app).field, TradeField::TakeProfit);
    let effects = app.update(key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Trade { order, .. }]
            if order.symbol == "ETH/USD" && order.side == Side::Sell
                && order.take_profit == Some(2400.0) && order.stop_loss == Some(2550.0)
                && order.size.is_none()),
        "{effects:?}"
    );
}

#[test]
fn validation_messages_say_what_is_wrong_and_enter_does_nothing() {
    let mut app = free_app();
    app.update(ch('t'));
    // Over the cap: the message names the cap.
    type_text(&mut app, "\t\t0.05");
    let cap = rules::fmt_num(rules::max_quantity(&risk(), BTC_PRICE));
    let e = trade_form(&app).preview.clone().unwrap_err();
    assert!(e.contains(&format!("over the cap of {cap}")), "{e}");
    assert!(e.ends_with("; Enter asks to take it on purpose"), "{e}");
    assert!(render(&app, 120, 40).contains(&format!("over the cap of {cap}")));
    // Enter asks a second, explicit question with the figure in red; `n` leaves the form open.
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    let popup = app.popup.clone().expect("the override question");
    assert!(
        popup
            .alert
            .as_deref()
            .unwrap()
            .contains(&format!("over the cap of {cap}"))
    );
    app.update(ch('n'));
    assert!(app.popup.is_none());
    assert!(app.form.is_some(), "the form stays open");

    // Backspace to 0.0: not a number > 0.
    type_text(&mut app, "\x08");
    assert!(
        trade_form(&app)
            .preview
            .clone()
            .unwrap_err()
            .contains("size 0.0 is not a number > 0")
    );
    // Ctrl-U clears the field: the rules size it again.
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    assert!(trade_form(&app).preview.is_ok());

    // A take-profit below the entry of a BUY.
    type_text(&mut app, "\t44000");
    let e = trade_form(&app).preview.clone().unwrap_err();
    assert!(e.contains("BUY needs take_profit > entry_price"), "{e}");
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    // Fixed; then a stop-loss above it.
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    type_text(&mut app, "\t46000");
    let e = trade_form(&app).preview.clone().unwrap_err();
    assert!(e.contains("BUY needs stop_loss < entry_price"), "{e}");

    // SELL with the bullish signal's levels: wrong side, and the form says how to override.
    let mut sell = free_app();
    type_text(&mut sell, "t\ts");
    let e = trade_form(&sell).preview.clone().unwrap_err();
    assert!(e.contains("SELL needs stop_loss > entry_price"), "{e}");
    assert!(e.contains("type TP/SL to override"), "{e}");
}

#[test]
fn no_price_is_a_validation_message() {
    // Before any engine cycle and with no stored price, nothing can be sized.
    let mut app = App::new(settings(false, true), NOW).with_risk(risk());
    let mut s = snapshot();
    s.pending.clear();
    s.prices.clear();
    app.update(Action::Snapshot(Box::new(s)));
    app.update(ch('t'));
    let e = trade_form(&app).preview.clone().unwrap_err();
    assert!(e.contains("no price available for BTC/USD"), "{e}");
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    let text = render(&app, 80, 24);
    assert!(text.contains("no price available"), "{text}");
}

#[test]
fn keys_in_the_form_are_typed_not_commands_and_esc_cancels() {
    let mut app = free_app();
    app.update(ch('t'));
    for c in ['q', 'y', 'n', 'c', 'K', 'e', 'r', '?', 'j'] {
        assert!(app.update(ch(c)).is_empty(), "{c}");
    }
    assert!(!app.should_quit());
    assert!(app.popup.is_none() && !app.show_help);
    assert!(app.update(key(KeyCode::Esc)).is_empty());
    assert!(app.form.is_none());
    // Ctrl-C still quits from the form.
    app.update(ch('t'));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.should_quit());
}

#[test]
fn s_resizes_the_selected_pending_decision_within_the_cap() {
    let mut app = app();
    app.update(ch('j'));
    assert!(app.update(ch('s')).is_empty());
    let f = size_form(&app);
    assert_eq!(f.log_id, BTC_ID);
    assert_eq!(f.cap, Some(0.04444444));
    assert!(f.preview.is_err(), "nothing typed yet");
    type_text(&mut app, "0.05");
    let e = size_form(&app).preview.clone().unwrap_err();
    assert!(e.contains("over the cap of 0.04444444"), "{e}");
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    type_text(&mut app, "\x082");
    assert_eq!(size_form(&app).size.text, "0.02");
    // Entry 45000, SL 44100, TP 47250: risk 0.02 × 900, reward 0.02 × 2250.
    let rr = size_form(&app)
        .preview
        .as_ref()
        .unwrap()
        .risk_reward
        .unwrap();
    assert_eq!((rr.risk_amount, rr.reward_amount), (18.0, 45.0));
    let effects = app.update(key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Resize { log_id, size, .. }]
            if log_id == BTC_ID && *size == 0.02),
        "{effects:?}"
    );
    assert!(app.form.is_none());
}

#[test]
fn s_needs_the_pending_pane_and_the_form_closes_when_the_decision_goes() {
    let mut app = app();
    app.update(key(KeyCode::Tab));
    app.update(ch('s'));
    assert!(app.form.is_none());
    assert!(app.event_lines()[0].message.contains("Tab"));
    app.update(key(KeyCode::BackTab));
    app.update(ch('s'));
    assert_eq!(size_form(&app).log_id, ETH_ID);
    // Confirmed from the command line meanwhile: the form goes, with a word why.
    let mut s = snapshot();
    s.pending.retain(|d| d.log_id != ETH_ID);
    app.update(Action::Snapshot(Box::new(s)));
    assert!(app.form.is_none());
    assert!(
        app.event_lines()[0]
            .message
            .contains(&format!("{ETH_ID} is no longer pending"))
    );
}

#[test]
fn c_asks_before_closing_the_selected_position_and_the_popup_holds_it() {
    let mut app = app();
    assert!(app.update(ch('c')).is_empty());
    let popup = app.popup.clone().expect("a y/n question");
    assert!(
        popup.question.contains(
            "Close BUY 13.15789473 SOL/USD at the latest price (now 152.400, P&L +31.58)"
        ),
        "{}",
        popup.question
    );
    assert_eq!(
        popup.on_yes,
        Effect::ClosePosition {
            position_id: 1,
            symbol: "SOL/USD".into(),
            label: "BUY 13.15789473 SOL/USD".into(),
        }
    );
    // Enter does not answer it; n dismisses it; y closes.
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    assert!(app.update(ch('n')).is_empty());
    assert!(app.popup.is_none());
    app.update(ch('c'));
    assert_eq!(app.update(ch('y')), vec![popup.on_yes]);
    // Nothing to close: a word, no question.
    let mut s = snapshot();
    s.positions.clear();
    app.update(Action::Snapshot(Box::new(s)));
    app.update(ch('c'));
    assert!(app.popup.is_none());
    assert!(app.event_lines()[0].message.contains("no open position"));
}

#[test]
fn a_refusal_the_store_recorded_adds_no_second_line() {
    let mut app = app();
    let before = app.event_lines().len();
    app.update(Action::Done {
        what: "manual trade BUY BTC/USD".into(),
        outcome: Outcome::Recorded,
    });
    assert_eq!(app.event_lines().len(), before);
}

#[test]
fn footer_and_help_list_the_manual_trade_keys() {
    let text = render(&app(), 120, 40);
    for hint in ["t trade", "c close", "s size"] {
        assert!(text.contains(hint), "{hint} missing from the footer");
    }
    let mut a = free_app();
    a.update(ch('t'));
    let footer = render(&a, 80, 24);
    let last = footer.lines().last().unwrap();
    assert!(
        last.contains("Tab field") && last.contains("Enter create") && last.contains("Esc cancel"),
        "{last}"
    );
}

#[test]
fn trade_form_120x40() {
    let mut app = free_app();
    app.update(ch('t'));
    type_text(&mut app, "\t\t0.02");
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| ui::draw(f, &app)).unwrap();
    // The terminal's cursor sits after the typed size.
    let text = render(&app, 120, 40);
    let row = text
        .lines()
        .position(|l| l.contains("Size    [0.02"))
        .unwrap();
    let col = text
        .lines()
        .nth(row)
        .unwrap()
        .chars()
        .position(|c| c == '[')
        .unwrap()
        + 5;
    let _ = t.show_cursor();
    assert_eq!(
        t.get_cursor_position().unwrap(),
        ratatui::layout::Position::new(col as u16, row as u16)
    );
    insta::assert_snapshot!(text);
}

#[test]
fn trade_form_80x24() {
    let mut app = free_app();
    app.update(ch('t'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn trade_form_wrong_side_80x24() {
    let mut app = free_app();
    app.update(ch('t'));
    type_text(&mut app, "\t\t\t44000");
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn trade_form_blocked_120x40() {
    let mut app = app();
    app.update(ch('t'));
    type_text(&mut app, "\t\t0.05");
    insta::assert_snapshot!(render(&app, 120, 40));
}

#[test]
fn size_form_80x24() {
    let mut app = app();
    app.update(ch('j'));
    app.update(ch('s'));
    type_text(&mut app, "0.02");
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn size_form_over_the_cap_120x40() {
    let mut app = app();
    app.update(ch('j'));
    app.update(ch('s'));
    type_text(&mut app, "0.05");
    insta::assert_snapshot!(render(&app, 120, 40));
}

#[test]
fn close_popup_80x24() {
    let mut app = app();
    app.update(key(KeyCode::Tab));
    app.update(ch('c'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn close_popup_120x40() {
    let mut app = app();
    app.update(ch('c'));
    insta::assert_snapshot!(render(&app, 120, 40));
}

// ---------------------------------------------------------------- scrolling and the filter

/// A dashboard watching `n` symbols (`S00/USD`, `S01/USD`, …) with a price for each and
/// `events` stored events, nothing pending.
fn many(n: usize, events: usize) -> App {
    let symbols: Vec<String> = (0..n).map(|i| format!("S{i:02}/USD")).collect();
    let mut prices = std::collections::BTreeMap::new();
    for (i, s) in symbols.iter().enumerate() {
        prices.insert(
            s.clone(),
            PricePoint {
                price: 100.0 + i as f64,
                at_ms: NOW - 5 * SEC,
                bid: None,
                ask: None,
            },
        );
    }
    let mut app = App::new(
        Settings {
            symbols,
            ..settings(false, false)
        },
        NOW,
    )
    .with_risk(risk());
    app.update(Action::Snapshot(Box::new(Snapshot {
        taken_at_ms: NOW,
        state: RuntimeState {
            enabled: true,
            kill_switch: false,
            last_cycle_at_ms: Some(NOW - 5 * SEC),
            halt: None,
            marks: Default::default(),
        },
        pending: vec![],
        latest: vec![],
        positions: vec![],
        trends: Default::default(),
        prices,
        events: (0..events)
            .map(|i| {
                event(
                    i as i64 + 1,
                    i as i64 * 60,
                    "info",
                    &format!("event number {i}"),
                )
            })
            .collect(),
        equity: 10_000.0,
        realized_pnl: 0.0,
        unrealized_pnl: 0.0,
        broker: None,
    })));
    app
}

fn focus(app: &mut App, pane: Focus) {
    for _ in 0..4 {
        if app.focus == pane {
            return;
        }
        app.update(key(KeyCode::Tab));
    }
    panic!("Tab never reached {pane:?}");
}

#[test]
fn signals_scroll_by_line_page_and_to_either_end_and_say_where_they_are() {
    let mut app = many(40, 0);
    focus(&mut app, Focus::Signals);
    let screen = render(&app, 120, 40);
    assert!(screen.contains("Signals 1–9 of 40"), "{screen}");
    assert!(screen.contains("S00/USD") && !screen.contains("S09/USD"));

    app.update(key(KeyCode::PageDown));
    assert_eq!(app.signals_cursor, 10);
    let screen = render(&app, 120, 40);
    assert!(screen.contains("Signals 3–11 of 40"), "{screen}");
    assert!(screen.contains("S10/USD") && !screen.contains("S01/USD"));

    app.update(ch('G'));
    assert_eq!(app.signals_cursor, 39);
    let screen = render(&app, 120, 40);
    assert!(screen.contains("Signals 32–40 of 40"), "{screen}");
    assert!(screen.contains("S39/USD") && !screen.contains("S30/USD"));
    // Past the end stays at the end; End is G, Home is g.
    app.update(ch('j'));
    app.update(key(KeyCode::PageDown));
    assert_eq!(app.signals_cursor, 39);
    app.update(key(KeyCode::PageUp));
    assert_eq!(app.signals_cursor, 29);
    app.update(key(KeyCode::Up));
    assert_eq!(app.signals_cursor, 28);
    app.update(key(KeyCode::Home));
    assert_eq!(app.signals_cursor, 0);
    app.update(key(KeyCode::End));
    assert_eq!(app.signals_cursor, 39);
    app.update(ch('g'));
    let screen = render(&app, 120, 40);
    assert!(screen.contains("Signals 1–9 of 40"), "{screen}");
}

#[test]
fn slash_filters_the_signals_by_symbol_typed_in_any_case() {
    let mut app = many(40, 0);
    app.update(ch('/'));
    assert_eq!(app.focus, Focus::Signals, "the filter takes the focus");
    for c in "s1".chars() {
        app.update(ch(c));
    }
    assert_eq!(app.filter, "S1");
    let rows: Vec<String> = app.signal_rows().into_iter().map(|r| r.symbol).collect();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|s| s.starts_with("S1")), "{rows:?}");
    let screen = render(&app, 120, 40);
    assert!(screen.contains("Signals 1–9 of 10 /S1▏"), "{screen}");
    assert!(!screen.contains("S20/USD"));
    // Keys typed while filtering are the filter's, not commands: `q` does not quit.
    app.update(ch('q'));
    assert!(!app.should_quit());
    assert_eq!(app.filter, "S1Q");
    assert!(render(&app, 120, 40).contains("no symbol contains \"S1Q\""));
    app.update(key(KeyCode::Backspace));
    // Enter keeps the filter and gives the keys back; the cursor moves within what shows.
    app.update(key(KeyCode::Enter));
    assert!(!app.filtering);
    app.update(ch('G'));
    assert_eq!(app.signals_cursor, 9);
    let screen = render(&app, 120, 40);
    assert!(screen.contains("Signals 2–10 of 10 /S1"), "{screen}");
    assert!(screen.contains("S19/USD"));
    // `/` again and Esc clears it: all 40 are back.
    app.update(ch('/'));
    app.update(key(KeyCode::Esc));
    assert_eq!(app.filter, "");
    assert_eq!(app.signal_rows().len(), 40);
}

#[test]
fn events_scroll_to_the_oldest_and_back() {
    let mut app = many(3, 30);
    focus(&mut app, Focus::Events);
    let screen = render(&app, 120, 40);
    assert!(screen.contains("event number 0"), "{screen}");
    assert!(!screen.contains("event number 29"));
    app.update(ch('G'));
    let screen = render(&app, 120, 40);
    assert!(screen.contains("event number 29"), "{screen}");
    assert!(!screen.contains("event number 0 "));
    let title = screen
        .lines()
        .find(|l| l.contains("Events (UTC)"))
        .unwrap()
        .to_string();
    assert!(title.contains("of 30"), "{title}");
    app.update(ch('g'));
    assert!(render(&app, 120, 40).contains("event number 0"));
}

#[test]
fn a_new_decision_takes_the_focus_from_an_empty_pane_only() {
    let mut app = many(3, 5);
    focus(&mut app, Focus::Positions);
    let mut s = app.snapshot.clone().unwrap();
    s.pending.push(actionable(
        BTC_ID,
        "S01/USD",
        Side::Buy,
        101.0,
        Status::Pending,
        1,
    ));
    app.update(Action::Snapshot(Box::new(s.clone())));
    assert_eq!(app.focus, Focus::Pending, "no positions: focus moves");
    // With the events focused (they are not empty), a new decision leaves the focus there.
    focus(&mut app, Focus::Events);
    s.pending.push(actionable(
        ETH_ID,
        "S02/USD",
        Side::Sell,
        102.0,
        Status::Pending,
        0,
    ));
    app.update(Action::Snapshot(Box::new(s)));
    assert_eq!(app.focus, Focus::Events);
}

// ---------------------------------------------------------------- the trade history view

fn closed(
    id: i64,
    symbol: &str,
    side: Side,
    qty: f64,
    entry: f64,
    exit: f64,
    age_s: i64,
) -> autotrade_tui::store::Position {
    let mut p = position(id, symbol, side, qty, entry, age_s + 3_600);
    let pnl = match side {
        Side::Buy => (exit - entry) * qty,
        Side::Sell => (entry - exit) * qty,
    };
    p.closed_at_ms = Some(NOW - age_s * SEC);
    p.exit_price = Some(exit);
    p.realized_pnl = Some((pnl * 100.0).round() / 100.0);
    p.close_reason = Some(if pnl >= 0.0 {
        "take_profit".into()
    } else {
        "stop_loss".into()
    });
    p
}

fn history(query: &str) -> autotrade_tui::app::History {
    let closed_all = vec![
        closed(7, "BTC/USD", Side::Buy, 0.04444444, 45_000.0, 47_250.0, 600),
        closed(6, "ETH/USD", Side::Sell, 0.8, 2_500.0, 2_550.0, 90_000),
        closed(
            5,
            "SHIB/USD",
            Side::Buy,
            41_631_973.5,
            0.000_012_01,
            0.000_012_61,
            200_000,
        ),
    ];
    let events_all: Vec<autotrade_tui::store::Event> = (0..30)
        .map(|i| {
            let sym = ["BTC/USD", "ETH/USD", "SHIB/USD"][i % 3];
            event(
                100 - i as i64,
                i as i64 * 3_600,
                "info",
                &format!("event {i} about {sym}"),
            )
        })
        .collect();
    let q = query.to_uppercase();
    let closed: Vec<_> = closed_all
        .into_iter()
        .filter(|p| p.symbol.contains(&q))
        .collect();
    let events: Vec<_> = events_all
        .into_iter()
        .filter(|e| e.message.to_uppercase().contains(&q))
        .collect();
    autotrade_tui::app::History {
        query: query.into(),
        closed_total: closed.len(),
        closed,
        events_total: events.len(),
        events,
    }
}

fn loaded(h: autotrade_tui::app::History) -> Action {
    Action::Done {
        what: "load the history".into(),
        outcome: Outcome::History(Box::new(h)),
    }
}

#[test]
fn h_opens_the_history_which_loads_off_the_ui_thread_and_q_closes_it() {
    let mut app = app();
    assert_eq!(
        app.update(ch('h')),
        vec![Effect::LoadHistory {
            query: String::new()
        }]
    );
    assert!(render(&app, 120, 40).contains("loading…"));
    app.update(loaded(history("")));
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("3 closed · realized P&L of those shown"),
        "{screen}"
    );
    insta::assert_snapshot!("history_120x40", screen);
    insta::assert_snapshot!("history_80x24", render(&app, 80, 24));
    // `q` closes the history, it does not quit.
    app.update(ch('q'));
    assert!(app.history.is_none());
    assert!(!app.should_quit());
}

#[test]
fn history_lists_scroll_and_tab_switches_between_them() {
    let mut app = app();
    app.update(ch('h'));
    app.update(loaded(history("")));
    app.update(ch('j'));
    let h = app.history.as_ref().unwrap();
    assert_eq!((h.closed_cursor, h.events_cursor), (1, 0));
    app.update(key(KeyCode::Tab));
    app.update(ch('G'));
    let h = app.history.as_ref().unwrap();
    assert_eq!((h.closed_cursor, h.events_cursor), (1, 29));
    let screen = render(&app, 120, 40);
    assert!(screen.contains("event 29 about"), "{screen}");
    assert!(screen.contains("of 30"), "{screen}");
    assert_eq!(
        app.focus,
        Focus::Pending,
        "the dashboard's focus is untouched"
    );
}

#[test]
fn slash_searches_the_history_and_an_older_answer_is_not_shown() {
    let mut app = app();
    app.update(ch('h'));
    app.update(loaded(history("")));
    app.update(ch('/'));
    for c in "shib".chars() {
        app.update(ch(c));
    }
    assert_eq!(app.history.as_ref().unwrap().query, "shib");
    assert!(render(&app, 120, 40).contains("search: shib▏"));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::LoadHistory {
            query: "shib".into()
        }]
    );
    // The answer to the earlier, empty search arrives late: it is not taken for this one.
    app.update(loaded(history("")));
    assert_eq!(
        app.history.as_ref().unwrap().data.as_ref().unwrap().query,
        ""
    );
    app.update(loaded(history("shib")));
    let screen = render(&app, 120, 40);
    assert!(screen.contains("1 closed"), "{screen}");
    assert!(
        screen.contains("SHIB/USD") && !screen.contains("ETH/USD  "),
        "{screen}"
    );
    // A new store event while it is open reloads the same search.
    let mut s = snapshot();
    s.events
        .insert(0, event(99, 0, "info", "closed BUY 1 SHIB/USD"));
    assert_eq!(
        app.update(Action::Snapshot(Box::new(s))),
        vec![Effect::LoadHistory {
            query: "shib".into()
        }]
    );
    // `/` then Esc clears the search and shows everything again.
    app.update(ch('/'));
    assert_eq!(
        app.update(key(KeyCode::Esc)),
        vec![Effect::LoadHistory {
            query: String::new()
        }]
    );
}

// ---------------------------------------------------------------- a live feed

#[test]
fn the_header_says_how_the_feed_gets_prices_and_a_stale_price_says_so() {
    use autotrade_tui::market::FeedState;
    let mut app = App::new(
        Settings {
            stale_after_ms: Some(30_000),
            broker: None,
            ..settings(false, false)
        },
        NOW,
    )
    .with_risk(risk());
    app.update(Action::Snapshot(Box::new(snapshot())));
    for (state, shown) in [
        (FeedState::Connecting, "COINBASE connecting…"),
        (FeedState::Streaming, "COINBASE streaming"),
        (
            FeedState::Polling {
                every: std::time::Duration::from_secs(2),
                why: "the stream was refused".into(),
            },
            "COINBASE polling every 2s",
        ),
        (
            FeedState::Down {
                why: "connection refused".into(),
            },
            "COINBASE DOWN",
        ),
    ] {
        app.update(Action::Engine(EngineEvent::Feed {
            provider: "coinbase",
            state,
        }));
        let screen = render(&app, 120, 40);
        assert!(screen.lines().next().unwrap().contains(shown), "{screen}");
    }
    // The fixture's prices are 40 s old, over the 30 s limit: every one is marked.
    let screen = render(&app, 120, 40);
    let btc = screen.lines().find(|l| l.contains("│BTC/USD")).unwrap();
    assert!(btc.contains("45,120.50 stale"), "{btc}");
    // Fresh again: no mark.
    app.update(Action::Tick {
        now_ms: NOW - 15 * SEC,
    });
    let mut s = snapshot();
    for p in s.prices.values_mut() {
        p.at_ms = NOW;
    }
    app.update(Action::Snapshot(Box::new(s)));
    assert!(!render(&app, 120, 40).contains("stale"));
}

// ---------------------------------------------------------------- scores, and what a number is of

/// `app()` with BTC's pending decision a manual BUY made against a bearish signal, by the
/// same rules `trade` uses; ETH's stays the rules' SELL (score 0.86). BTC is selected.
fn with_a_counter_signal_trade() -> App {
    use autotrade_tui::domain::MlSignal;
    use autotrade_tui::domain::manual::{MarketContext, manual_decision};
    let bearish = MlSignal {
        direction: Direction::Bearish,
        confidence: 0.9,
        entry_price: 45_000.0,
        take_profit: 42_750.0,
        stop_loss: 45_900.0,
        risk_reward_ratio: 2.5,
    };
    let market = MarketContext {
        price: Some(45_000.0),
        signal: Some(bearish.clone()),
        raw_signal: serde_json::to_value(&bearish).unwrap(),
        phase: Some(Phase::Distribution),
    };
    let order = ManualOrder {
        symbol: "BTC/USD".into(),
        side: Side::Buy,
        size: None,
        take_profit: Some(47_250.0),
        stop_loss: Some(44_100.0),
        trail: None,
    };
    let decision = manual_decision(
        &order,
        &market,
        &risk(),
        autotrade_tui::store::Origin::Manual,
    )
    .unwrap();
    assert_eq!(decision.confidence, 0.0);
    let mut s = snapshot();
    for log in s.pending.iter_mut().chain(s.latest.iter_mut()) {
        if log.log_id == BTC_ID {
            log.origin = autotrade_tui::store::Origin::Manual;
            log.decision = decision.clone();
        }
    }
    let mut app = app();
    app.update(Action::Snapshot(Box::new(s)));
    app.update(key(KeyCode::Down));
    assert_eq!(app.selected_pending_log().unwrap().log_id, BTC_ID);
    app
}

#[test]
fn a_counter_signal_trade_shows_its_mark_where_the_score_would_be() {
    let app = with_a_counter_signal_trade();
    let screen = render(&app, 120, 40);
    let header = screen.lines().find(|l| l.contains("Act  Symbol")).unwrap();
    assert!(
        header.contains(" Score ") && !header.contains("Conf"),
        "{header}"
    );
    let btc = screen.lines().find(|l| l.contains("BUY  BTC/USD")).unwrap();
    assert!(btc.contains("counter-signal"), "{btc}");
    assert!(
        btc.contains("BUY  BTC/USD counter-signal 45,000.00") && !btc.contains(" 0.90 "),
        "no score borrowed: {btc}"
    );
    let eth = screen.lines().find(|l| l.contains("SELL ETH/USD")).unwrap();
    assert!(
        eth.contains(" 0.86 "),
        "the rules' decision keeps its score: {eth}"
    );
    // The last line tells why, the mark first.
    let why = screen.lines().find(|l| l.contains("┃why ")).unwrap();
    assert!(
        why.contains("why manual · counter-signal · risk 40.00 reward 100.00 · manual trade against a bearish signal"),
        "{why}"
    );

    // At 80 columns the mark is too wide for a score column: the column goes, the why line stays.
    let narrow = render(&app, 80, 24);
    assert!(
        narrow.contains("┃why manual · counter-signal · risk 40.00 reward 100.00"),
        "{narrow}"
    );
    assert!(narrow.lines().all(|l| l.chars().count() <= 80));
}

#[test]
fn the_detail_box_says_what_each_risk_number_is_of() {
    let mut app = app();
    app.update(key(KeyCode::Down));
    // BTC: 0.04444444 at 45,000, SL 44,100 (2 % away), TP 47,250 (5 %), account 10,000.
    let screen = render(&app, 160, 40);
    for line in [
        "│BUY BTC/USD · score 0.86                │",
        "│decision_1f3a9c0b7d2e · auto · paper    │",
        "│R:R 2.50 amount of account from entry   │",
        "│risk      40.00      0.40% SL 2.00%     │",
        "│reward   100.00      1.00% TP 5.00%     │",
        "│size 0.04444444 · value 2,000.00        │",
    ] {
        assert!(
            screen.lines().any(|l| l.contains(line)),
            "{line:?} missing:\n{screen}"
        );
    }

    // A counter-signal trade: the mark, not a score.
    let app = with_a_counter_signal_trade();
    let screen = render(&app, 160, 40);
    assert!(
        screen.contains("│BUY BTC/USD · counter-signal "),
        "{screen}"
    );
    assert!(
        screen.contains("│decision_1f3a9c0b7d2e · manual · paper  │"),
        "{screen}"
    );
}

#[test]
fn new_pending_events_say_score_or_the_mark() {
    let app = with_a_counter_signal_trade();
    let mut app2 = app.clone();
    let mut s = snapshot();
    s.pending.insert(
        0,
        actionable(
            "decision_bbbbbbbbbbbb",
            "ADA/USD",
            Side::Buy,
            0.5,
            Status::Pending,
            0,
        ),
    );
    app2.update(Action::Snapshot(Box::new(s)));
    let lines = app2.event_lines();
    assert!(
        lines.iter().any(
            |e| e.message == "new pending BUY 4,000 ADA/USD score 0.86 (decision_bbbbbbbbbbbb)"
        ),
        "{lines:?}"
    );
    // The counter-signal trade arrived as new in `with_a_counter_signal_trade` (it replaced
    // BTC's decision under the same id, so it is not new): a fresh one says its mark.
    let mut s = snapshot();
    let mut counter = app
        .pending()
        .iter()
        .find(|l| l.log_id == BTC_ID)
        .unwrap()
        .clone();
    counter.log_id = "decision_cccccccccccc".into();
    s.pending.insert(0, counter);
    let mut app3 = app.clone();
    app3.update(Action::Snapshot(Box::new(s)));
    assert!(
        app3.event_lines().iter().any(|e| e.message
            == "new pending BUY 0.04444444 BTC/USD counter-signal (decision_cccccccccccc)"),
        "{:?}",
        app3.event_lines()
    );
}

/// The dashboard on the simulated market (one candle every 1.5 s).
fn simulated_app() -> App {
    let mut app = App::new(
        Settings {
            simulated: true,
            seconds_per_candle: Some(1.5),
            ..settings(false, false)
        },
        NOW,
    )
    .with_risk(risk());
    app.update(Action::Snapshot(Box::new(snapshot())));
    for v in [
        view("BTC/USD", Direction::Bullish, Phase::Accumulation, 45_120.5),
        view("ETH/USD", Direction::Bearish, Phase::Distribution, 2_488.25),
        view("SOL/USD", Direction::Neutral, Phase::Manipulation, 152.4),
    ] {
        app.update(Action::Engine(EngineEvent::Symbol(Box::new(v))));
    }
    app
}

#[test]
fn on_the_simulated_market_the_header_names_its_speed_and_the_signal_is_the_analyzers() {
    let mut app = simulated_app();
    for (w, h) in [(80, 24), (120, 40)] {
        let screen = render(&app, w, h);
        let top = screen.lines().next().unwrap();
        assert!(
            top.contains("SIMULATED 2,400×  user default"),
            "{w}×{h}: {top}"
        );
        // (The rules' own reasoning, in the Why column, is theirs to word.)
        let words: String = screen.lines().take(4).collect();
        assert!(
            !words.contains("ML"),
            "no ML on the simulated market:\n{screen}"
        );
        let head = screen.lines().find(|l| l.contains("│Symbol")).unwrap();
        assert!(head.contains("Analyzer score"), "{head}");
    }
    // Narrower, the speed gives way before the user's name, and never half of it shows.
    let top = render(&app, 46, 24).lines().next().unwrap().to_string();
    assert!(
        top.contains("SIMULATED") && top.contains("user default"),
        "{top}"
    );
    assert!(!top.contains('×'), "{top}");

    // The help says what the speed means.
    app.update(ch('?'));
    let help = render(&app, 120, 40);
    assert!(
        help.contains("Simulated market: one 1-hour candle every 1.5 s = 2,400× real time"),
        "{help}"
    );
    app.update(ch('?'));

    // The trade form names the analyzer's signal and scores the trade it would make.
    let mut s = snapshot();
    s.pending.clear();
    app.update(Action::Snapshot(Box::new(s)));
    app.update(ch('t'));
    let form = render(&app, 80, 24);
    assert!(
        form.contains("analyzer signal: bullish, score 0.90"),
        "{form}"
    );
    assert!(
        form.contains("BUY 0.04432574 BTC/USD @ 45,120.50 · value 2,000.00 · score 0.90"),
        "{form}"
    );
    // Against the signal: a counter-signal trade, with its own levels.
    type_text(&mut app, "\t ");
    type_text(&mut app, "\t\t44000\t46000");
    let form = render(&app, 80, 24);
    assert!(
        form.contains("SELL 0.04432574 BTC/USD @ 45,120.50 · value 2,000.00 · counter-signal"),
        "{form}"
    );
    assert!(
        form.contains("risk 38.98 = 0.39% of account · SL 1.95% from entry"),
        "{form}"
    );
}

// ---------------------------------------------------------------- the analytics view

/// A report over known outcomes: the ML engine's 60 judged BUYs (scores 0.80 and 0.90, one in
/// three a take-profit of +2 R, the rest stop-losses; two cancelled, one expired, the rest
/// executed), and three closed trades.
fn report() -> autotrade_tui::analytics::report::Report {
    use autotrade_tui::analytics::report::{Inputs, build};
    use autotrade_tui::domain::Verdict;
    use autotrade_tui::domain::lifecycle::{Origin, OutcomeState};
    use autotrade_tui::domain::outcome::Levels;
    use autotrade_tui::store::{ClosedTrade, FollowedDecision, OutcomeRecord};
    let levels = Levels {
        side: Side::Buy,
        entry: 100.0,
        take_profit: 110.0,
        stop_loss: 95.0,
    };
    let followed: Vec<FollowedDecision> = (0..60)
        .map(|i| {
            let won = i % 3 == 0;
            let status = match i {
                57 | 58 => Status::Cancelled,
                59 => Status::Expired,
                _ => Status::Executed,
            };
            FollowedDecision {
                outcome: OutcomeRecord {
                    decision_id: format!("decision_{i:012x}"),
                    symbol: "BTC/USD".into(),
                    levels,
                    source: "ml_engine".into(),
                    score: if i % 2 == 0 { 0.8 } else { 0.9 },
                    started_at_ms: NOW - (60 - i) * 3_600 * SEC,
                    state: if won {
                        OutcomeState::TakeProfit
                    } else {
                        OutcomeState::StopLoss
                    },
                    last: None,
                    exit_price: Some(if won { 110.0 } else { 95.0 }),
                    resolved_at_ms: Some(NOW),
                    r_multiple: Some(if won { 2.0 } else { -1.0 }),
                },
                status,
                origin: Origin::Auto,
                action: Verdict::Buy,
                risk_amount: Some(50.0),
            }
        })
        .collect();
    let closed: Vec<ClosedTrade> = [(150.0, "BTC/USD"), (-50.0, "BTC/USD"), (-50.0, "ETH/USD")]
        .iter()
        .enumerate()
        .map(|(i, (pnl, sym))| ClosedTrade {
            decision_id: format!("decision_{i:012x}"),
            symbol: sym.to_string(),
            origin: if i == 2 { Origin::Manual } else { Origin::Auto },
            side: Side::Buy,
            quantity: 10.0,
            entry_price: 100.0,
            stop_loss: 95.0,
            realized_pnl: *pnl,
            closed_at_ms: NOW - (3 - i as i64) * 3_600 * SEC,
        })
        .collect();
    build(&Inputs {
        user_id: "default",
        since: None,
        account_size: 10_000.0,
        outcome_horizon_hours: 24.0,
        followed: &followed,
        closed: &closed,
    })
}

#[test]
fn a_opens_the_analytics_which_load_off_the_ui_thread_scroll_and_close() {
    let mut app = app();
    assert_eq!(app.update(ch('a')), vec![Effect::LoadReport]);
    assert!(render(&app, 120, 40).contains("loading…"));
    app.update(Action::Done {
        what: "load the analytics".into(),
        outcome: Outcome::Report(Box::new(report())),
    });
    let screen = render(&app, 120, 40);
    // 20 of the 60 won +2 R, 40 lost 1 R: a win rate of a third is the break-even of 2:1.
    assert!(
        screen.contains("win rate 33.3 % (95 %: 22.7–45.9 %)"),
        "{screen}"
    );
    assert!(screen.contains("break-even 33.3 %"), "{screen}");
    insta::assert_snapshot!("analytics_120x40", screen);
    let small = render(&app, 80, 24);
    assert!(small.contains("Analytics: lines 1–"), "{small}");
    insta::assert_snapshot!("analytics_80x24", small);
    // Scrolled to the end, the reliability table is on screen; `a` closes, nothing quits.
    app.update(key(KeyCode::End));
    let end = render(&app, 80, 24);
    assert!(end.contains("calibration map"), "{end}");
    app.update(ch('a'));
    assert!(app.analytics.is_none());
    assert!(!app.should_quit());
}

#[test]
fn q_with_positions_and_pending_says_what_keeps_running_and_what_does_not() {
    let mut app = app();
    assert!(app.update(ch('q')).is_empty());
    assert!(!app.should_quit());
    let q = app.popup.clone().expect("a question").question;
    assert!(
        q.contains("Quitting stops the engine this dashboard runs"),
        "{q}"
    );
    assert!(
        q.contains("1 open position(s) (SOL/USD) stay open, and nothing watches their take-profit and stop-loss"),
        "{q}"
    );
    assert!(q.contains("2 pending decision(s) stay pending"), "{q}");
    assert!(q.contains("expire 10 min after they were made"), "{q}");
    // `n` stays; `y` quits.
    app.update(ch('n'));
    assert!(!app.should_quit());
    app.update(ch('q'));
    app.update(ch('y'));
    assert!(app.should_quit());
    // Attached to an engine elsewhere: it keeps running, and says whose.
    let mut attached = self::app();
    attached.attached = Some(autotrade_tui::app::Attached {
        pid: Some(4242),
        since_ms: None,
        running: true,
        remote: None,
    });
    attached.update(ch('q'));
    let q = attached.popup.clone().expect("a question").question;
    assert!(q.contains("The engine of pid 4242 keeps running"), "{q}");
    assert!(q.contains("Only this view closes"), "{q}");
}

#[test]
fn flatten_asks_naming_each_position_and_how_it_closes() {
    let mut app = app();
    assert!(app.update(ch('F')).is_empty());
    let popup = app.popup.clone().expect("a question");
    assert_eq!(popup.on_yes, Effect::Flatten);
    assert!(
        popup.question.contains(
            "Disable auto-trading, cancel 2 pending decision(s) and close 1 open position(s) (SOL/USD) at the latest price?"
        ),
        "{}",
        popup.question
    );
    assert_eq!(app.update(ch('y')), vec![Effect::Flatten]);
    // The kill switch alone names what it leaves open.
    let mut app = self::app();
    app.update(ch('K'));
    let q = app.popup.clone().expect("a question").question;
    assert!(
        q.contains("1 open position(s) stay open with their exits (`F` flattens)"),
        "{q}"
    );
}

#[test]
fn a_loss_halt_shows_in_the_header_and_r_resets_it_after_asking() {
    let mut app = app();
    assert!(app.update(ch('R')).is_empty());
    assert!(app.popup.is_none(), "no halt, no question");
    let mut s = snapshot();
    s.state.halt = Some(autotrade_tui::domain::halt::Halt {
        at_ms: NOW,
        reason: "daily loss 300.00 = 3.00% of 10,000.00 at the day's start ≥ limit 3%".into(),
    });
    app.update(Action::Snapshot(Box::new(s)));
    let screen = render(&app, 120, 40);
    let header: Vec<&str> = screen.lines().take(2).collect();
    assert!(header[0].contains("HALTED"), "{screen}");
    assert!(
        header[1].contains("daily loss 300.00 = 3.00% of 10,000.00 at the day's start ≥ limit 3%"),
        "{screen}"
    );
    // At 50 columns the figure that tripped it stays whole.
    let narrow = render(&app, 50, 12);
    assert!(
        narrow.lines().nth(1).unwrap().contains("daily loss 300.00"),
        "{narrow}"
    );
    app.update(ch('R'));
    let popup = app.popup.clone().expect("a question");
    assert_eq!(popup.on_yes, Effect::ResetHalt);
    assert!(
        popup
            .question
            .contains("start the limits again from today's equity")
    );
    assert_eq!(app.update(ch('y')), vec![Effect::ResetHalt]);
}

#[test]
fn the_header_shows_how_much_of_each_loss_limit_is_used() {
    let mut app = App::new(
        Settings {
            daily_loss_limit_percent: 3.0,
            max_drawdown_percent: 10.0,
            ..settings(false, false)
        },
        NOW,
    );
    let mut s = snapshot();
    // The day started at 10,100 and the peak was 10,200; equity now 10,043.58.
    s.state.marks = autotrade_tui::domain::halt::EquityMarks {
        peak: Some(10_200.0),
        day_start_ms: Some(NOW - NOW.rem_euclid(86_400_000)),
        day_start_equity: Some(10_100.0),
    };
    let equity = s.equity;
    app.update(Action::Snapshot(Box::new(s)));
    let screen = render(&app, 120, 40);
    let line = screen.lines().nth(1).unwrap();
    let day = (10_100.0 - equity) / 10_100.0 * 100.0;
    let dd = (10_200.0 - equity) / 10_200.0 * 100.0;
    assert!(
        line.contains(&format!("day loss {day:.2}% of 3%")),
        "{line}"
    );
    assert!(
        line.contains(&format!("drawdown {dd:.2}% of 10%")),
        "{line}"
    );
}

#[test]
fn a_trade_over_a_limit_is_taken_only_through_a_second_question_showing_the_figure_in_red() {
    let mut app = free_app();
    app.update(ch('t'));
    // 0.05 BTC at 45,120.50 is worth 2,256.03 = 22.56% of the account, over the 20% cap.
    type_text(&mut app, "\t\t0.05");
    app.update(key(KeyCode::Enter));
    let popup = app.popup.clone().expect("the override question");
    assert_eq!(popup.title, "Over a limit");
    assert!(
        popup
            .question
            .starts_with("Take BUY BTC/USD over this limit on purpose?"),
        "{}",
        popup.question
    );
    let screen = render_buffer(&app, 80, 24);
    // The figure is drawn in red (bold) in the popup.
    let text = render(&app, 80, 24);
    let (row, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("size 0.05 is over the cap"))
        .expect("the figure on screen");
    let col = line.chars().position(|c| c == 's').unwrap() as u16;
    assert_eq!(screen[(col + 1, row as u16)].fg, Color::Red, "{text}");
    insta::assert_snapshot!("override_popup_80x24", text);
    let effects = app.update(ch('y'));
    match effects.as_slice() {
        [Effect::Trade { order, allow, .. }] => {
            assert_eq!(order.size, Some(0.05));
            // Just enough: 22.56025% rounded up to two decimals.
            assert_eq!(allow.position_percent, Some(22.57));
            assert_eq!(allow.risk_percent, None);
            assert!(!allow.from_command_line);
        }
        other => panic!("{other:?}"),
    }
    assert!(app.form.is_none(), "the form closes as the trade goes");
}
