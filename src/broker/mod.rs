//! Execution. Today: the paper broker. A live adapter would sit beside it behind one trait.

pub mod paper;
