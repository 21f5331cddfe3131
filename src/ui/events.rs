//! Recent events: the store's (decisions, executions, closes, switches) and the dashboard's
//! own (refusals, engine errors, symbols that failed), newest first. A long event wraps at
//! its words, never cut; with the focus, the pane scrolls with its cursor.

use super::{Theme, fmt_clock};
use crate::app::{App, EventLine, Focus};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// `text` in lines of at most `width` characters, broken at spaces (a word longer than a
/// line is broken where it must be).
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        while let Some(line) = lines.last_mut() {
            let used = line.chars().count();
            let room = if used == 0 {
                width
            } else {
                width.saturating_sub(used + 1)
            };
            if word.len() <= room {
                if used > 0 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(String::new());
                continue;
            }
            let rest = word.split_off(width);
            line.extend(word.iter());
            word = rest;
            lines.push(String::new());
        }
    }
    lines
}

/// The first event to show so that `cursor`'s event is on screen, given each event's height.
fn first_shown(heights: &[usize], cursor: usize, rows: usize) -> usize {
    let cursor = cursor.min(heights.len().saturating_sub(1));
    let mut start = cursor;
    let mut used = heights.get(cursor).copied().unwrap_or(0);
    while start > 0 && used + heights[start - 1] <= rows {
        start -= 1;
        used += heights[start];
    }
    // Prefer the newest events at the top when the cursor fits from there.
    if heights[..=cursor].iter().sum::<usize>() <= rows {
        0
    } else {
        start
    }
}

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let focused = app.focus == Focus::Events;
    let events = app.event_lines();
    render_list(
        &List {
            events: &events,
            cursor: app.events_cursor,
            focused,
            name: "Events (UTC)",
            total: events.len(),
            stamp: fmt_clock,
            empty: "no events yet",
        },
        theme,
        area,
        buf,
    );
}

/// A framed, scrolling list of events.
pub struct List<'a> {
    pub events: &'a [EventLine],
    pub cursor: usize,
    pub focused: bool,
    /// The frame's title, before where the list is.
    pub name: &'a str,
    /// How many there are in all (more than `events` when only the newest were loaded).
    pub total: usize,
    /// An event's time as the list shows it.
    pub stamp: fn(i64) -> String,
    /// What an empty list says.
    pub empty: &'a str,
}

pub fn render_list(list: &List<'_>, theme: Theme, area: Rect, buf: &mut Buffer) {
    let events = list.events;
    let focused = list.focused;
    let rows = area.height.saturating_sub(2) as usize;
    // The time, a space and the mark lead; the message wraps in the rest.
    let lead_width = (list.stamp)(0).chars().count() + 3;
    let text_width = (area.width.saturating_sub(2) as usize)
        .saturating_sub(lead_width)
        .max(1);
    let wrapped: Vec<Vec<String>> = events
        .iter()
        .map(|e| wrap_words(&e.message, text_width))
        .collect();
    let heights: Vec<usize> = wrapped.iter().map(Vec::len).collect();
    let cursor = list.cursor.min(events.len().saturating_sub(1));
    let start = if events.is_empty() {
        0
    } else {
        first_shown(&heights, cursor, rows)
    };
    let mut lines: Vec<Line> = Vec::new();
    let mut last = start;
    for (i, (e, text)) in events.iter().zip(&wrapped).enumerate().skip(start) {
        if lines.len() + text.len() > rows && !lines.is_empty() {
            break;
        }
        // An event taller than the pane shows what fits, cut at a word and marked.
        let room = rows.saturating_sub(lines.len()).max(1);
        let mut text = text.clone();
        if text.len() > room {
            let rest = text.split_off(room - 1).join(" ");
            let head = super::grid::cut_at_word(&rest, text_width);
            text.push(head);
        }
        let (mark, style) = match e.level.as_str() {
            "error" | "halt" => ("✗ ", theme.bad()),
            "warn" => ("! ", theme.warn()),
            _ => ("  ", Style::new()),
        };
        let style = if focused && i == cursor {
            style.patch(theme.selected(true))
        } else {
            style
        };
        for (n, part) in text.iter().enumerate() {
            let lead = if n == 0 {
                vec![
                    Span::styled((list.stamp)(e.at_ms), theme.dim()),
                    Span::raw(" "),
                    Span::styled(mark, style.patch(theme.bold())),
                ]
            } else {
                vec![Span::raw(" ".repeat(lead_width))]
            };
            let mut spans = lead;
            spans.push(Span::styled(part.clone(), style));
            lines.push(Line::from(spans));
        }
        last = i + 1;
    }
    let title = if start == 0 && last >= list.total {
        list.name.to_string()
    } else {
        format!("{} {}–{} of {}", list.name, start + 1, last, list.total)
    };
    let block = theme.block(title, focused);
    let body = if lines.is_empty() {
        vec![Line::from(Span::styled(list.empty, theme.dim()))]
    } else {
        lines
    };
    Paragraph::new(body).block(block).render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_wrap_and_nothing_is_lost() {
        let text = "executed SELL 0.02933648 BTC/USD @ 68,485.35 (paper, decision_712e320ae904)";
        let lines = wrap_words(text, 30);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(lines[1], "BTC/USD @ 68,485.35 (paper,");
    }

    #[test]
    fn the_cursor_stays_on_screen() {
        let h = [1, 2, 1, 3, 1];
        assert_eq!(first_shown(&h, 0, 3), 0);
        assert_eq!(first_shown(&h, 2, 4), 0);
        assert_eq!(first_shown(&h, 3, 4), 2);
        assert_eq!(first_shown(&h, 4, 4), 3);
    }
}
