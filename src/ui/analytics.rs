//! The analytics view (`a`): the report `report` prints (realized performance, the outcome of
//! every decision, the value of the veto, how well each source's scores sort winners), drawn
//! over the dashboard from `App` only. Lines wrap at spaces, so no number is ever cut.

use super::Theme;
use crate::analytics::report::Report;
use crate::analytics::text::{self, Line as ReportLine};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

/// Words of `text` in lines of at most `width` columns: the first after `first` columns of
/// indent, the rest after `rest`. A word longer than a line gets a line of its own, whole:
/// it runs off the edge rather than being cut in two.
pub fn wrap(text: &str, width: usize, first: usize, rest: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = " ".repeat(first);
    let mut len = first;
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = word.chars().count();
        if !empty && len + 1 + w > width {
            out.push(std::mem::take(&mut line));
            line = " ".repeat(rest);
            len = rest;
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += w;
        empty = false;
    }
    out.push(line);
    out
}

/// The report as screen lines at `width` columns.
pub fn screen_lines(report: &Report, theme: Theme, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for l in text::lines(report) {
        match l {
            ReportLine::Heading(h) => {
                for w in wrap(&h, width, 0, 2) {
                    out.push(Line::from(Span::styled(w, theme.bold())));
                }
            }
            ReportLine::Item { depth, text } => {
                for w in wrap(&text, width, depth * 2, depth * 2 + 4) {
                    out.push(Line::from(w));
                }
            }
            ReportLine::Blank => out.push(Line::default()),
        }
    }
    out
}

/// How many lines the view scrolls by at most for a report at this screen size.
pub fn max_scroll(report: &Report, screen: Rect) -> usize {
    let inner = inner_size(screen);
    screen_lines(report, Theme { color: false }, inner.0)
        .len()
        .saturating_sub(inner.1)
}

/// The text area's width and height inside the frame (the footer keeps its line).
fn inner_size(screen: Rect) -> (usize, usize) {
    (
        screen.width.saturating_sub(2) as usize,
        screen.height.saturating_sub(3) as usize,
    )
}

pub fn render(data: Option<&Report>, scroll: usize, theme: Theme, screen: Rect, buf: &mut Buffer) {
    let area = Rect {
        height: screen.height.saturating_sub(1),
        ..screen
    };
    Clear.render(area, buf);
    let Some(report) = data else {
        let block = theme.block("Analytics".into(), true);
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(Span::styled("loading…", theme.dim())).render(inner, buf);
        return;
    };
    let (width, height) = inner_size(screen);
    let lines = screen_lines(report, theme, width);
    let scroll = scroll.min(lines.len().saturating_sub(height));
    let shown_to = (scroll + height).min(lines.len());
    let title = if lines.len() > height {
        format!(
            "Analytics: lines {}–{} of {} (↑↓ PgUp PgDn)",
            scroll + 1,
            shown_to,
            lines.len()
        )
    } else {
        "Analytics".to_string()
    };
    let block = theme.block(title, true);
    let inner = block.inner(area);
    block.render(area, buf);
    Paragraph::new(lines[scroll..shown_to].to_vec()).render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_with_a_hanging_indent_and_never_cuts_a_word() {
        let w = wrap("win rate 41.7 % (95 %: 19.3–68.0 %)", 16, 2, 4);
        assert_eq!(w, ["  win rate 41.7", "    % (95 %:", "    19.3–68.0 %)"]);
        let long = wrap("+1234567890.12", 6, 0, 2);
        assert_eq!(long, ["+1234567890.12"]);
    }
}
