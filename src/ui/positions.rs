//! Open positions with unrealized P&L and the distance to take-profit and stop-loss. A
//! trailing stop's `SL` is the stop where the trail has moved it, and a `Trail` column (shown
//! while any position trails, dropped with the distances when the pane is narrow) says by how
//! much it follows the best price: `1%`, or an amount in price units.

use super::grid::{self, Col};
use super::pending::visible_rows;
use super::signals::action_style;
use super::{Theme, fmt_pct, price_choices, qty_choices, signed_choices};
use crate::app::{App, Focus, fmt_age};
use crate::store::Position;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Widget};

/// Side, symbol, quantity and P&L stay; the rest drop from the right of their rank.
/// With a real broker a `Stops` column says who holds each position's exits (the engine
/// watching prices, or the broker's protective orders), and the positions the broker holds that
/// this program did not open follow as `external` rows: shown, never selectable, never touched.
fn columns(
    app: &App,
    theme: Theme,
    rows: &[Position],
    external: &[crate::broker::Holding],
    broker: bool,
) -> Vec<Col> {
    let mut side = Col::new("Side", 0);
    let mut sym = Col::new("Symbol", 0);
    let mut qty = Col::new("Qty", 0).right();
    let mut entry = Col::new("Entry", 2).right();
    let mut last_c = Col::new("Last", 1).right();
    let mut pnl_c = Col::new("P&L", 0).right();
    let mut to_tp = Col::new("to TP", 3).right();
    let mut to_sl = Col::new("to SL", 3).right();
    let mut tp = Col::new("TP", 4).right();
    let mut sl = Col::new("SL", 4).right();
    let mut age = Col::new("Age", 5).right();
    let mut trail = Col::new("Trail", 3).right();
    let trails = rows.iter().any(|p| p.trail.is_some());
    // An external row is told apart by this column: it stays while any is shown.
    let mut stops = Col::new("Stops", if external.is_empty() { 2 } else { 0 });
    let plain = Style::new();
    for p in rows {
        let last = app.price(&p.symbol);
        side.push(Span::styled(
            p.side.as_str(),
            action_style(theme, p.side.into()),
        ));
        sym.push(p.symbol.clone());
        qty.push_choices(qty_choices(p.quantity), plain);
        entry.push_choices(price_choices(p.entry_price), plain);
        tp.push_choices(price_choices(p.take_profit), plain);
        sl.push_choices(price_choices(p.stop_loss), plain);
        age.push(fmt_age(app.now_ms, p.opened_at_ms));
        trail.push(p.trail.map(|t| t.to_string()).unwrap_or_default());
        stops.push(p.exits_held_by.as_str());
        match last.zip(p.unrealized_pnl(last)) {
            Some((l, pnl)) => {
                last_c.push_choices(price_choices(l), plain);
                pnl_c.push_choices(signed_choices(pnl), theme.pnl(pnl));
                to_tp.push(fmt_pct((p.take_profit - l).abs() / l * 100.0));
                to_sl.push(fmt_pct((p.stop_loss - l).abs() / l * 100.0));
            }
            None => {
                for c in [&mut last_c, &mut pnl_c, &mut to_tp, &mut to_sl] {
                    c.push("—");
                }
            }
        }
    }
    for h in external {
        let last = app.price(&h.symbol);
        side.push(Span::styled(h.side.as_str(), theme.dim()));
        sym.push(Span::styled(h.symbol.clone(), theme.dim()));
        qty.push_choices(qty_choices(h.quantity), theme.dim());
        entry.push_choices(price_choices(h.avg_entry_price), theme.dim());
        match last {
            Some(l) => {
                last_c.push_choices(price_choices(l), theme.dim());
                let pnl = crate::domain::money::round_dp(
                    crate::domain::lifecycle::pnl(h.side, h.quantity, h.avg_entry_price, l),
                    2,
                );
                pnl_c.push_choices(signed_choices(pnl), theme.dim());
            }
            None => {
                last_c.push("—");
                pnl_c.push("—");
            }
        }
        for c in [
            &mut to_tp, &mut to_sl, &mut tp, &mut sl, &mut trail, &mut age,
        ] {
            c.push("");
        }
        stops.push(Span::styled("external", theme.warn()));
    }
    let mut cols = vec![
        side, sym, qty, entry, last_c, pnl_c, to_tp, to_sl, tp, sl, age,
    ];
    if trails {
        cols.insert(10, trail);
    }
    if broker {
        cols.insert(6, stops);
    }
    cols
}

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let focused = app.focus == Focus::Positions;
    let positions = app.positions();
    let broker = app.snapshot.as_ref().and_then(|s| s.broker.as_ref());
    let external = broker.map(|b| b.external.as_slice()).unwrap_or_default();
    let selected = app.selected_position_index();
    let block = theme.block(
        super::titled(
            "Open positions",
            positions.len(),
            selected,
            super::table_rows(area),
        ),
        focused,
    );
    let inner = block.inner(area);
    block.render(area, buf);
    if positions.is_empty() && external.is_empty() {
        Paragraph::new(Span::styled("no open positions", theme.dim())).render(inner, buf);
        return;
    }
    let shown = visible_rows(
        positions.len(),
        selected,
        inner.height.saturating_sub(1) as usize,
    );
    // External rows follow the last page of this program's own positions.
    let room = (inner.height.saturating_sub(1) as usize).saturating_sub(shown.len());
    let external = if shown.end == positions.len() {
        &external[..external.len().min(room)]
    } else {
        &[]
    };
    let cols = columns(
        app,
        theme,
        &positions[shown.clone()],
        external,
        broker.is_some(),
    );
    grid::render(
        &cols,
        inner,
        &theme.table_draw(focused, selected.map(|i| i - shown.start)),
        buf,
    );
}
