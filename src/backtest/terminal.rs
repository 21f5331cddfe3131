//! The report without `--json`: tables, and the equity and drawdown charts drawn by ratatui's
//! `Chart` (braille) into an off-screen buffer and printed as plain text.

use super::csv::{CandleSeries, format_interval, format_time_ms};
use super::replay::{Outcome, Settings};
use super::report::{Report, drawdown_series};
use crate::analytics::stats::Interval;
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

/// A fraction as a percent with one decimal: 0.4567 → `45.7 %`.
fn frac(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

/// A percent with its sign: `+3.21 %`, `-0.50 %`.
fn signed_pct(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", pct(x))
    } else {
        pct(x)
    }
}

fn fmt_interval(i: Option<Interval>) -> String {
    i.map_or_else(
        || "—".into(),
        |i| format!("{:.1}–{:.1} %", i.low * 100.0, i.high * 100.0),
    )
}

/// `prefix` then `text` wrapped at `width` columns, the lines after the first starting with
/// `indent`.
fn wrap(prefix: &str, text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = prefix.to_string();
    let mut fresh = true;
    for word in text.split_whitespace() {
        if !fresh && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = indent.to_string();
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Where a percentile rank among the random runs falls: the top 5 %, the bottom 5 %, or the
/// middle 90 %.
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    Top,
    Middle,
    Bottom,
}

impl Placement {
    fn of(rank: f64) -> Placement {
        if rank >= 95.0 {
            Placement::Top
        } else if rank <= 5.0 {
            Placement::Bottom
        } else {
            Placement::Middle
        }
    }

    fn words(self) -> &'static str {
        match self {
            Placement::Top => "in the top 5 %: better than random entries usually do",
            Placement::Middle => {
                "inside the middle 90 %: it cannot be told from entering at random"
            }
            Placement::Bottom => "in the bottom 5 %: worse than random entries usually do",
        }
    }
}

/// Where the strategy sits among the random runs, in plain words.
fn placement_sentence(return_rank: f64, win_rate_rank: f64) -> String {
    let (r, w) = (Placement::of(return_rank), Placement::of(win_rate_rank));
    if r == w {
        format!(
            "The strategy's return beat {return_rank:.0} % of the random runs and its win rate \
             beat {win_rate_rank:.0} %: both {}.",
            r.words()
        )
    } else {
        format!(
            "The strategy's return beat {return_rank:.0} % of the random runs ({}); its win \
             rate beat {win_rate_rank:.0} % ({}).",
            r.words(),
            w.words()
        )
    }
}

/// The sections that say whether there is an edge: break-even, buy-and-hold, the random
/// baseline and the score.
fn edge_sections(o: &mut String, report: &Report) {
    let s = &report.summary;
    let be = &report.break_even_win_rate;
    let _ = writeln!(o, "\nWin rate against break-even (after fees and slippage)");
    match (
        be.win_rate,
        be.after_costs,
        be.before_costs,
        be.reward_to_risk,
    ) {
        (Some(won), Some(after), Some(before), Some(rr)) => {
            let _ = writeln!(
                o,
                "  {:<14} {:>7}   95 % interval {}",
                "won",
                frac(won),
                fmt_interval(be.win_rate_interval)
            );
            let _ = writeln!(
                o,
                "  {:<14} {:>7}   at reward:risk {:.2}, costs {} a trade ({} before costs)",
                "break-even",
                frac(after),
                rr,
                fmt_money(be.costs_per_trade.unwrap_or(0.0)),
                frac(before)
            );
            let verdict = if after > 1.0 {
                "no win rate pays the costs at this reward:risk".to_string()
            } else {
                let gap = (won - after) * 100.0;
                let side = if gap >= 0.0 { "above" } else { "below" };
                let sure = match be.win_rate_interval {
                    Some(i) if i.low > after => ", and the whole 95 % interval is above it",
                    Some(i) if i.high < after => ", and the whole 95 % interval is below it",
                    Some(_) => ", but break-even is inside the 95 % interval",
                    None => "",
                };
                format!("{:.1} points {side} break-even{sure}", gap.abs())
            };
            o.push_str(&wrap(&" ".repeat(17), &verdict, 96, &" ".repeat(17)));
        }
        _ => {
            let _ = writeln!(o, "  —  ({})", be.reason.as_deref().unwrap_or("undefined"));
        }
    }

    if let Some(bh) = &report.buy_and_hold {
        let _ = writeln!(
            o,
            "\nAgainst buy-and-hold (same equity, fees and slippage; {} open → last close)",
            short_time_str(&bh.start_time)
        );
        let _ = writeln!(
            o,
            "  {:<14} {:>12} {:>16}  max drawdown {}",
            "strategy",
            signed_pct(s.total_return_percent),
            fmt_money(s.final_equity),
            pct(s.max_drawdown_percent)
        );
        let _ = writeln!(
            o,
            "  {:<14} {:>12} {:>16}  max drawdown {}",
            "buy-and-hold",
            signed_pct(bh.total_return_percent),
            fmt_money(bh.final_equity),
            pct(bh.max_drawdown_percent)
        );
    }

    let b = &report.baseline;
    let _ = writeln!(o);
    if b.trades_per_run == 0 || b.runs == 0 {
        let _ = writeln!(
            o,
            "Against random entries: —  ({})",
            b.reason.as_deref().unwrap_or("not run")
        );
    } else {
        o.push_str(&wrap(
        "",
        &format!(
            "Against random entries: {} runs (seed {}) of the same {} trades ({} BUY / {} SELL, \
             the same TP/SL distances) at random bars",
            count(b.runs),
            b.seed,
            count(b.trades_per_run),
            count(b.buys),
            count(b.sells)
        ),
        96,
        "  ",
    ));
    }
    match (&b.total_return_percent, &b.win_rate, &b.strategy_percentile) {
        _ if b.trades_per_run == 0 || b.runs == 0 => {}
        (Some(r), Some(w), Some(rank)) => {
            let _ = writeln!(
                o,
                "  {:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}",
                "", "strategy", "mean", "median", "5th pct", "95th pct", "pct rank"
            );
            let _ = writeln!(
                o,
                "  {:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}",
                "return",
                signed_pct(s.total_return_percent),
                signed_pct(r.mean),
                signed_pct(r.median),
                signed_pct(r.p5),
                signed_pct(r.p95),
                format!("{:.0}", rank.total_return_percent)
            );
            let _ = writeln!(
                o,
                "  {:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}",
                "win rate",
                frac(s.win_rate),
                frac(w.mean),
                frac(w.median),
                frac(w.p5),
                frac(w.p95),
                format!("{:.0}", rank.win_rate)
            );
            o.push_str(&wrap(
                "  ",
                &placement_sentence(rank.total_return_percent, rank.win_rate),
                96,
                "  ",
            ));
            if b.trades_not_placed > 0 {
                let _ = writeln!(
                    o,
                    "  ({} random trades found no bar to fill at and were left out)",
                    count(b.trades_not_placed)
                );
            }
        }
        _ => {
            let _ = writeln!(o, "  —  ({})", b.reason.as_deref().unwrap_or("undefined"));
        }
    }

    let q = &report.score;
    let _ = writeln!(
        o,
        "\nThe analyzer's score (a trade's \"confidence\": it ranks setups, it is not a probability)"
    );
    match (q.brier, q.brier_constant) {
        (Some(b), Some(c)) => {
            let than = if b < c {
                "better than"
            } else if b > c {
                "worse than"
            } else {
                "no better than"
            };
            o.push_str(&wrap(
                &format!("  {:<14} ", "Brier"),
                &format!(
                    "{b:.4} vs {c:.4} for a constant forecast of the win rate (lower is \
                     better): read as a probability of winning, the score forecasts {than} \
                     knowing the average"
                ),
                96,
                &" ".repeat(17),
            ));
        }
        _ => {
            let _ = writeln!(
                o,
                "  {:<14} —  ({})",
                "Brier",
                q.brier_reason.as_deref().unwrap_or("undefined")
            );
        }
    }
    match q.auc {
        Some(a) => {
            let text = match q.auc_interval {
                Some(i) => {
                    let words = if i.low > 0.5 {
                        "it ranks winners above losers"
                    } else if i.high < 0.5 {
                        "it ranks losers above winners"
                    } else {
                        "it does not separate winners from losers (0.5 is inside the interval)"
                    };
                    format!(
                        "{a:.3}, 95 % interval {:.2}–{:.2} (0.5 is a coin flip): {words}",
                        i.low, i.high
                    )
                }
                None => format!(
                    "{a:.3} (0.5 is a coin flip); too few winners or losers to tell it from 0.5"
                ),
            };
            o.push_str(&wrap(
                &format!("  {:<14} ", "AUC"),
                &text,
                96,
                &" ".repeat(17),
            ));
        }
        None => {
            let _ = writeln!(
                o,
                "  {:<14} —  ({})",
                "AUC",
                q.auc_reason.as_deref().unwrap_or("undefined")
            );
        }
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
    if let Some(trail) = settings.trail {
        let _ = writeln!(
            o,
            "         stops trail {trail} behind the best price since the fill, never loosening"
        );
    }
    if !series.gaps.is_empty() {
        let g = series.gaps.iter().max_by_key(|g| g.missing);
        if let Some(g) = g {
            o.push_str(&wrap(
                "  data: ",
                &format!(
                    "{} gaps in time (largest: {} bars missing before line {}); bars are \
                     replayed as consecutive",
                    count(series.gaps.len()),
                    count(g.missing as usize),
                    g.line
                ),
                96,
                "        ",
            ));
        }
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(o, "\nWarnings");
        for w in &report.warnings {
            o.push_str(&wrap("  ! ", w, 96, "    "));
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
    edge_sections(&mut o, report);

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
        "direction", "phase", "rule", "bars", "score", "action", "trades", "win rate", "P&L"
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
        "  (score: the mean decision score of the cell's bars; action: decisions that passed every rule)"
    );

    let _ = writeln!(o, "\nCalibration (the analyzer's score → outcome)");
    let _ = writeln!(
        o,
        "  {:<13} {:>7} {:>9}  95 % interval",
        "score", "trades", "win rate"
    );
    for b in &report.calibration {
        let _ = writeln!(
            o,
            "  {:<13} {:>7} {:>9}  {}",
            format!("{:.2}–{:.2}", b.confidence_min, b.confidence_max),
            count(b.trades),
            win_rate(b.win_rate, b.trades),
            fmt_interval(b.interval)
        );
    }
    let _ = writeln!(
        o,
        "  (the score is uncalibrated: compare each bucket's win rate with the others and with break-even)"
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
    short_time_str(&format_time_ms(ms))
}

/// `2024-01-01T00:00:00Z` → `2024-01-01 00:00`.
fn short_time_str(t: &str) -> String {
    t.get(..16).unwrap_or(t).replace('T', " ")
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
