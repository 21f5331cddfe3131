//! The report without `--json`: tables, and the equity and drawdown charts drawn by ratatui's
//! `Chart` (braille) into an off-screen buffer and printed as plain text.

use super::csv::{CandleSeries, format_interval, format_time_ms};
use super::replay::{Outcome, Settings};
use super::report::{Report, drawdown_series};
use crate::domain::money::{fmt_fixed, fmt_money, fmt_signed};
use crate::domain::rules::{self, fmt_num};
use crate::domain::{Direction, Phase};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Widget};
use std::fmt::Write;

const DIRECTIONS: [Direction; 3] = [Direction::Bullish, Direction::Bearish, Direction::Neutral];

fn pct(x: f64) -> String {
    format!("{} %", fmt_fixed(x, 2))
}

fn count(n: usize) -> String {
    fmt_fixed(n as f64, 0)
}

fn win_rate(r: f64, trades: usize) -> String {
    if trades == 0 {
        "—".into()
    } else {
        format!("{:.1} %", r * 100.0)
    }
}

/// The whole report, `width` columns wide (the charts use it; the text fits in 100).
pub fn render(
    path: &str,
    series: &CandleSeries,
    settings: &Settings,
    outcome: &Outcome,
    report: &Report,
    width: u16,
) -> String {
    let mut o = String::new();
    let s = &report.summary;
    let first = series.times_ms.first().copied().unwrap_or(0);
    let last = series.times_ms.last().copied().unwrap_or(0);
    let interval = series
        .interval_ms
        .map_or_else(|| "?".to_string(), format_interval);
    let order = match series.order {
        super::csv::RowOrder::Ascending => "oldest first",
        super::csv::RowOrder::Descending => "newest first",
        super::csv::RowOrder::Unordered => "out of order, sorted",
    };
    let _ = writeln!(o, "Backtest {} — {path}", report.symbol);
    let _ = writeln!(
        o,
        "  {} candles of {interval} ({}, {order}), {} → {}",
        count(report.candles),
        series.time_kind.describe(),
        format_time_ms(first),
        format_time_ms(last)
    );
    let _ = writeln!(
        o,
        "  rules: min_confidence {}, risk {} % of {} a trade, position cap {} %,",
        fmt_num(settings.risk.min_confidence),
        fmt_num(settings.risk.max_risk_percent),
        fmt_money(settings.risk.account_size),
        fmt_num(settings.risk.max_position_percent),
    );
    let _ = writeln!(
        o,
        "         fee {} % a side, slippage {} % a fill; every actionable decision is taken",
        fmt_num(settings.fee_percent),
        fmt_num(settings.slippage_percent)
    );
    if !series.gaps.is_empty() {
        let g = series.gaps.iter().max_by_key(|g| g.missing);
        if let Some(g) = g {
            let _ = writeln!(
                o,
                "  data: {} gaps in time (largest: {} bars missing before line {}); bars are replayed as consecutive",
                count(series.gaps.len()),
                count(g.missing as usize),
                g.line
            );
        }
    }

    let _ = writeln!(o, "\nSummary");
    let rows: Vec<(&str, String)> = vec![
        (
            "Trades",
            format!(
                "{}, {} won ({})",
                count(s.trades),
                count(s.wins),
                win_rate(s.win_rate, s.trades)
            ),
        ),
        (
            "Equity",
            format!(
                "{} → {}  ({}{})",
                fmt_money(s.start_equity),
                fmt_money(s.final_equity),
                if s.total_return_percent > 0.0 {
                    "+"
                } else {
                    ""
                },
                pct(s.total_return_percent)
            ),
        ),
        ("Max drawdown", pct(s.max_drawdown_percent)),
        ("Sharpe", format!("{:.2} (annualized)", s.sharpe)),
        (
            "Profit factor",
            s.profit_factor
                .map_or_else(|| "∞ (no losing trade)".into(), |p| format!("{p:.2}")),
        ),
        ("Fees paid", fmt_money(s.fees_paid)),
        (
            "Decisions",
            format!(
                "{} bars decided, {} actionable: {} filled,",
                count(outcome.decisions.decided),
                count(outcome.decisions.actionable),
                count(outcome.decisions.filled),
            ),
        ),
        (
            "",
            format!(
                "{} expired (the next open was past TP/SL), {} on the last bar,",
                count(outcome.decisions.expired),
                count(outcome.decisions.unfilled_at_end)
            ),
        ),
        (
            "",
            format!(
                "{} refused at the open (over the cap or the risk limit)",
                count(outcome.decisions.refused)
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(o, "  {k:<14} {v}");
    }
    let exits = ["take_profit", "stop_loss", "end"]
        .map(|r| outcome.trades.iter().filter(|t| t.exit_reason == r).count());
    let _ = writeln!(
        o,
        "  {:<14} {} take-profit, {} stop-loss, {} open at the end",
        "Exits",
        count(exits[0]),
        count(exits[1]),
        count(exits[2])
    );

    let _ = writeln!(o, "\nBy AMD phase");
    let _ = writeln!(
        o,
        "  {:<14} {:>7} {:>9} {:>12}",
        "phase", "trades", "win rate", "P&L"
    );
    for p in Phase::ALL {
        let g = report.by_phase.get(p);
        let _ = writeln!(
            o,
            "  {:<14} {:>7} {:>9} {:>12}",
            p.as_str(),
            count(g.trades),
            win_rate(g.win_rate, g.trades),
            if g.trades == 0 {
                "—".into()
            } else {
                fmt_signed(g.pnl)
            }
        );
    }

    let _ = writeln!(o, "\nBy matrix cell (ML direction × AMD phase)");
    let _ = writeln!(
        o,
        "  {:<9} {:<12} {:<10} {:>9} {:>5} {:>7} {:>7} {:>8} {:>12}",
        "direction", "phase", "rule", "bars", "conf", "action", "trades", "win rate", "P&L"
    );
    for d in DIRECTIONS {
        for p in Phase::ALL {
            let cell = outcome.cells[d as usize][p as usize];
            // The rule's own output names the cell: action and factor (or fixed confidence).
            let (action, factor) = rules::matrix(d, p, 1.0);
            let rule = if action.is_actionable() {
                format!("{} ×{:.2}", action.as_str(), factor)
            } else {
                format!("HOLD {:.2}", factor)
            };
            let ts: Vec<_> = outcome
                .trades
                .iter()
                .filter(|t| t.direction == d && t.phase == p)
                .collect();
            let wins = ts.iter().filter(|t| t.pnl > 0.0).count();
            let pnl: f64 = ts.iter().map(|t| t.pnl).sum();
            let avg = if cell.bars > 0 {
                format!("{:.2}", cell.confidence_sum / cell.bars as f64)
            } else {
                "—".into()
            };
            let _ = writeln!(
                o,
                "  {:<9} {:<12} {:<10} {:>9} {:>5} {:>7} {:>7} {:>8} {:>12}",
                d.as_str(),
                p.as_str(),
                rule,
                count(cell.bars),
                avg,
                count(cell.actionable),
                count(ts.len()),
                win_rate(
                    if ts.is_empty() {
                        0.0
                    } else {
                        wins as f64 / ts.len() as f64
                    },
                    ts.len()
                ),
                if ts.is_empty() {
                    "—".into()
                } else {
                    fmt_signed(pnl)
                }
            );
        }
    }
    let _ = writeln!(
        o,
        "  (conf: mean decision confidence of the cell's bars; action: decisions that passed every rule)"
    );

    let _ = writeln!(o, "\nCalibration (decision confidence → outcome)");
    let _ = writeln!(
        o,
        "  {:<13} {:>7} {:>9}",
        "confidence", "trades", "win rate"
    );
    for b in &report.calibration {
        let _ = writeln!(
            o,
            "  {:<13} {:>7} {:>9}",
            format!("{:.2}–{:.2}", b.confidence_min, b.confidence_max),
            count(b.trades),
            win_rate(b.win_rate, b.trades)
        );
    }
    let _ = writeln!(
        o,
        "  (the confidence is an uncalibrated score: compare each bucket's win rate with the others)"
    );

    if !outcome.equity.is_empty() {
        let xs = (first, last);
        let _ = writeln!(o, "\nEquity (marked to market at each close)");
        o.push_str(&chart(&outcome.equity, xs, width, 14, false));
        let _ = writeln!(o, "\nDrawdown (% below the running peak)");
        let dd = drawdown_series(outcome.start_equity, &outcome.equity);
        o.push_str(&chart(&dd, xs, width, 8, true));
    }
    o
}

/// At most two points per braille column: each bucket's lowest and highest value, so no spike
/// is lost however long the series.
fn downsample(values: &[f64], columns: usize) -> Vec<(f64, f64)> {
    let n = values.len();
    let buckets = (columns * 2).max(1);
    let per = n.div_ceil(buckets).max(1);
    let mut pts = Vec::with_capacity(2 * n.div_ceil(per));
    for (b, chunk) in values.chunks(per).enumerate() {
        let x = (b * per) as f64;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut lo_i, mut hi_i) = (0, 0);
        for (i, &v) in chunk.iter().enumerate() {
            if v < lo {
                lo = v;
                lo_i = i;
            }
            if v > hi {
                hi = v;
                hi_i = i;
            }
        }
        // Keep the order in time so the line does not double back.
        if lo_i <= hi_i {
            pts.push((x, lo));
            pts.push((x, hi));
        } else {
            pts.push((x, hi));
            pts.push((x, lo));
        }
    }
    pts
}

fn short_time(ms: i64) -> String {
    let t = format_time_ms(ms);
    t.get(..16).unwrap_or(&t).replace('T', " ")
}

/// A braille line chart of `values` as plain text lines.
fn chart(values: &[f64], (t0, t1): (i64, i64), width: u16, height: u16, area: bool) -> String {
    let width = width.max(40);
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (mut y0, mut y1) = (lo, hi);
    if area {
        y1 = 0.0;
    }
    if y1.is_nan() || y0.is_nan() || y1 <= y0 {
        let pad = (y0.abs() * 0.01).max(1.0);
        y0 -= pad;
        y1 += pad;
    }
    let label = |v: f64| {
        if area {
            format!("{} %", fmt_fixed(v, 2))
        } else {
            fmt_money(v)
        }
    };
    let y_labels = vec![label(y0), label((y0 + y1) / 2.0), label(y1)];
    let label_w = y_labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let plot_cols = width.saturating_sub(label_w + 1) as usize;
    let pts = downsample(values, plot_cols);
    let n = values.len().max(2) as f64;
    let ds = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(if area {
            GraphType::Area
        } else {
            GraphType::Line
        })
        .fill_to_y(0.0)
        .data(&pts);
    let start = short_time(t0);
    let end = short_time(t1);
    let c = Chart::new(vec![ds])
        .x_axis(
            Axis::default()
                .bounds([0.0, n - 1.0])
                .labels(vec![Line::from(start), Line::from(end)]),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels(y_labels.into_iter().map(Line::from).collect::<Vec<_>>()),
        );
    let rect = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(rect);
    c.render(rect, &mut buf);
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_keeps_extremes() {
        let mut v = vec![100.0; 10_000];
        v[5_001] = 50.0;
        v[7_777] = 150.0;
        let pts = downsample(&v, 40);
        assert!(pts.len() <= 2 * 80 + 2);
        assert!(pts.iter().any(|p| p.1 == 50.0));
        assert!(pts.iter().any(|p| p.1 == 150.0));
    }

    #[test]
    fn chart_draws_braille_and_labels() {
        let v: Vec<f64> = (0..500)
            .map(|i| 10_000.0 + (i as f64 / 20.0).sin() * 300.0)
            .collect();
        let text = chart(&v, (0, 3_600_000 * 499), 80, 12, false);
        assert_eq!(text.lines().count(), 12);
        assert!(
            text.chars().any(|c| ('\u{2801}'..='\u{28FF}').contains(&c)),
            "{text}"
        );
        assert!(text.contains("1970-01-01 00:00"), "{text}");
        assert!(
            text.contains("10,300.00") || text.contains("10,299.9"),
            "{text}"
        );
    }
}
