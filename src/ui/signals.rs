//! The signals table: per symbol, price, ML direction, AMD phase and the last decision.

use super::grid::{self, Col};
use super::pending::visible_rows;
use super::{Theme, fmt_conf, price_choices};
use crate::app::{App, Focus, Reading, fmt_age};
use crate::domain::{Direction, Verdict};
use crate::store::Status;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

fn direction_style(theme: Theme, d: Direction) -> Style {
    match d {
        Direction::Bullish => theme.good(),
        Direction::Bearish => theme.bad(),
        Direction::Neutral => theme.fg(Color::Gray),
    }
}

pub fn action_style(theme: Theme, a: Verdict) -> Style {
    match a {
        Verdict::Buy => theme.good().patch(theme.bold()),
        Verdict::Sell => theme.bad().patch(theme.bold()),
        Verdict::Hold => theme.dim(),
    }
}

fn reading<T: std::fmt::Display>(
    r: &Reading<T>,
    style: impl Fn(&T) -> Style,
    theme: Theme,
) -> Line<'static> {
    match r {
        Reading::Known { value, confidence } => {
            let mut spans = vec![Span::styled(value.to_string(), style(value))];
            if let Some(c) = confidence {
                spans.push(Span::raw(format!(" {}", fmt_conf(*c))));
            }
            Line::from(spans)
        }
        Reading::Failed(_) => Line::from(Span::styled("error", theme.bad())),
        Reading::Unknown => Line::from(Span::styled("—", theme.dim())),
    }
}

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let focused = app.focus == Focus::Signals;
    let all = app.signal_rows();
    let cursor = (!all.is_empty()).then(|| app.signals_cursor.min(all.len() - 1));
    let mut title = super::titled("Signals", all.len(), cursor, super::table_rows(area));
    if app.filtering || !app.filter.is_empty() {
        title = format!(
            "{title} /{}{}",
            app.filter,
            if app.filtering { "▏" } else { "" }
        );
    }
    let block = theme.block(title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    if all.is_empty() {
        let text = format!("no symbol contains {:?}: Esc clears the filter", app.filter);
        Paragraph::new(Span::styled(text, theme.dim())).render(inner, buf);
        return;
    }
    // Below the header: build only the rows on screen.
    let shown = visible_rows(all.len(), cursor, inner.height.saturating_sub(1) as usize);
    let mut sym = Col::new("Symbol", 0);
    let mut price = Col::new("Price", 0).right();
    let mut ml = Col::new("ML signal", 1);
    let mut amd = Col::new("AMD phase", 2);
    let mut last = Col::new("Last decision", 3);
    let mut age = Col::new("Age", 4).right();
    let mut why = Col::new("Why", 5).fill();
    for r in &all[shown.clone()] {
        sym.push(Span::styled(r.symbol.clone(), theme.bold()));
        price.push_choices(
            r.price.map_or_else(|| vec!["—".into()], price_choices),
            Style::new(),
        );
        ml.push(reading(&r.ml, |d| direction_style(theme, *d), theme));
        amd.push(reading(&r.amd, |_| Style::new(), theme));
        match &r.last {
            Some(l) => {
                let mut spans = vec![Span::styled(
                    l.action.as_str(),
                    action_style(theme, l.action),
                )];
                if l.status != Status::Hold {
                    spans.push(Span::raw(format!(" {}", l.status.as_str())));
                }
                last.push(Line::from(spans));
                age.push(fmt_age(app.now_ms, l.at_ms));
                why.push(Span::styled(l.reasoning.clone(), theme.dim()));
            }
            None => {
                last.push(Span::styled("—", theme.dim()));
                age.push("");
                why.push("");
            }
        }
    }
    let draw = if focused {
        theme.table_draw(true, cursor.map(|c| c - shown.start))
    } else {
        grid::Draw {
            header_style: theme.header_row(),
            highlight: None,
            selected: None,
        }
    };
    grid::render(&[sym, price, ml, amd, last, age, why], inner, &draw, buf);
}
