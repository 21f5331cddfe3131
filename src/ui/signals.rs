//! The signals table: per symbol, price, ML direction, AMD phase and the last decision.

use super::{Theme, fmt_conf};
use crate::app::{App, Reading, fmt_age};
use crate::domain::{Direction, Verdict};
use crate::store::Status;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, Widget};

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
) -> Cell<'static> {
    match r {
        Reading::Known { value, confidence } => {
            let mut spans = vec![Span::styled(value.to_string(), style(value))];
            if let Some(c) = confidence {
                spans.push(Span::raw(format!(" {}", fmt_conf(*c))));
            }
            Cell::from(Line::from(spans))
        }
        Reading::Failed(_) => Cell::from(Span::styled("error", theme.bad())),
        Reading::Unknown => Cell::from(Span::styled("—", theme.dim())),
    }
}

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let wide = area.width >= super::WIDE;
    // Inside the frame, below the header: build only the rows on screen.
    let shown = area.height.saturating_sub(3) as usize;
    let rows: Vec<Row> = app
        .signal_rows()
        .into_iter()
        .take(shown)
        .map(|r| {
            let mut cells = vec![
                Cell::from(Span::styled(r.symbol.clone(), theme.bold())),
                Cell::from(
                    Line::from(
                        r.price
                            .map(|p| super::price_cell(p, 12))
                            .unwrap_or_else(|| "—".into()),
                    )
                    .right_aligned(),
                ),
                reading(&r.ml, |d| direction_style(theme, *d), theme),
                reading(&r.amd, |_| Style::new(), theme),
            ];
            match &r.last {
                Some(l) => {
                    let mut spans = vec![Span::styled(
                        l.action.as_str(),
                        action_style(theme, l.action),
                    )];
                    if l.status != Status::Hold {
                        spans.push(Span::raw(format!(" {}", l.status.as_str())));
                    }
                    cells.push(Cell::from(Line::from(spans)));
                    cells.push(Cell::from(
                        Line::from(fmt_age(app.now_ms, l.at_ms)).right_aligned(),
                    ));
                    if wide {
                        cells.push(Cell::from(Span::styled(l.reasoning.clone(), theme.dim())));
                    }
                }
                None => {
                    cells.push(Cell::from(Span::styled("—", theme.dim())));
                    cells.push(Cell::from(""));
                }
            }
            Row::new(cells)
        })
        .collect();
    let mut header = vec![
        "Symbol",
        "Price",
        "ML signal",
        "AMD phase",
        "Last decision",
        "Age",
    ];
    let mut widths = vec![
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(13),
        Constraint::Length(17),
        Constraint::Length(16),
        Constraint::Length(4),
    ];
    if wide {
        header.push("Why");
        widths.push(Constraint::Fill(1));
    }
    let header = Row::new(header.into_iter().map(Cell::from)).style(theme.header_row());
    Table::new(rows, widths)
        .header(header)
        .block(theme.block(format!("Signals ({})", app.settings.symbols.len()), false))
        .render(area, buf);
}
