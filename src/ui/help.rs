//! The `?` screen, generated from the key table.

use super::Theme;
use crate::keymap;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

pub fn lines(theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let section = |out: &mut Vec<Line<'static>>, title: &'static str, mode| {
        out.push(Line::from(Span::styled(title, theme.header_row())));
        for b in keymap::table(mode) {
            out.push(Line::from(vec![
                Span::styled(format!("  {:<16}", keymap::keys_label(b)), theme.bold()),
                Span::raw(b.help),
            ]));
        }
    };
    section(&mut out, "Dashboard", keymap::Mode::Normal);
    out.push(Line::from(""));
    section(&mut out, "In a y/n question", keymap::Mode::Popup);
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
    let h = (body.len() as u16 + 2).min(screen.height);
    let area = screen.centered(
        Constraint::Length(screen.width.min(90)),
        Constraint::Length(h),
    );
    Clear.render(area, buf);
    Paragraph::new(body)
        .wrap(Wrap { trim: false })
        .block(theme.block("Keys".into(), true))
        .render(area, buf);
}
