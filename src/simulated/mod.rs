//! The built-in simulated market and the AMD analyzer: pure, deterministic, no I/O.
//!
//! - [`generator`]: a seeded, regime-switching candle generator whose regimes follow the
//!   AMD (Power of 3) cycle, so every candle carries a ground-truth [`Phase`](crate::domain::Phase).
//! - [`analyzer`]: a causal, O(1)-per-bar analyzer that reads the AMD phase and an EMA/RSI signal
//!   from candles alone. It stands in for the ML engine when none is configured.
//!
//! The signal's confidence is an uncalibrated score, not a probability of winning.

pub mod analyzer;
pub mod generator;
mod indicators;
/// The simulated market as a market source.
pub mod source;

pub use analyzer::{Analyzer, AnalyzerParams};
pub use generator::{Candle, MarketGenerator, seed_for_symbol};
pub use source::SimulatedSource;
