//! Key hints from the key table; the help and quit hints always fit.

use super::Theme;
use crate::app::App;
use crate::keymap;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// The hints that fit in `width` columns, in table order; the last two are never dropped.
pub fn hints(mode: keymap::Mode, width: usize) -> Vec<(&'static str, &'static str)> {
    let all: Vec<(&str, &str)> = keymap::table(mode)
        .iter()
        .filter_map(|b| b.footer)
        .collect();
    let cost = |h: &(&str, &str)| h.0.chars().count() + 1 + h.1.chars().count() + 2;
    let keep = all.len().saturating_sub(2);
    let mut budget = width.saturating_sub(1 + all[keep..].iter().map(cost).sum::<usize>());
    let mut out = Vec::new();
    for h in &all[..keep] {
        if cost(h) <= budget {
            budget -= cost(h);
            out.push(*h);
        }
    }
    out.extend_from_slice(&all[keep..]);
    out
}

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let mut spans = vec![Span::raw(" ")];
    for (key, word) in hints(app.mode(), area.width as usize) {
        spans.push(Span::styled(key, theme.badge(ratatui::style::Color::Gray)));
        spans.push(Span::raw(format!(" {word}  ")));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
