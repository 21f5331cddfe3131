//! The signals table: per symbol, price, the signal (the ML engine's or the analyzer's: its
//! direction and score), the AMD phase and its score, and the last decision.

use super::grid::{self, Col};
use super::pending::visible_rows;
use super::{Theme, fmt_pct, price_choices};
use crate::app::{App, Focus, Reading, fmt_age};
use crate::domain::score::fmt_score;
use crate::domain::{Direction, Verdict};
use crate::store::{PricePoint, Status};
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
                spans.push(Span::raw(format!(" {}", fmt_score(*c))));
            }
            Line::from(spans)
        }
        Reading::Failed(_) => Line::from(Span::styled("error", theme.bad())),
        Reading::Unknown => Line::from(Span::styled("—", theme.dim())),
    }
}

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let focused = app.focus == Focus::Signals;
    let all = app.signal_symbols();
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
    let mut change = Col::new("Change", 4).right();
    let mut trend = Col::new("Trend", 6);
    // Whose signal it is: the built-in analyzer's on the simulated market, else the ML engine's.
    let mut ml = Col::new(
        if app.settings.simulated {
            "Analyzer score"
        } else {
            "ML score"
        },
        1,
    );
    let mut amd = Col::new("AMD phase score", 2);
    let mut last = Col::new("Last decision", 3);
    let mut age = Col::new("Age", 5).right();
    let mut why = Col::new("Why", 7).fill();
    for r in all[shown.clone()].iter().map(|s| app.signal_row(s)) {
        sym.push(Span::styled(r.symbol.clone(), theme.bold()));
        // A stale price says so, in every form it may take.
        let stale = app.price_is_stale(&r.symbol);
        price.push_choices(
            r.price.map_or_else(
                || vec!["—".into()],
                |p| {
                    let forms = price_choices(p);
                    if stale {
                        forms.into_iter().map(|f| format!("{f} stale")).collect()
                    } else {
                        forms
                    }
                },
            ),
            if stale { theme.warn() } else { Style::new() },
        );
        let points = trend_points(app, &r.symbol);
        match (points.first(), points.last()) {
            (Some(first), Some(end)) if points.len() >= 2 && first.price > 0.0 => {
                let pct = (end.price - first.price) / first.price * 100.0;
                change.push(Line::from(vec![
                    Span::styled(
                        format!("{}{}", if pct > 0.0 { "+" } else { "" }, fmt_pct(pct)),
                        theme.pnl(pct),
                    ),
                    Span::styled(format!(" {}", fmt_age(end.at_ms, first.at_ms)), theme.dim()),
                ]));
                trend.push(Span::styled(sparkline(&points), theme.pnl(pct)));
            }
            _ => {
                change.push(Span::styled("—", theme.dim()));
                trend.push(Span::styled("—", theme.dim()));
            }
        }
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
    grid::render(
        &[sym, price, change, trend, ml, amd, last, age, why],
        inner,
        &draw,
        buf,
    );
}

/// The recent prices of `symbol` the trend draws, oldest first: the store's ticks (at most
/// one a minute), then the latest price when it is newer than the last tick.
pub fn trend_points(app: &App, symbol: &str) -> Vec<PricePoint> {
    let Some(snap) = &app.snapshot else {
        return Vec::new();
    };
    let mut points: Vec<PricePoint> = snap.trends.get(symbol).cloned().unwrap_or_default();
    if let Some(latest) = snap.prices.get(symbol)
        && points.last().is_none_or(|p| p.at_ms < latest.at_ms)
    {
        points.push(*latest);
    }
    let skip = points.len().saturating_sub(crate::desk::TREND_POINTS);
    points.split_off(skip)
}

/// Prices as a line of block characters from `▁` (the lowest shown) to `█` (the highest).
pub fn sparkline(points: &[PricePoint]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = points.iter().map(|p| p.price).fold(f64::INFINITY, f64::min);
    let hi = points
        .iter()
        .map(|p| p.price)
        .fold(f64::NEG_INFINITY, f64::max);
    points
        .iter()
        .map(|p| {
            if hi > lo {
                let level = ((p.price - lo) / (hi - lo) * 7.0).round() as usize;
                BARS[level.min(7)]
            } else {
                BARS[3]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(prices: &[f64]) -> Vec<PricePoint> {
        prices
            .iter()
            .enumerate()
            .map(|(i, p)| PricePoint {
                price: *p,
                at_ms: i as i64 * 60_000,
                bid: None,
                ask: None,
            })
            .collect()
    }

    #[test]
    fn the_sparkline_spans_lowest_to_highest() {
        assert_eq!(sparkline(&points(&[1.0, 2.0, 3.0, 8.0])), "▁▂▃█");
        assert_eq!(sparkline(&points(&[5.0, 5.0, 5.0])), "▄▄▄");
        assert_eq!(
            sparkline(&points(&[0.000_012_34, 0.000_012_01])),
            "█▁",
            "a fraction of a cent moves the line like any price"
        );
    }
}
