//! The `?` screen, generated from the key table.

use super::Theme;
use crate::app::Settings;
use crate::keymap;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

/// The keys that move in a list: the help gives them one line.
pub const MOVES: [keymap::Command; 6] = [
    keymap::Command::Up,
    keymap::Command::Down,
    keymap::Command::PageUp,
    keymap::Command::PageDown,
    keymap::Command::Top,
    keymap::Command::Bottom,
];

/// What the dashboard's words mean, below the keys: scores, and the simulated market's speed.
pub fn notes(settings: &Settings) -> Vec<String> {
    let mut out = vec![
        "Score: a number in 0..1 that ranks signals and decisions; it is not a probability of \
         winning. counter-signal: a manual trade against the signal (score 0); no signal \
         support: one on a neutral signal or none (score 0)."
            .to_string(),
    ];
    if let Some(s) = settings.seconds_per_candle.filter(|_| settings.simulated) {
        out.push(format!(
            "Simulated market: {}; its signals and phases are the built-in analyzer's.",
            crate::simulated::source::describe_speed(s)
        ));
    }
    out
}

pub fn lines(theme: Theme, settings: &Settings) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(Span::styled("Dashboard", theme.header_row()))];
    use keymap::Command as C;
    for b in keymap::NORMAL {
        // The keys that move in a list share one line, and Tab its reverse: all fit 80×24.
        let (keys, help) = match b.command {
            C::Up => (
                keymap::NORMAL
                    .iter()
                    .filter(|m| MOVES.contains(&m.command))
                    .map(keymap::keys_label)
                    .collect::<Vec<_>>()
                    .join(", "),
                "move in the focused pane: a row, a page, to either end",
            ),
            C::SwitchFocus => (
                keymap::NORMAL
                    .iter()
                    .filter(|m| matches!(m.command, C::SwitchFocus | C::SwitchFocusBack))
                    .map(keymap::keys_label)
                    .collect::<Vec<_>>()
                    .join(", "),
                b.help,
            ),
            // The two kill switches share a line.
            C::KillSwitch => (
                "K, F".to_string(),
                "kill switch: K pauses entries, F also closes positions (asks)",
            ),
            // Ctrl-C quits at once everywhere; the last line says so once.
            C::Down
            | C::PageUp
            | C::PageDown
            | C::Top
            | C::Bottom
            | C::SwitchFocusBack
            | C::Flatten
            | C::QuitNow => {
                continue;
            }
            _ => (keymap::keys_label(b), b.help),
        };
        if keys.chars().count() > 16 {
            out.push(Line::from(Span::styled(format!("  {keys}"), theme.bold())));
            out.push(Line::from(vec![Span::raw(" ".repeat(18)), Span::raw(help)]));
        } else {
            out.push(Line::from(vec![
                Span::styled(format!("  {keys:<16}"), theme.bold()),
                Span::raw(help),
            ]));
        }
    }
    // The other tables are short: one line each, so the whole screen fits 80×24.
    let compact = |title: &'static str, table: &[keymap::Binding]| {
        let mut spans = vec![Span::styled(format!("{title:<18}"), theme.header_row())];
        // Ctrl-C quits everywhere; the last line says so once.
        let shown = table
            .iter()
            .filter(|b| b.command != keymap::Command::QuitNow);
        for (i, b) in shown.enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", theme.dim()));
            }
            spans.push(Span::styled(keymap::keys_label(b), theme.bold()));
            spans.push(Span::raw(format!(" {}", b.help)));
        }
        Line::from(spans)
    };
    out.push(compact("In a y/n question", keymap::POPUP));
    out.push(compact("In the trade form", keymap::TRADE_FORM));
    out.push(compact("In the size form", keymap::SIZE_FORM));
    out.push(Line::from(""));
    let close: Vec<String> = keymap::HELP
        .iter()
        .map(|b| format!("{}: {}", keymap::keys_label(b), b.help))
        .collect();
    out.push(Line::from(Span::styled(close.join(" · "), theme.dim())));
    out.push(Line::from(""));
    out.extend(
        notes(settings)
            .into_iter()
            .map(|n| Line::from(Span::styled(n, theme.dim()))),
    );
    out
}

pub fn render(settings: &Settings, theme: Theme, screen: Rect, buf: &mut Buffer) {
    let body = lines(theme, settings);
    let w = screen.width.min(100);
    // Height after wrapping: long lines take more than one row.
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let rows: usize = body
        .iter()
        .map(|l| l.width().div_ceil(inner_w).max(1))
        .sum();
    let h = (rows as u16 + 2).min(screen.height);
    let area = screen.centered(Constraint::Length(w), Constraint::Length(h));
    Clear.render(area, buf);
    Paragraph::new(body)
        .wrap(Wrap { trim: false })
        .block(theme.block("Keys".into(), true))
        .render(area, buf);
}
