//! Tables whose numbers are never cut. Each column says how important it is and, for every
//! row, the texts it may show, best first (the exact number, then compact forms that are still
//! true and say so). Columns are sized to what they hold; when the table is too wide the least
//! important columns drop whole, then key columns take their compact forms, and when even that
//! does not fit the pane says how wide the terminal must be instead of drawing a table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Cell, HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap,
};

/// One column of a table.
pub struct Col {
    pub header: &'static str,
    pub right: bool,
    /// 0: a key column, never dropped; the highest rank drops first.
    pub rank: u8,
    /// A text column that takes the width left over and is cut at a word (with `…`); numbers
    /// inside it are never split.
    pub fill: bool,
    /// The least width, so that a column keeps its place from frame to frame.
    pub min: usize,
    /// `cells[row]`: the texts this cell may show, best first.
    pub cells: Vec<Vec<Line<'static>>>,
}

impl Col {
    pub fn new(header: &'static str, rank: u8) -> Col {
        Col {
            header,
            right: false,
            rank,
            fill: false,
            min: 0,
            cells: Vec::new(),
        }
    }
    pub fn right(mut self) -> Col {
        self.right = true;
        self
    }
    pub fn min(mut self, width: usize) -> Col {
        self.min = width;
        self
    }
    pub fn fill(mut self) -> Col {
        self.fill = true;
        self
    }
    /// Add a row's cell: one text.
    pub fn push(&mut self, line: impl Into<Line<'static>>) {
        self.cells.push(vec![line.into()]);
    }
    /// Add a row's cell: texts best first, all in one style.
    pub fn push_choices(&mut self, texts: Vec<String>, style: Style) {
        self.cells.push(
            texts
                .into_iter()
                .map(|t| Line::from(Span::styled(t, style)))
                .collect(),
        );
    }
    fn choices(&self) -> usize {
        self.cells.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }
    /// The width the column needs at compact level `level`.
    fn width_at(&self, level: usize) -> usize {
        self.cells
            .iter()
            .filter_map(|c| c.get(level.min(c.len().saturating_sub(1))))
            .map(Line::width)
            .chain([self.header.chars().count(), self.min])
            .max()
            .unwrap_or(0)
    }
}

/// What a fitted table keeps: (column, width, compact level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    pub kept: Vec<(usize, u16, usize)>,
}

/// A text column narrower than this says too little to be worth its place: it drops.
const FILL_MIN: usize = 24;

/// Columns are one cell apart.
const SPACING: usize = 1;

/// Which columns fit in `width` (less `lead` for a selection marker), at which widths; `None`
/// when not even the key columns in their most compact forms do. Returns also the width needed
/// at the least.
pub fn fit(cols: &[Col], width: u16, lead: u16) -> Result<Fitted, usize> {
    let avail = (width as usize).saturating_sub(lead as usize);
    // Each column's width at each of its levels, measured once.
    let widths: Vec<Vec<usize>> = cols
        .iter()
        .map(|c| (0..c.choices()).map(|l| c.width_at(l)).collect())
        .collect();
    let width_at = |i: usize, l: usize| widths[i][l.min(widths[i].len() - 1)];
    let mut level: Vec<usize> = vec![0; cols.len()];
    let mut keep: Vec<bool> = vec![true; cols.len()];
    let drop_rank = |keep: &mut [bool], rank: u8| {
        for (i, c) in cols.iter().enumerate() {
            if c.rank == rank {
                keep[i] = false;
            }
        }
    };
    let need = |keep: &[bool], level: &[usize]| -> usize {
        let mut n: usize = 0;
        let mut total: usize = 0;
        for (i, c) in cols.iter().enumerate() {
            if keep[i] {
                total += if c.fill {
                    c.header.chars().count().max(FILL_MIN)
                } else {
                    width_at(i, level[i])
                };
                n += 1;
            }
        }
        total + SPACING * n.saturating_sub(1)
    };
    // Drop whole columns, least important first; columns of one rank go together (a take
    // profit is not shown without its stop loss). Before the most important of them (rank 1)
    // go, the kept columns take their compact forms, the one that saves most first.
    while need(&keep, &level) > avail {
        let rank = (0..cols.len())
            .filter(|&i| keep[i] && cols[i].rank > 0)
            .map(|i| cols[i].rank)
            .max();
        let compact = (0..cols.len())
            .filter(|&i| keep[i] && level[i] + 1 < cols[i].choices())
            .map(|i| {
                let gain = width_at(i, level[i]) as isize - width_at(i, level[i] + 1) as isize;
                (gain, i)
            })
            .max();
        match (rank, compact) {
            (Some(rank), Some(_)) if rank > 1 => drop_rank(&mut keep, rank),
            (_, Some((_, i))) => level[i] += 1,
            (Some(rank), None) => drop_rank(&mut keep, rank),
            (None, None) => return Err(need(&keep, &level) + lead as usize),
        }
    }
    // A less important group dropped before a wider one may fit in what the wider one left.
    let mut dropped: Vec<u8> = (0..cols.len())
        .filter(|&i| !keep[i])
        .map(|i| cols[i].rank)
        .collect();
    dropped.sort_unstable();
    dropped.dedup();
    for rank in dropped {
        let mut with = keep.clone();
        for (i, c) in cols.iter().enumerate() {
            if c.rank == rank {
                with[i] = true;
            }
        }
        if need(&with, &level) <= avail {
            keep = with;
        }
    }
    // A column dropped after others were compacted may leave room to show them exactly again.
    let mut restored = true;
    while restored {
        restored = false;
        for i in 0..cols.len() {
            if keep[i] && level[i] > 0 {
                level[i] -= 1;
                if need(&keep, &level) <= avail {
                    restored = true;
                } else {
                    level[i] += 1;
                }
            }
        }
    }
    let used = need(&keep, &level);
    let kept = (0..cols.len())
        .filter(|&i| keep[i])
        .map(|i| {
            let w = if cols[i].fill {
                let fixed = used - cols[i].header.chars().count().max(FILL_MIN);
                avail.saturating_sub(fixed)
            } else {
                width_at(i, level[i])
            };
            (i, w.min(u16::MAX as usize) as u16, level[i])
        })
        .collect();
    Ok(Fitted { kept })
}

/// `text` cut at a word so that it fits `width` cells, with `…` when cut.
pub fn cut_at_word(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let extra = usize::from(!out.is_empty()) + word.chars().count();
        if out.chars().count() + extra + 1 > width {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// A fill column's cell cut to `width`, keeping its first span's style.
fn cut_line(line: &Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line.clone();
    }
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    let style = line.spans.first().map(|s| s.style).unwrap_or_default();
    Line::from(Span::styled(cut_at_word(&text, width), style))
}

/// How a fitted table is drawn.
pub struct Draw<'a> {
    pub header_style: Style,
    pub highlight: Option<(Style, &'a str)>,
    /// The selected row among the rows given, if any.
    pub selected: Option<usize>,
}

/// Draw the rows of `cols` in `area`, or a line saying how wide the terminal must be.
pub fn render(cols: &[Col], area: Rect, draw: &Draw<'_>, buf: &mut Buffer) {
    let lead = draw
        .highlight
        .map_or(0u16, |(_, sym)| sym.chars().count() as u16);
    let fitted = match fit(cols, area.width, lead) {
        Ok(f) => f,
        Err(needed) => {
            Paragraph::new(format!(
                "widen the terminal: this table needs {needed} columns, it has {}",
                area.width
            ))
            .wrap(Wrap { trim: true })
            .render(area, buf);
            return;
        }
    };
    let rows_n = cols.iter().map(|c| c.cells.len()).max().unwrap_or(0);
    let header = Row::new(fitted.kept.iter().map(|&(i, _, _)| {
        let l = Line::from(cols[i].header);
        Cell::from(if cols[i].right { l.right_aligned() } else { l })
    }))
    .style(draw.header_style);
    let rows: Vec<Row> = (0..rows_n)
        .map(|r| {
            Row::new(fitted.kept.iter().map(|&(i, w, level)| {
                let c = &cols[i];
                let line = c
                    .cells
                    .get(r)
                    .and_then(|choices| choices.get(level.min(choices.len().saturating_sub(1))))
                    .cloned()
                    .unwrap_or_default();
                let line = if c.fill {
                    cut_line(&line, w as usize)
                } else {
                    line
                };
                Cell::from(if c.right { line.right_aligned() } else { line })
            }))
        })
        .collect();
    let widths: Vec<Constraint> = fitted
        .kept
        .iter()
        .map(|&(_, w, _)| Constraint::Length(w))
        .collect();
    let mut table = Table::new(rows, widths)
        .header(header)
        .column_spacing(SPACING as u16);
    if let Some((style, sym)) = draw.highlight {
        table = table
            .row_highlight_style(style)
            .highlight_symbol(sym)
            .highlight_spacing(HighlightSpacing::Always);
    }
    let mut state = TableState::default().with_selected(draw.selected);
    StatefulWidget::render(table, area, buf, &mut state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(header: &'static str, rank: u8, rows: &[&[&str]]) -> Col {
        let mut c = Col::new(header, rank);
        for r in rows {
            c.push_choices(r.iter().map(|s| s.to_string()).collect(), Style::new());
        }
        c
    }

    #[test]
    fn the_least_important_column_drops_first_then_keys_compact() {
        let cols = [
            col("Sym", 0, &[&["BTC/USD"]]),
            col("Price", 0, &[&["68,174.50", "~68.2k"]]),
            col("Age", 2, &[&["3s"]]),
            col("Conf", 1, &[&["0.87"]]),
        ];
        // All fit: 7 + 9 + 3 + 4 and three spaces.
        assert_eq!(fit(&cols, 26, 0).unwrap().kept.len(), 4);
        // One short: Age (rank 2) goes.
        let f = fit(&cols, 25, 0).unwrap();
        assert_eq!(f.kept.iter().map(|k| k.0).collect::<Vec<_>>(), [0, 1, 3]);
        // Only the keys, exact: 7 + 1 + 9.
        let f = fit(&cols, 17, 0).unwrap();
        assert_eq!(f.kept, [(0, 7, 0), (1, 9, 0)]);
        // Narrower: the price takes its compact form.
        let f = fit(&cols, 14, 0).unwrap();
        assert_eq!(f.kept, [(0, 7, 0), (1, 6, 1)]);
        // Narrower still: nothing true fits.
        assert_eq!(fit(&cols, 13, 0), Err(14));
    }

    #[test]
    fn keys_compact_before_the_most_important_columns_drop() {
        let cols = [
            col("Sym", 0, &[&["SHIB/USD"]]),
            col("Size", 0, &[&["41,631,973,355.537056", "~41.6B"]]),
            col("Now", 1, &[&["0.00001234", "1.23e-5"]]),
            col("Left", 2, &[&["9:19"]]),
        ];
        // The size goes compact so that the price stays; the time left (rank 2) drops first.
        let f = fit(&cols, 30, 0).unwrap();
        assert_eq!(f.kept, [(0, 8, 0), (1, 6, 1), (2, 10, 0)]);
        // Room for everything exact: nothing compact.
        let f = fit(&cols, 47, 0).unwrap();
        assert!(f.kept.iter().all(|k| k.2 == 0) && f.kept.len() == 4);
    }

    #[test]
    fn columns_of_one_rank_drop_together() {
        let cols = [
            col("Sym", 0, &[&["ETH/USD"]]),
            col("TP", 3, &[&["2,375.00"]]),
            col("SL", 3, &[&["2,550.00"]]),
            col("Left", 1, &[&["9:19"]]),
        ];
        // Room for the symbol, one exit and the time left: both exits go, not only one.
        let f = fit(&cols, 25, 0).unwrap();
        assert_eq!(f.kept.iter().map(|k| k.0).collect::<Vec<_>>(), [0, 3]);
        // A less important column dropped before them comes back into the room they left.
        let mut cols = cols;
        cols[3].rank = 4;
        let f = fit(&cols, 20, 0).unwrap();
        assert_eq!(f.kept.iter().map(|k| k.0).collect::<Vec<_>>(), [0, 3]);
    }

    #[test]
    fn a_table_whose_key_columns_cannot_fit_says_how_wide_it_needs_to_be() {
        let cols = [
            col("Symbol", 0, &[&["SHIB/USD"]]),
            col("Size", 0, &[&["41,631,973,355.537056", "~41.6B"]]),
        ];
        let draw = Draw {
            header_style: Style::new(),
            highlight: Some((Style::new(), "> ")),
            selected: Some(0),
        };
        let text = |w: u16| {
            let area = Rect::new(0, 0, w, 4);
            let mut buf = Buffer::empty(area);
            render(&cols, area, &draw, &mut buf);
            (0..4)
                .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n")
        };
        // 2 + 8 + 1 + 6 = 17 at the least: one column short, no number is drawn.
        let narrow = text(16);
        assert!(narrow.contains("widen the"), "{narrow}");
        assert!(narrow.contains("needs 17"), "{narrow}");
        assert!(!narrow.contains("41"), "{narrow}");
        let fits = text(17);
        assert!(fits.contains("SHIB/USD ~41.6B"), "{fits}");
    }

    #[test]
    fn text_is_cut_at_a_word_never_inside_a_number() {
        assert_eq!(
            cut_at_word("SELL: bearish signal (0.90)", 40),
            "SELL: bearish signal (0.90)"
        );
        assert_eq!(
            cut_at_word("SELL: bearish signal (0.90) during", 26),
            "SELL: bearish signal…"
        );
        assert_eq!(cut_at_word("confidence 0.8550", 14), "confidence…");
    }
}
