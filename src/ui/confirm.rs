//! The y/n popup: it shows the question; the effect it holds is performed by `App::update`.

use super::Theme;
use crate::app::Popup;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

pub fn render(popup: &Popup, theme: Theme, screen: Rect, buf: &mut Buffer) {
    let w = screen.width.min(60);
    let area = screen.centered(
        Constraint::Length(w),
        Constraint::Length(7.min(screen.height)),
    );
    Clear.render(area, buf);
    let block = theme
        .block(popup.title.clone(), true)
        .border_style(theme.fg(Color::Red));
    Paragraph::new(vec![
        Line::from(popup.question.clone()),
        Line::from(""),
        Line::from(vec![
            Span::styled(" y ", theme.badge(Color::Red)),
            Span::raw(" yes   "),
            Span::styled(" n ", theme.badge(Color::Gray)),
            Span::raw(" no (Esc)"),
        ]),
    ])
    .wrap(Wrap { trim: true })
    .block(block)
    .render(area, buf);
}
