//! What the decisions were worth: outcome statistics, reliability of each score's source, and
//! the calibration maps fitted to them.

pub mod stats;
