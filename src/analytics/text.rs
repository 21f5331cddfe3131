//! The report in words, for `report` without `--json` and the dashboard's analytics view.
//! Every figure says what it is of; a sample too small to judge says so.

use super::report::{Followed, Performance, Reliability, Report};
use super::stats::{Interval, MIN_SAMPLE};
use crate::domain::money::{fmt_money, fmt_signed};

pub fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn interval(i: &Option<Interval>) -> String {
    match i {
        Some(i) => format!("{:.1}–{:.1} %", i.low * 100.0, i.high * 100.0),
        None => "—".into(),
    }
}

fn signed_r(r: f64) -> String {
    format!("{r:+.2} R")
}

/// A win rate with its interval; a small sample shows the interval first and says so.
pub fn win_rate(rate: Option<f64>, i: &Option<Interval>, n: usize) -> String {
    match rate {
        None => "no trades".into(),
        Some(_) if n < MIN_SAMPLE => format!(
            "win rate somewhere in {} (n={n}, too few to judge)",
            interval(i)
        ),
        Some(r) => format!("win rate {} (95 %: {})", pct(r), interval(i)),
    }
}

/// One line of realized performance.
pub fn performance_line(p: &Performance) -> String {
    if p.trades == 0 {
        return "no closed trades".into();
    }
    let pf = match p.profit_factor {
        Some(x) => format!("{x:.2}"),
        None => "∞ (no losing trade)".into(),
    };
    format!(
        "{} trade{} · {} · P&L {} · expectancy {} · profit factor {} · max drawdown {} ({:.2} % of the peak)",
        p.trades,
        if p.trades == 1 { "" } else { "s" },
        win_rate(p.win_rate, &p.win_rate_interval, p.trades),
        fmt_signed(p.realized_pnl),
        p.expectancy_r.map(signed_r).unwrap_or_else(|| "—".into()),
        pf,
        fmt_money(p.max_drawdown.amount),
        p.max_drawdown.percent
    )
}

/// One line of followed decisions.
pub fn followed_line(f: &Followed) -> String {
    if f.decisions == 0 {
        return "none".into();
    }
    let mut s = format!(
        "{}: take-profit {} · stop-loss {} · horizon {} · open {}",
        f.decisions, f.take_profit, f.stop_loss, f.horizon, f.open
    );
    if f.no_prices > 0 {
        s.push_str(&format!(" · no prices {}", f.no_prices));
    }
    if let Some(m) = f.mean_r {
        s.push_str(&format!(
            " · total {} (mean {}) over {} judged",
            signed_r(f.total_r),
            signed_r(m),
            f.judged
        ));
    }
    s
}

/// What the veto was worth, in one sentence.
pub fn veto_sentence(r: &Report) -> String {
    let v = &r.veto.vetoed;
    if v.judged == 0 {
        return "no cancelled or expired decision has an outcome yet".into();
    }
    let money = if v.money != 0.0 {
        format!(" ({} at their sizes)", fmt_signed(v.money))
    } else {
        String::new()
    };
    let verdict = if v.total_r < 0.0 {
        "turning them down saved that"
    } else if v.total_r > 0.0 {
        "turning them down cost that"
    } else {
        "turning them down made no difference"
    };
    let executed = match r.veto.executed.mean_r {
        Some(m) => format!(
            "; the executed ones made a mean {} ({} judged)",
            signed_r(m),
            r.veto.executed.judged
        ),
        None => String::new(),
    };
    format!(
        "cancelled and expired decisions would have made {} over {} judged{money}: {verdict}{executed}",
        signed_r(v.total_r),
        v.judged
    )
}

/// The name a source goes by.
pub fn source_name(s: &str) -> &str {
    match s {
        "ml_engine" => "ML engine",
        "analyzer" => "built-in analyzer",
        "agent" => "agent proposals",
        "manual" => "manual trades (the signal's score)",
        "unrecorded" => "automatic, before sources were recorded",
        other => other,
    }
}

/// The reliability of one source, a few lines.
pub fn reliability_lines(r: &Reliability) -> Vec<String> {
    let mut out = vec![format!(
        "{}: {} judged, {} open",
        source_name(&r.source),
        r.outcomes,
        r.open
    )];
    if r.outcomes == 0 {
        out.push("  nothing to judge yet".into());
        return out;
    }
    let be = match (r.break_even_win_rate, r.mean_reward_to_risk) {
        (Some(b), Some(rr)) => format!(
            "; break-even {} at its mean reward:risk {:.2} (before fees)",
            pct(b),
            rr
        ),
        _ => String::new(),
    };
    out.push(format!(
        "  {}{be}",
        win_rate(r.win_rate, &r.win_rate_interval, r.outcomes)
    ));
    if r.outcomes >= MIN_SAMPLE {
        if let (Some(b), Some(c)) = (r.brier, r.brier_constant) {
            let than = if b < c {
                "better than"
            } else {
                "no better than"
            };
            out.push(format!(
                "  Brier {b:.3} vs {c:.3} for always saying the win rate: {than} a constant"
            ));
        }
        if let Some(a) = r.auc {
            out.push(format!(
                "  AUC {a:.2}: a winner outscores a loser {:.0} % of the time (50 % = a coin)",
                a * 100.0
            ));
        }
    }
    if let Some(n) = &r.note {
        out.push(format!("  ({n})"));
    }
    let filled: Vec<String> = r
        .buckets
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| {
            format!(
                "{:.2}–{:.2}: {}/{} won ({})",
                b.score_min,
                b.score_max,
                b.wins,
                b.count,
                interval(&b.interval)
            )
        })
        .collect();
    if !filled.is_empty() {
        out.push(format!("  by score: {}", filled.join(" · ")));
    }
    if let Some(c) = &r.calibration {
        let steps: Vec<String> = c
            .steps
            .iter()
            .map(|s| {
                let scores = if s.score_min == s.score_max {
                    format!("{:.2}", s.score_min)
                } else {
                    format!("{:.2}–{:.2}", s.score_min, s.score_max)
                };
                format!("{scores} → {} (n={})", pct(s.probability), s.count)
            })
            .collect();
        out.push(format!("  calibration map: {}", steps.join(" · ")));
    }
    out
}

/// A line of the report: a heading, or a line under one (indented by `depth`).
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Heading(String),
    Item { depth: usize, text: String },
    Blank,
}

fn item(depth: usize, text: String) -> Line {
    Line::Item { depth, text }
}

/// What the whole report says, line by line (the command line and the dashboard both show it).
pub fn lines(r: &Report) -> Vec<Line> {
    let mut out = vec![
        item(
            0,
            format!(
                "Report for {}, {}: outcomes followed up to {} h; R = what a decision made as a multiple of what it risked, no fees",
                r.user_id,
                match &r.since {
                    Some(s) => format!("since {s}"),
                    None => "all decisions".into(),
                },
                r.outcome_horizon_hours
            ),
        ),
        Line::Blank,
        Line::Heading("Realized, closed trades".into()),
        item(1, format!("all: {}", performance_line(&r.performance))),
    ];
    for (s, p) in &r.by_symbol {
        out.push(item(1, format!("{s}: {}", performance_line(p))));
    }
    for (o, p) in &r.by_origin {
        out.push(item(1, format!("{o}: {}", performance_line(p))));
    }
    out.push(Line::Blank);
    out.push(Line::Heading(
        "Outcomes of the decisions, executed or not".into(),
    ));
    let v = &r.veto;
    for (name, f) in [
        ("executed", &v.executed),
        ("cancelled", &v.cancelled),
        ("expired", &v.expired),
        ("pending", &v.pending),
        ("below min_confidence", &v.below_min_confidence),
    ] {
        out.push(item(1, format!("{name}: {}", followed_line(f))));
    }
    out.push(Line::Blank);
    out.push(Line::Heading("Value of the veto".into()));
    out.push(item(1, veto_sentence(r)));
    out.push(Line::Blank);
    out.push(Line::Heading(
        "Reliability of the scores: does a higher score win more often?".into(),
    ));
    if r.reliability.is_empty() {
        out.push(item(1, "no followed decisions yet".into()));
    }
    for rel in &r.reliability {
        for l in reliability_lines(rel) {
            let depth = 1 + l.len().saturating_sub(l.trim_start().len()) / 2;
            out.push(item(depth, l.trim_start().to_string()));
        }
    }
    out
}

/// The whole report as text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    for l in lines(r) {
        match l {
            Line::Heading(h) => out.push_str(&h),
            Line::Item { depth, text } => {
                out.push_str(&"  ".repeat(depth));
                out.push_str(&text);
            }
            Line::Blank => {}
        }
        out.push('\n');
    }
    out
}
