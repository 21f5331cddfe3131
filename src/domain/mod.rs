//! Pure types and rules: no I/O, no clock, no terminal.

pub mod halt;
pub mod lifecycle;
pub mod manual;
pub mod matrix;
pub mod money;
pub mod outcome;
pub mod records;
pub mod rules;
pub mod score;
pub mod trail;
pub mod types;

pub use types::*;
