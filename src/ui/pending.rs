//! Pending decisions, and the selected one's reasoning and risk/reward.

use super::signals::action_style;
use super::{Theme, fmt_conf, fmt_pct, price_cell, qty_cell};
use crate::app::{App, Focus, fmt_age};
use crate::domain::money::{fmt_money, fmt_qty};
use crate::store::DecisionLog;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Cell, HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap,
};
use std::ops::Range;

/// The rows a table of one-line rows shows in `height` lines, keeping `selected` in view, the
/// way ratatui's `Table` picks them from offset 0. A frame builds only these rows, so a table of
/// hundreds costs what the screen shows.
pub fn visible_rows(len: usize, selected: Option<usize>, height: usize) -> Range<usize> {
    if len == 0 {
        return 0..0;
    }
    let end = match selected {
        Some(sel) => height.max(sel.min(len - 1) + 1),
        None => height,
    }
    .min(len);
    let start = match selected {
        Some(sel) if sel.min(len - 1) >= height => end - height.max(1),
        _ => 0,
    };
    start..end
}

/// The width the table needs; the detail box takes the rest of a wide terminal.
pub const TABLE_WIDTH: u16 = 78;

fn price(x: Option<f64>) -> String {
    x.map(|p| price_cell(p, 10)).unwrap_or_else(|| "—".into())
}

fn row(app: &App, theme: Theme, d: &DecisionLog) -> Row<'static> {
    let dec = &d.decision;
    let right = |s: String| Cell::from(Line::from(s).right_aligned());
    Row::new(vec![
        Cell::from(Span::styled(
            dec.action.as_str(),
            action_style(theme, dec.action),
        )),
        Cell::from(dec.symbol.clone()),
        right(fmt_conf(dec.confidence)),
        right(price(dec.entry_price)),
        right(price(dec.take_profit)),
        right(price(dec.stop_loss)),
        right(qty_cell(dec.position_size, 10)),
        right(
            dec.risk_reward
                .map(|r| fmt_conf(r.risk_reward_ratio))
                .unwrap_or_else(|| "—".into()),
        ),
        right(fmt_age(app.now_ms, d.created_at_ms)),
    ])
}

/// `with_detail`: the detail box is drawn beside the table, so no reasoning line inside.
pub fn render(app: &App, theme: Theme, area: Rect, with_detail: bool, buf: &mut Buffer) {
    let focused = app.focus == Focus::Pending;
    let pending = app.pending();
    let block = theme.block(format!("Pending decisions ({})", pending.len()), focused);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if pending.is_empty() {
        let text = if app.snapshot.is_none() {
            "loading…"
        } else {
            "no pending decisions: actionable signals appear here for y (confirm) or n (cancel)"
        };
        Paragraph::new(Span::styled(text, theme.dim()))
            .wrap(Wrap { trim: true })
            .render(inner, buf);
        return;
    }
    // Without the detail box beside it, the table's last line tells why.
    let narrow = !with_detail && inner.height >= 4;
    let (table_area, why_area) = if narrow {
        let [t, w] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
        (t, w)
    } else {
        (inner, Rect::default())
    };
    let header = Row::new(
        [
            "Act", "Symbol", "Conf", "Entry", "TP", "SL", "Size", "R:R", "Age",
        ]
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            if i >= 2 {
                Cell::from(Line::from(h).right_aligned())
            } else {
                Cell::from(h)
            }
        }),
    )
    .style(theme.header_row());
    let widths = [
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(4),
        Constraint::Length(4),
    ];
    // Below the header: build only the rows on screen (there may be hundreds).
    let selected = app.selected_pending_index();
    let shown = visible_rows(
        pending.len(),
        selected,
        table_area.height.saturating_sub(1) as usize,
    );
    let rows: Vec<Row> = pending[shown.clone()]
        .iter()
        .map(|d| row(app, theme, d))
        .collect();
    let mut state = TableState::default().with_selected(selected.map(|i| i - shown.start));
    StatefulWidget::render(
        Table::new(rows, widths)
            .header(header)
            .row_highlight_style(theme.selected(focused))
            .highlight_symbol(if focused { "▶ " } else { "▷ " })
            .highlight_spacing(HighlightSpacing::Always),
        table_area,
        buf,
        &mut state,
    );
    if narrow && let Some(d) = app.selected_pending_log() {
        let mut spans = vec![Span::styled("why ", theme.bold())];
        if let Some(rr) = d.decision.risk_reward {
            spans.push(Span::raw(format!(
                "risk {} reward {} · ",
                fmt_money(rr.risk_amount),
                fmt_money(rr.reward_amount)
            )));
        }
        spans.push(Span::styled(d.decision.reasoning.clone(), theme.dim()));
        Paragraph::new(Line::from(spans)).render(why_area, buf);
    }
}

/// The selected decision in full: ids, risk/reward and the reasoning.
pub fn render_detail(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let block = theme.block("Selected decision".into(), false);
    let Some(d) = app.selected_pending_log() else {
        Paragraph::new(Span::styled("nothing selected", theme.dim()))
            .block(block)
            .render(area, buf);
        return;
    };
    let dec = &d.decision;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(dec.action.as_str(), action_style(theme, dec.action)),
            Span::styled(format!(" {}", dec.symbol), theme.bold()),
            Span::raw(format!(
                " · conf {} · {} · {}",
                fmt_conf(dec.confidence),
                d.origin.as_str(),
                d.mode
            )),
        ]),
        Line::from(Span::styled(d.log_id.clone(), theme.dim())),
    ];
    if let Some(rr) = dec.risk_reward {
        lines.push(Line::from(vec![
            Span::raw("risk   "),
            Span::styled(fmt_money(rr.risk_amount), theme.bad()),
            Span::raw(format!(
                " ({})  R:R {}",
                fmt_pct(rr.risk_percent),
                fmt_conf(rr.risk_reward_ratio)
            )),
        ]));
        lines.push(Line::from(vec![
            Span::raw("reward "),
            Span::styled(fmt_money(rr.reward_amount), theme.good()),
            Span::raw(format!(" ({})", fmt_pct(rr.reward_percent))),
        ]));
    }
    let value = dec.entry_price.map(|e| e * dec.position_size);
    lines.push(Line::from(format!(
        "size {} · value {}",
        fmt_qty(dec.position_size),
        value.map(fmt_money).unwrap_or_else(|| "—".into())
    )));
    lines.push(Line::from(""));
    lines.push(Line::from(dec.reasoning.clone()));
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(block)
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::visible_rows;
    use ratatui::buffer::Buffer;
    use ratatui::layout::{Constraint, Rect};
    use ratatui::widgets::{HighlightSpacing, Row, StatefulWidget, Table, TableState};

    fn table(rows: impl Iterator<Item = usize>) -> Table<'static> {
        Table::new(
            rows.map(|i| Row::new(vec![format!("row {i}")])),
            [Constraint::Length(8)],
        )
        .header(Row::new(vec!["head"]))
        .highlight_symbol("> ")
        .highlight_spacing(HighlightSpacing::Always)
    }

    #[test]
    fn only_the_visible_rows_render_the_same_as_all_of_them() {
        for len in 0..8 {
            for height in 0..6u16 {
                for selected in std::iter::once(None).chain((0..len + 2).map(Some)) {
                    let area = Rect::new(0, 0, 10, height);
                    let mut all = Buffer::empty(area);
                    let mut state = TableState::default().with_selected(selected);
                    StatefulWidget::render(table(0..len), area, &mut all, &mut state);

                    let window = visible_rows(len, selected, height.saturating_sub(1) as usize);
                    let mut some = Buffer::empty(area);
                    let mut state =
                        TableState::default().with_selected(selected.map(|s| s - window.start));
                    StatefulWidget::render(table(window.clone()), area, &mut some, &mut state);
                    assert_eq!(all, some, "len {len} height {height} selected {selected:?}");
                }
            }
        }
    }
}
