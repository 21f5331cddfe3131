//! The y/n popup: it shows the question; the effect it holds is performed by `App::update`.

use super::Theme;
use crate::app::Popup;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

/// How many rows `text` takes wrapped at words to `width` columns (as the paragraph wraps it).
fn rows(text: &str, width: usize) -> usize {
    let width = width.max(1);
    let mut rows = 1;
    let mut used = 0;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if used > 0 && used + 1 + w <= width {
            used += 1 + w;
            continue;
        }
        if used > 0 {
            rows += 1;
        }
        // A word longer than the line is broken across rows.
        rows += (w.max(1) - 1) / width;
        used = (w - 1) % width + 1;
    }
    rows
}

pub fn render(popup: &Popup, theme: Theme, screen: Rect, buf: &mut Buffer) {
    // Wide enough and tall enough for the whole question: nothing in it is ever cut.
    let w = screen
        .width
        .min(if popup.question.len() > 160 { 72 } else { 60 });
    let inner = w.saturating_sub(2) as usize;
    let text_rows =
        rows(&popup.question, inner) + popup.alert.as_deref().map_or(0, |a| rows(a, inner) + 1);
    let h = (text_rows as u16 + 4).min(screen.height);
    let area = screen.centered(Constraint::Length(w), Constraint::Length(h));
    Clear.render(area, buf);
    let block = theme
        .block(popup.title.clone(), true)
        .border_style(theme.fg(Color::Red));
    let mut lines = Vec::new();
    if let Some(a) = &popup.alert {
        lines.push(Line::from(Span::styled(
            a.clone(),
            theme.bad().add_modifier(Modifier::BOLD),
        )));
        lines.push(Line::from(""));
    }
    lines.push(Line::from(popup.question.clone()));
    Paragraph::new(
        lines
            .into_iter()
            .chain([
                Line::from(""),
                Line::from(vec![
                    Span::styled(" y ", theme.badge(Color::Red)),
                    Span::raw(" yes   "),
                    Span::styled(" n ", theme.badge(Color::Gray)),
                    Span::raw(" no (Esc)"),
                ]),
            ])
            .collect::<Vec<_>>(),
    )
    .wrap(Wrap { trim: true })
    .block(block)
    .render(area, buf);
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_count_words_as_the_paragraph_wraps_them() {
        assert_eq!(super::rows("one two three", 7), 2);
        assert_eq!(super::rows("one two three", 13), 1);
        assert_eq!(super::rows("", 10), 1);
        assert_eq!(super::rows("abcdefghijkl", 5), 3);
    }
}
