//! What the decisions were worth: outcome statistics, reliability of each score's source, and
//! the calibration maps fitted to them.

pub mod report;
pub mod stats;
pub mod text;

use stats::Calibration;

/// A source's calibration map is fitted only from this many resolved outcomes on: fewer give
/// steps too coarse to trust (a 95 % interval on 50 outcomes is still about ±14 points).
pub const CALIBRATION_MIN_OUTCOMES: usize = 50;

/// The calibration map of `(score, won)` outcomes, when there are enough of them and both
/// wins and losses among them (a map fitted to one kind says every score wins, or none).
pub fn calibration_for(outcomes: &[(f64, bool)]) -> Option<Calibration> {
    let wins = outcomes.iter().filter(|o| o.1).count();
    if outcomes.len() < CALIBRATION_MIN_OUTCOMES || wins == 0 || wins == outcomes.len() {
        return None;
    }
    Calibration::fit(outcomes)
}
