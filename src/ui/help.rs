//! The `?` screen, generated from the key table.

use super::Theme;
use crate::keymap;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

pub fn lines(theme: Theme) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(Span::styled("Dashboard", theme.header_row()))];
    for b in keymap::NORMAL {
        out.push(Line::from(vec![
            Span::styled(format!("  {:<16}", keymap::keys_label(b)), theme.bold()),
            Span::raw(b.help),
        ]));
    }
    out.push(Line::from(""));
    // The other tables are short: one line each, so the whole screen fits 80×24.
    let compact = |title: &'static str, table: &[keymap::Binding]| {
        let mut spans = vec![Span::styled(format!("{title:<18}"), theme.header_row())];
        // Ctrl-C quits everywhere; the last line says so once.
        let shown = table.iter().filter(|b| b.command != keymap::Command::Quit);
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
    out
}

pub fn render(theme: Theme, screen: Rect, buf: &mut Buffer) {
    let body = lines(theme);
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
