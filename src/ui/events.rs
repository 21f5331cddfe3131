//! Recent events: the store's (decisions, executions, closes, switches) and the dashboard's
//! own (refusals, engine errors, symbols that failed), newest first.

use super::{Theme, fmt_clock};
use crate::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let block = theme.block("Events (UTC)".into(), false);
    let rows = block.inner(area).height as usize;
    let lines: Vec<Line> = app
        .event_lines()
        .into_iter()
        .take(rows)
        .map(|e| {
            let (mark, style) = match e.level.as_str() {
                "error" => ("✗ ", theme.bad()),
                "warn" => ("! ", theme.warn()),
                _ => ("  ", ratatui::style::Style::new()),
            };
            Line::from(vec![
                Span::styled(fmt_clock(e.at_ms), theme.dim()),
                Span::raw(" "),
                Span::styled(mark, style.patch(theme.bold())),
                Span::styled(e.message, style),
            ])
        })
        .collect();
    let body = if lines.is_empty() {
        vec![Line::from(Span::styled("no events yet", theme.dim()))]
    } else {
        lines
    };
    Paragraph::new(body).block(block).render(area, buf);
}
