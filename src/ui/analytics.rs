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

/// A unit that stays with the number before it: `41.7 %`, `+2.00 R`.
fn is_unit(word: &str) -> bool {
    word.starts_with('%') || word == "R" || word.starts_with("R)") || word.starts_with("R,")
}

/// Words of `text` in lines of at most `width` columns: the first after `first` columns of
/// indent, the rest after `rest`. A number keeps its unit on its line. A word longer than a
/// line gets a line of its own, whole: it runs off the edge rather than being cut in two.
pub fn wrap(text: &str, width: usize, first: usize, rest: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in text.split(' ').filter(|w| !w.is_empty()) {
        match words.last_mut() {
            Some(prev) if is_unit(w) => {
                prev.push(' ');
                prev.push_str(w);
            }
            _ => words.push(w.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut line = " ".repeat(first);
    let mut len = first;
    let mut empty = true;
    for word in &words {
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

/// One line of the report as screen lines at `width` columns.
fn screen_lines(line: &ReportLine, theme: Theme, width: usize) -> Vec<Line<'static>> {
    match line {
        ReportLine::Heading(h) => wrap(h, width, 0, 2)
            .into_iter()
            .map(|w| Line::from(Span::styled(w, theme.bold())))
            .collect(),
        ReportLine::Item { depth, text } => wrap(text, width, depth * 2, depth * 2 + 4)
            .into_iter()
            .map(Line::from)
            .collect(),
        ReportLine::Blank => vec![Line::default()],
    }
}

/// How many lines the report has: the view scrolls by them, from the first to the last.
pub fn line_count(report: &Report) -> usize {
    text::lines(report).len()
}

/// The view from the report's line `from` on (as many as fit), in a frame over the dashboard;
/// the footer keeps its line.
pub fn render(data: Option<&Report>, from: usize, theme: Theme, screen: Rect, buf: &mut Buffer) {
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
    let lines = text::lines(report);
    let from = from.min(lines.len().saturating_sub(1));
    let width = area.width.saturating_sub(2) as usize;
    let height = area.height.saturating_sub(2) as usize;
    let mut shown = Vec::new();
    let mut last = from;
    for (i, l) in lines.iter().enumerate().skip(from) {
        let wrapped = screen_lines(l, theme, width);
        if shown.len() + wrapped.len() > height && !shown.is_empty() {
            break;
        }
        shown.extend(wrapped);
        last = i;
    }
    let title = if from > 0 || last + 1 < lines.len() {
        format!(
            "Analytics: lines {}–{} of {} (↑↓ PgUp PgDn)",
            from + 1,
            last + 1,
            lines.len()
        )
    } else {
        "Analytics".to_string()
    };
    let block = theme.block(title, true);
    let inner = block.inner(area);
    block.render(area, buf);
    Paragraph::new(shown).render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_with_a_hanging_indent_and_never_cuts_a_word() {
        let w = wrap("win rate 41.7 % (95 %: 19.3–68.0 %) · +2.00 R", 16, 2, 4);
        assert_eq!(
            w,
            [
                "  win rate",
                "    41.7 %",
                "    (95 %:",
                "    19.3–68.0 %)",
                "    · +2.00 R"
            ]
        );
        let long = wrap("+1234567890.12", 6, 0, 2);
        assert_eq!(long, ["+1234567890.12"]);
    }
}
