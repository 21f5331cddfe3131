//! The trade history view (`h`): closed trades with their P&L above, the events log below,
//! both searched by what `/` typed. Drawn over the dashboard, from `App` only.

use super::events::{List, render_list};
use super::grid::{self, Col};
use super::pending::visible_rows;
use super::signals::action_style;
use super::{Theme, price_choices, qty_choices, signed_choices};
use crate::app::{EventLine, HistoryPane, HistoryView};
use crate::store::Position;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

/// `11-25 09:58` in UTC: history reaches back further than a day.
pub fn fmt_stamp(ms: i64) -> String {
    match crate::store::to_datetime(ms) {
        Some(t) => t.format("%m-%d %H:%M").to_string(),
        None => "--:-- --:--".into(),
    }
}

fn columns(theme: Theme, rows: &[Position]) -> Vec<Col> {
    let mut closed = Col::new("Closed", 3);
    let mut side = Col::new("Side", 0);
    let mut sym = Col::new("Symbol", 0);
    let mut qty = Col::new("Qty", 2).right();
    let mut entry = Col::new("Entry", 1).right();
    let mut exit = Col::new("Exit", 1).right();
    let mut pnl = Col::new("P&L", 0).right();
    let mut why = Col::new("Why", 4).fill();
    let plain = Style::new();
    for p in rows {
        closed.push(p.closed_at_ms.map(fmt_stamp).unwrap_or_else(|| "—".into()));
        side.push(Span::styled(
            p.side.as_str(),
            action_style(theme, p.side.into()),
        ));
        sym.push(p.symbol.clone());
        qty.push_choices(qty_choices(p.quantity), plain);
        entry.push_choices(price_choices(p.entry_price), plain);
        match p.exit_price {
            Some(x) => exit.push_choices(price_choices(x), plain),
            None => exit.push("—"),
        }
        match p.realized_pnl {
            Some(x) => pnl.push_choices(signed_choices(x), theme.pnl(x)),
            None => pnl.push("—"),
        }
        why.push(Span::styled(
            p.close_reason.clone().unwrap_or_default(),
            theme.dim(),
        ));
    }
    vec![closed, side, sym, qty, entry, exit, pnl, why]
}

/// A count that says when only the newest were loaded: `12` or `5,000 newest of 7,210`.
fn counted(shown: usize, total: usize) -> String {
    if shown < total {
        format!("{shown} newest of {total}")
    } else {
        total.to_string()
    }
}

pub fn render(h: &HistoryView, theme: Theme, screen: Rect, buf: &mut Buffer) {
    // Everything but the footer, which keeps showing the keys.
    let area = Rect {
        height: screen.height.saturating_sub(1),
        ..screen
    };
    Clear.render(area, buf);
    let search = if h.searching {
        format!("  search: {}▏", h.query)
    } else if !h.asked.is_empty() {
        format!("  search: {:?}", h.asked)
    } else {
        String::new()
    };
    let block = theme.block(format!("Trade history (UTC){search}"), true);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(data) = &h.data else {
        Paragraph::new(Span::styled("loading…", theme.dim())).render(inner, buf);
        return;
    };
    let realized: f64 = data.closed.iter().filter_map(|p| p.realized_pnl).sum();
    let [summary, top, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(45),
        Constraint::Fill(1),
    ])
    .areas(inner);
    Paragraph::new(format!(
        "{} closed · realized P&L of those shown {} · {} events",
        counted(data.closed.len(), data.closed_total),
        crate::domain::money::fmt_signed(realized),
        counted(data.events.len(), data.events_total),
    ))
    .wrap(Wrap { trim: true })
    .render(summary, buf);

    // Closed trades.
    let focused = h.pane == HistoryPane::Closed;
    let rows = super::table_rows(top);
    let title = super::titled(
        "Closed trades",
        data.closed.len(),
        Some(h.closed_cursor),
        rows,
    );
    let frame = theme.block(title, focused);
    let table = frame.inner(top);
    frame.render(top, buf);
    if data.closed.is_empty() {
        Paragraph::new(Span::styled("no closed trades", theme.dim())).render(table, buf);
    } else {
        let cursor = h.closed_cursor.min(data.closed.len() - 1);
        let shown = visible_rows(data.closed.len(), Some(cursor), rows);
        let cols = columns(theme, &data.closed[shown.clone()]);
        grid::render(
            &cols,
            table,
            &theme.table_draw(focused, Some(cursor - shown.start)),
            buf,
        );
    }

    // The events log.
    let lines: Vec<EventLine> = data
        .events
        .iter()
        .map(|e| EventLine {
            at_ms: e.at_ms,
            level: e.level.clone(),
            message: e.message.clone(),
        })
        .collect();
    render_list(
        &List {
            events: &lines,
            cursor: h.events_cursor,
            focused: h.pane == HistoryPane::Events,
            name: "Events",
            total: data.events_total,
            stamp: fmt_stamp,
            empty: "no events",
        },
        theme,
        bottom,
        buf,
    );
}
