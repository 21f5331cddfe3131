//! Open positions with unrealized P&L and the distance to take-profit and stop-loss.

use super::signals::action_style;
use super::{Theme, fmt_pct, price_cell, qty_cell};
use crate::app::{App, Focus, fmt_age};
use crate::domain::money::fmt_signed;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Cell, HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget,
};

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let focused = app.focus == Focus::Positions;
    let positions = app.positions();
    let block = theme.block(format!("Open positions ({})", positions.len()), focused);
    if positions.is_empty() {
        Paragraph::new(Span::styled("no open positions", theme.dim()))
            .block(block)
            .render(area, buf);
        return;
    }
    let wide = area.width >= super::WIDE;
    let right = |s: String| Cell::from(Line::from(s).right_aligned());
    let rows: Vec<Row> = positions
        .iter()
        .map(|p| {
            let last = app.price(&p.symbol);
            let mut cells = vec![
                Cell::from(Span::styled(
                    p.side.as_str(),
                    action_style(theme, p.side.into()),
                )),
                Cell::from(p.symbol.clone()),
                right(qty_cell(p.quantity, 10)),
                right(price_cell(p.entry_price, 10)),
                right(
                    last.map(|l| price_cell(l, 10))
                        .unwrap_or_else(|| "—".into()),
                ),
            ];
            match last.zip(p.unrealized_pnl(last)) {
                Some((l, pnl)) => {
                    cells.push(Cell::from(
                        Line::from(Span::styled(
                            super::fit(10, [fmt_signed(pnl), format!("{pnl:+.0}")]),
                            theme.pnl(pnl),
                        ))
                        .right_aligned(),
                    ));
                    cells.push(right(fmt_pct((p.take_profit - l).abs() / l * 100.0)));
                    cells.push(right(fmt_pct((p.stop_loss - l).abs() / l * 100.0)));
                }
                _ => cells.extend([right("—".into()), right("—".into()), right("—".into())]),
            }
            if wide {
                cells.push(right(price_cell(p.take_profit, 10)));
                cells.push(right(price_cell(p.stop_loss, 10)));
                cells.push(right(fmt_age(app.now_ms, p.opened_at_ms)));
            }
            Row::new(cells)
        })
        .collect();
    let mut header = vec![
        "Side", "Symbol", "Qty", "Entry", "Last", "P&L", "to TP", "to SL",
    ];
    let mut widths = vec![
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    if wide {
        header.extend(["TP", "SL", "Age"]);
        widths.extend([
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(4),
        ]);
    }
    let header = Row::new(header.into_iter().enumerate().map(|(i, h)| {
        if i >= 2 {
            Cell::from(Line::from(h).right_aligned())
        } else {
            Cell::from(h)
        }
    }))
    .style(theme.header_row());
    let mut state = TableState::default().with_selected(app.selected_position_index());
    StatefulWidget::render(
        Table::new(rows, widths)
            .header(header)
            .block(block)
            .row_highlight_style(theme.selected(focused))
            .highlight_symbol(if focused { "▶ " } else { "▷ " })
            .highlight_spacing(HighlightSpacing::Always),
        area,
        buf,
        &mut state,
    );
}
