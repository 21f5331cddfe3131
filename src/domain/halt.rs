//! Loss halts (`[risk]`): a daily loss limit against the equity at the day's start (UTC), and
//! a maximum drawdown from the equity peak, each in percent. Crossing one halts new entries
//! until the trader resets it. Pure: the desk feeds it equity and the clock.

use super::money::{fmt_money, fmt_num};
use serde::{Deserialize, Serialize};

/// One day, ms.
const DAY_MS: i64 = 86_400_000;

/// The limits, in percent; 0 is off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossLimits {
    pub daily_loss_percent: f64,
    pub max_drawdown_percent: f64,
}

impl LossLimits {
    pub fn any(&self) -> bool {
        self.daily_loss_percent > 0.0 || self.max_drawdown_percent > 0.0
    }
}

/// What the halts are measured from, kept across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EquityMarks {
    /// The highest equity seen since the marks began (or since the last reset).
    pub peak: Option<f64>,
    /// The start (UTC midnight, ms) of the day `day_start_equity` belongs to.
    pub day_start_ms: Option<i64>,
    /// The equity at the first check of that day (or at the last reset that day).
    pub day_start_equity: Option<f64>,
}

/// A halt in force: since when and why, with the figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub at_ms: i64,
    pub reason: String,
}

/// The UTC midnight at or before `now_ms`.
pub fn day_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(DAY_MS)
}

/// The marks after seeing `equity` at `now_ms`: a new peak when it is higher, and the day's
/// start equity when this is the first equity of a new UTC day.
pub fn roll(marks: EquityMarks, equity: f64, now_ms: i64) -> EquityMarks {
    if !equity.is_finite() {
        return marks;
    }
    let today = day_start(now_ms);
    let new_day = marks.day_start_ms.is_none_or(|d| d < today) || marks.day_start_equity.is_none();
    EquityMarks {
        peak: Some(marks.peak.map_or(equity, |p| p.max(equity))),
        day_start_ms: Some(if new_day {
            today
        } else {
            marks.day_start_ms.unwrap_or(today)
        }),
        day_start_equity: if new_day {
            Some(equity)
        } else {
            marks.day_start_equity
        },
    }
}

/// The marks a reset leaves: the peak and the day's start both at today's equity, so the
/// trader starts again from where the account stands.
pub fn rebased(equity: f64, now_ms: i64) -> EquityMarks {
    EquityMarks {
        peak: Some(equity),
        day_start_ms: Some(day_start(now_ms)),
        day_start_equity: Some(equity),
    }
}

/// How far one limit is used: the loss (or drawdown) so far, in percent of its base, and the
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Used {
    /// Percent of the base lost so far (0 when equity is at or above it).
    pub percent: f64,
    /// Money lost so far against the base.
    pub amount: f64,
    /// The base: the day's start equity, or the peak.
    pub base: f64,
    pub limit_percent: f64,
}

impl Used {
    fn of(base: f64, equity: f64, limit_percent: f64) -> Option<Used> {
        (limit_percent > 0.0 && base > 0.0 && equity.is_finite()).then(|| {
            let amount = (base - equity).max(0.0);
            Used {
                percent: amount / base * 100.0,
                amount,
                base,
                limit_percent,
            }
        })
    }

    pub fn crossed(&self) -> bool {
        self.percent >= self.limit_percent
    }

    /// Percent of the base still to lose before the halt.
    pub fn left(&self) -> f64 {
        (self.limit_percent - self.percent).max(0.0)
    }

    /// `1.20% of 3%`, with as many decimals as it takes for a figure under the limit never
    /// to read as the limit.
    pub fn text(&self) -> String {
        format!(
            "{} of {}%",
            pct_under(self.percent, self.limit_percent),
            fmt_num(self.limit_percent)
        )
    }
}

/// `x` in percent with two decimals, or more when two would round a figure under `limit`
/// up to it (2.9996 is not "3.00%" under a 3% limit).
pub fn pct_under(x: f64, limit: f64) -> String {
    for dp in 2..=6 {
        let s = format!("{x:.dp$}");
        let shown: f64 = s.parse().unwrap_or(x);
        if x >= limit || shown < limit {
            return format!("{s}%");
        }
    }
    format!("{x}%")
}

/// Where each limit stands for `equity`: the daily loss, then the drawdown (`None`: off, or
/// no base yet).
pub fn usage(
    limits: &LossLimits,
    marks: &EquityMarks,
    equity: f64,
) -> (Option<Used>, Option<Used>) {
    (
        marks
            .day_start_equity
            .and_then(|b| Used::of(b, equity, limits.daily_loss_percent)),
        marks
            .peak
            .and_then(|b| Used::of(b, equity, limits.max_drawdown_percent)),
    )
}

/// The halt `equity` trips, if any, with the figures: the daily loss first.
pub fn tripped(limits: &LossLimits, marks: &EquityMarks, equity: f64) -> Option<String> {
    let (daily, drawdown) = usage(limits, marks, equity);
    if let Some(u) = daily.filter(Used::crossed) {
        return Some(format!(
            "daily loss {} = {:.2}% of {} at the day's start ≥ limit {}%",
            fmt_money(u.amount),
            u.percent,
            fmt_money(u.base),
            fmt_num(u.limit_percent),
        ));
    }
    if let Some(u) = drawdown.filter(Used::crossed) {
        return Some(format!(
            "drawdown {} = {:.2}% below the peak {} ≥ limit {}%",
            fmt_money(u.amount),
            u.percent,
            fmt_money(u.base),
            fmt_num(u.limit_percent),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: i64 = 1_764_936_000_000; // 2025-12-05T12:00:00Z
    const LIMITS: LossLimits = LossLimits {
        daily_loss_percent: 3.0,
        max_drawdown_percent: 10.0,
    };

    #[test]
    fn the_day_starts_at_utc_midnight_and_the_peak_only_rises() {
        let m = roll(EquityMarks::default(), 10_000.0, NOON);
        assert_eq!(m.peak, Some(10_000.0));
        assert_eq!(m.day_start_ms, Some(NOON - 12 * 3_600_000));
        assert_eq!(m.day_start_equity, Some(10_000.0));
        let m = roll(m, 10_400.0, NOON + 1);
        let m = roll(m, 10_100.0, NOON + 2);
        assert_eq!(m.peak, Some(10_400.0));
        // Same day: the start stays.
        assert_eq!(m.day_start_equity, Some(10_000.0));
        // The next day's first equity is its start.
        let m = roll(m, 10_050.0, NOON + 12 * 3_600_000);
        assert_eq!(m.day_start_equity, Some(10_050.0));
        assert_eq!(m.peak, Some(10_400.0));
    }

    #[test]
    fn a_daily_loss_trips_at_the_limit_with_its_figures() {
        let m = roll(EquityMarks::default(), 10_000.0, NOON);
        assert_eq!(tripped(&LIMITS, &m, 9_701.0), None);
        let why = tripped(&LIMITS, &m, 9_700.0).unwrap();
        assert_eq!(
            why,
            "daily loss 300.00 = 3.00% of 10,000.00 at the day's start ≥ limit 3%"
        );
    }

    #[test]
    fn a_drawdown_is_from_the_peak_across_days() {
        let m = roll(EquityMarks::default(), 10_000.0, NOON);
        let m = roll(m, 11_000.0, NOON + 1);
        // Next day starts at 10,000: a 1,100 drawdown (10%) from the 11,000 peak, 0% today.
        let m = roll(m, 10_000.0, NOON + 86_400_000);
        let why = tripped(&LIMITS, &m, 9_900.0).unwrap();
        assert_eq!(
            why,
            "drawdown 1,100.00 = 10.00% below the peak 11,000.00 ≥ limit 10%"
        );
    }

    #[test]
    fn off_limits_never_trip() {
        let off = LossLimits {
            daily_loss_percent: 0.0,
            max_drawdown_percent: 0.0,
        };
        let m = roll(EquityMarks::default(), 10_000.0, NOON);
        assert_eq!(tripped(&off, &m, 1.0), None);
        assert_eq!(usage(&off, &m, 1.0), (None, None));
    }

    #[test]
    fn a_figure_under_the_limit_never_reads_as_the_limit() {
        assert_eq!(pct_under(2.9996, 3.0), "2.9996%");
        assert_eq!(pct_under(1.234, 3.0), "1.23%");
        assert_eq!(pct_under(3.0, 3.0), "3.00%");
    }

    #[test]
    fn a_reset_rebases_both_marks_to_today() {
        let m = rebased(9_500.0, NOON);
        assert_eq!(tripped(&LIMITS, &m, 9_500.0), None);
        assert_eq!(m.peak, Some(9_500.0));
        assert_eq!(m.day_start_equity, Some(9_500.0));
    }
}
