//! Pure types and rules: no I/O, no clock, no terminal.

pub mod manual;
pub mod rules;
pub mod types;

pub use types::*;
