#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Every number on the dashboard is a true rendering of a value it stands for: rendered at
//! 120×40, 80×24, 60×16 and 40×12 with prices from a fraction of a cent (SHIB-like) to tens of
//! thousands (BTC-like) and sizes in the tens of millions, each number on screen is parsed and
//! checked against the data. A number cut from the left (`5.866` of `305.866`) or the right
//! (`305.8` of `305.866`), or overflow marks (`####`), fail.

mod support;

use autotrade_tui::app::{Action, App, Settings, Snapshot};
use autotrade_tui::domain::rules::{self, RiskSettings};
use autotrade_tui::domain::{Direction, Phase, Side};
use autotrade_tui::engine::{EngineEvent, Health};
use autotrade_tui::store::{DecisionLog, PricePoint, RuntimeState, Status};
use autotrade_tui::ui;
use std::collections::BTreeMap;
use support::fixtures::{NOW, SEC, actionable, event, hold, position, symbol_view, trend};

/// A symbol, its latest price and the side and entry of its pending decision.
type Quote = (&'static str, f64, Option<(Side, f64)>);

const MARKET: [Quote; 5] = [
    ("BTC/USD", 68_174.5, Some((Side::Buy, 68_012.25))),
    ("SHIB/USD", 0.000_012_34, Some((Side::Buy, 0.000_012_01))),
    ("ETH/USD", 2_488.25, Some((Side::Sell, 2_500.0))),
    ("PEPE/USD", 0.000_000_987, None),
    ("SOL/USD", 305.866_4, Some((Side::Sell, 311.828))),
];

/// A large account, so that a SHIB position is tens of millions of coins.
fn risk() -> RiskSettings {
    RiskSettings {
        account_size: 2_500_000.0,
        max_risk_percent: 1.5,
        max_position_percent: 20.0,
        min_confidence: 0.75,
    }
}

fn settings() -> Settings {
    Settings {
        user_id: "default".into(),
        live: false,
        simulated: false,
        seconds_per_candle: None,
        symbols: MARKET.iter().map(|m| m.0.to_string()).collect(),
        max_open_positions: 5,
        account_size: risk().account_size,
        pending_expiry_ms: 600_000,
        stale_after_ms: None,
        broker: None,
        daily_loss_limit_percent: 0.0,
        max_drawdown_percent: 0.0,
        color: false,
    }
}

/// A decision sized for the large account (the fixture sizes for the small one).
fn sized(mut d: DecisionLog) -> DecisionLog {
    let dec = &mut d.decision;
    if let (Some(e), Some(t), Some(s)) = (dec.entry_price, dec.take_profit, dec.stop_loss) {
        dec.position_size = rules::size_position(&risk(), e, s).quantity;
        dec.risk_reward = Some(rules::risk_reward(dec.position_size, e, t, s));
    }
    d
}

fn pending() -> Vec<DecisionLog> {
    MARKET
        .iter()
        .enumerate()
        .filter_map(|(i, (sym, _, p))| {
            let (side, entry) = (*p)?;
            let id = format!("decision_{:012x}", 0xabc000 + i);
            Some(sized(actionable(
                &id,
                sym,
                side,
                entry,
                Status::Pending,
                30 + i as i64,
            )))
        })
        .collect()
}

fn snapshot() -> Snapshot {
    let mut prices = BTreeMap::new();
    for (s, p, _) in MARKET {
        prices.insert(
            s.to_string(),
            PricePoint {
                price: p,
                at_ms: NOW - 20 * SEC,
                bid: None,
                ask: None,
            },
        );
    }
    let positions = vec![
        position(
            1,
            "SHIB/USD",
            Side::Buy,
            81_037_277.142_857_14,
            0.000_011_9,
            7_200,
        ),
        position(2, "BTC/USD", Side::Sell, 0.044_444_44, 69_001.75, 600),
    ];
    let unrealized: f64 = positions
        .iter()
        .filter_map(|p| p.unrealized_pnl(prices.get(&p.symbol).map(|x| x.price)))
        .sum();
    let pending = pending();
    let mut latest = pending.clone();
    latest.push(hold(
        "decision_00000000beef",
        "PEPE/USD",
        "HOLD: neutral signal during manipulation (0.55)",
        12,
    ));
    Snapshot {
        taken_at_ms: NOW,
        state: RuntimeState {
            enabled: true,
            kill_switch: false,
            last_cycle_at_ms: Some(NOW - 30 * SEC),
            halt: None,
            marks: Default::default(),
        },
        pending,
        latest,
        positions,
        trends: MARKET
            .iter()
            .map(|(sym, p, _)| {
                let walk = [0.97, 1.01, 0.99, 1.03, 0.98, 1.0];
                let prices: Vec<f64> = walk.iter().map(|w| p * w).collect();
                (sym.to_string(), trend(&prices, NOW - 20 * SEC))
            })
            .collect(),
        prices,
        events: vec![
            event(
                3,
                600,
                "info",
                "executed SELL 0.04444444 BTC/USD @ 69,001.75 (paper, decision_000000000002)",
            ),
            event(
                2,
                7_200,
                "info",
                "executed BUY 81037277.14285714 SHIB/USD @ 0.00001190 (paper, decision_000000000001)",
            ),
            event(1, 9_000, "info", "auto-trading enabled"),
        ],
        equity: risk().account_size + 1_234.56 + unrealized,
        realized_pnl: 1_234.56,
        unrealized_pnl: unrealized,
        broker: None,
    }
}

fn app() -> App {
    let mut app = App::new(settings(), NOW).with_risk(risk());
    let snap = snapshot();
    app.update(Action::Snapshot(Box::new(snap.clone())));
    for (sym, price, p) in MARKET {
        let log = snap
            .latest
            .iter()
            .find(|l| l.decision.symbol == sym)
            .unwrap()
            .clone();
        let (dir, phase) = match p {
            Some((Side::Buy, _)) => (Direction::Bullish, Phase::Accumulation),
            Some((Side::Sell, _)) => (Direction::Bearish, Phase::Distribution),
            None => (Direction::Neutral, Phase::Manipulation),
        };
        app.update(Action::Engine(EngineEvent::Symbol(Box::new(symbol_view(
            sym, dir, phase, price, log,
        )))));
    }
    app.update(Action::Engine(EngineEvent::Health(Health::Ok)));
    app.update(Action::Engine(EngineEvent::NextCheck {
        at_ms: NOW + 258 * SEC,
    }));
    app
}

/// Every value the screen may show a number of, computed from the data as a trader would.
fn truths(app: &App) -> Vec<f64> {
    let snap = app.snapshot.as_ref().unwrap();
    let mut v = vec![
        snap.equity,
        snap.realized_pnl,
        snap.unrealized_pnl,
        snap.equity - app.settings.account_size,
        0.9,
        0.8,
        0.55,
        0.855,
        0.855_0,
    ];
    for (sym, p) in &snap.prices {
        v.push(p.price);
        // The change over the trend the signals pane draws.
        let t = ui::signals::trend_points(app, sym);
        if let (Some(a), Some(b)) = (t.first(), t.last()) {
            v.push((b.price - a.price) / a.price * 100.0);
        }
        // The ML signal's levels (the signals pane shows the price it was given).
        v.extend([p.price * 1.05, p.price * 0.98]);
    }
    for d in &snap.pending {
        let dec = &d.decision;
        v.extend([dec.confidence, dec.position_size]);
        v.extend(
            [dec.entry_price, dec.take_profit, dec.stop_loss]
                .into_iter()
                .flatten(),
        );
        if let Some(rr) = dec.risk_reward {
            v.extend([
                rr.risk_amount,
                rr.reward_amount,
                rr.risk_percent,
                rr.reward_percent,
                rr.risk_reward_ratio,
                // The detail box and the forms say each amount as a percent of the account.
                rr.risk_amount / app.risk.account_size * 100.0,
                rr.reward_amount / app.risk.account_size * 100.0,
            ]);
        }
        if let Some(e) = dec.entry_price {
            v.push(e * dec.position_size);
            if let Some(now) = app.price(&dec.symbol) {
                v.push((now - e) / e * 100.0);
            }
        }
    }
    for p in &snap.positions {
        v.extend([p.quantity, p.entry_price, p.take_profit, p.stop_loss]);
        if let Some(l) = app.price(&p.symbol) {
            v.extend(p.unrealized_pnl(Some(l)));
            v.push((p.take_profit - l).abs() / l * 100.0);
            v.push((p.stop_loss - l).abs() / l * 100.0);
        }
    }
    // The simulated market's speed, in the header.
    if let Some(s) = app.settings.seconds_per_candle {
        v.push(autotrade_tui::simulated::source::speed(s));
    }
    // Numbers the events' stored text carries.
    v.extend([0.044_444_44, 69_001.75, 81_037_277.142_857_14, 0.000_011_9]);
    v
}

fn render(app: &App, w: u16, h: u16) -> String {
    support::fixtures::screen_text(app, w, h)
}

/// A number as it stands on screen, with the value it claims and how precisely.
#[derive(Debug)]
struct Shown {
    text: String,
    value: f64,
    /// Half a unit in the last place shown: the true value lies within this of `value`.
    within: f64,
    signed: bool,
}

/// The numbers on one line of the screen. Skipped as not values: digits inside a word or an
/// identifier (`decision_1f3a…`), times and countdowns (`09:58:20`, `4:18`), ages (`42s`,
/// `1h`), and small counts (`(3)`, `1/5`, `12–20 of 40`).
fn numbers(line: &str) -> Vec<Shown> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let digit_start = chars[i].is_ascii_digit()
            || (chars[i] == '.' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        if !digit_start {
            i += 1;
            continue;
        }
        // Extend over the number: digits, separators, a decimal point, an exponent.
        let mut j = i;
        while j < chars.len()
            && (chars[j].is_ascii_digit()
                || (chars[j] == ',' && chars.get(j + 1).is_some_and(|c| c.is_ascii_digit()))
                || (chars[j] == '.' && chars.get(j + 1).is_some_and(|c| c.is_ascii_digit())))
        {
            j += 1;
        }
        if chars.get(j) == Some(&'e')
            && chars
                .get(j + 1)
                .is_some_and(|c| *c == '-' || *c == '+' || c.is_ascii_digit())
        {
            j += 2;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
        }
        let body: String = chars[start..j].iter().collect();
        let suffix = chars.get(j).copied().filter(|c| "kMBT".contains(*c));
        let end = j + usize::from(suffix.is_some());
        i = end;
        let before = start.checked_sub(1).map(|k| chars[k]);
        let after = chars.get(end).copied();
        let word_char = |c: char| c.is_alphanumeric() || c == '_';
        if before.is_some_and(|c| word_char(c) || c == ':')
            || after.is_some_and(|c| word_char(c) || c == ':')
        {
            continue;
        }
        let sign = match before {
            Some('-') => -1.0,
            _ => 1.0,
        };
        let signed = matches!(before, Some('-') | Some('+'));
        let plain = body.replace(',', "");
        let Ok(mut value) = plain.parse::<f64>() else {
            panic!("{body:?} in {line:?} is not a number");
        };
        let is_count = suffix.is_none()
            && !plain.contains('.')
            && !plain.contains('e')
            && !signed
            && after != Some('%')
            && value < 100.0;
        if is_count {
            continue;
        }
        let scale = match suffix {
            Some('k') => 1e3,
            Some('M') => 1e6,
            Some('B') => 1e9,
            Some('T') => 1e12,
            _ => 1.0,
        };
        let (mantissa, exp) = match plain.split_once('e') {
            Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap()),
            None => (plain.clone(), 0),
        };
        let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
        let within = 0.5 * 10f64.powi(exp - decimals) * scale;
        value *= scale * sign;
        out.push(Shown {
            text: chars[start.saturating_sub(usize::from(signed))..end]
                .iter()
                .collect(),
            value,
            within,
            signed,
        });
    }
    out
}

/// True when `shown` is `truth` rounded as shown (an unsigned number may be a distance).
fn renders(shown: &Shown, truth: f64) -> bool {
    let t = if shown.signed { truth } else { truth.abs() };
    (shown.value - t).abs() <= shown.within * (1.0 + 1e-9) + t.abs() * 1e-12
}

fn check(app: &App, w: u16, h: u16) -> String {
    let screen = render(app, w, h);
    assert!(
        !screen.contains('#'),
        "overflow marks at {w}×{h}:\n{screen}"
    );
    let truths = truths(app);
    for line in screen.lines() {
        for n in numbers(line) {
            assert!(
                truths.iter().any(|t| renders(&n, *t)),
                "{:?} at {w}×{h} is not a true rendering of any value on this line:\n{line}\n\n{screen}",
                n.text
            );
        }
    }
    screen
}

#[test]
fn the_number_reader_catches_cut_numbers() {
    let truth = [305.866, 311.828, 6.538_811_11];
    for cut in ["5.866", ".828", "305.8", "1111", "0.79"] {
        let shown = numbers(&format!("│ {cut} │"));
        assert_eq!(shown.len(), 1, "{cut}");
        assert!(
            !truth.iter().any(|t| renders(&shown[0], *t)),
            "{cut} passes as true"
        );
    }
    for whole in ["305.866", "311.828", "6.53881111", "~306", "6.54"] {
        let shown = numbers(&format!("│ {whole} │"));
        assert!(truth.iter().any(|t| renders(&shown[0], *t)), "{whole}");
    }
    assert!(numbers("09:58:20 4:18 42s decision_1f3a9c0b7d2e (3) 1/5").is_empty());
    let c = numbers("~68.2k 1.23e-5 -0.47%");
    assert_eq!(c.len(), 3);
    assert!(renders(&c[0], 68_174.5) && renders(&c[1], 0.000_012_34));
    assert!(renders(&c[2], -0.4703) && !renders(&c[2], 0.4703));
}

#[test]
fn every_number_is_true_at_120x40() {
    let screen = check(&app(), 120, 40);
    // The extremes are there in full.
    for text in ["0.00001234", "68,174.50", "81037277.14285714", "0.00000099"] {
        assert!(screen.contains(text), "{text} missing:\n{screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn every_number_is_true_at_80x24() {
    insta::assert_snapshot!(check(&app(), 80, 24));
}

#[test]
fn every_number_is_true_at_60x16() {
    insta::assert_snapshot!(check(&app(), 60, 16));
}

#[test]
fn every_number_is_true_at_40x12() {
    insta::assert_snapshot!(check(&app(), 40, 12));
}

#[test]
fn every_number_is_true_in_the_detail_box_at_160x40_and_on_the_simulated_market() {
    let screen = check(&app(), 160, 40);
    // The selected decision's box, beside the table, with its risk said of what.
    assert!(screen.contains("Selected decision"), "{screen}");
    assert!(screen.contains("of account from entry"), "{screen}");
    let mut sim = app();
    sim.settings.simulated = true;
    sim.settings.seconds_per_candle = Some(1.5);
    for (w, h) in [(160, 40), (120, 40), (80, 24)] {
        let screen = check(&sim, w, h);
        assert!(screen.contains("SIMULATED 2,400×"), "{w}×{h}:\n{screen}");
    }
}

#[test]
fn every_number_is_true_with_the_positions_pane_focused_at_60x16() {
    let mut app = app();
    app.update(Action::Key(ratatui::crossterm::event::KeyEvent::new(
        ratatui::crossterm::event::KeyCode::Tab,
        ratatui::crossterm::event::KeyModifiers::NONE,
    )));
    check(&app, 60, 16);
    check(&app, 50, 12);
}
