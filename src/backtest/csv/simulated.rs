//! A backtest file written from the simulated market.

use super::time::format_time_ms;
use crate::simulated::MarketGenerator;
use std::io::Write;
use std::path::Path;

/// 2024-01-01T00:00:00Z: where [`write_simulated_csv`] starts.
pub const SIMULATED_START_S: i64 = 1_704_067_200;

/// Write `bars` hourly candles of the simulated market (seed `seed`, BTC-like prices from 65,000)
/// as a backtest CSV with ISO-8601 timestamps, oldest first. Test data, made on the spot.
pub fn write_simulated_csv(path: &Path, seed: u64, bars: usize) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(b"timestamp,open,high,low,close,volume\n")?;
    let mut g = MarketGenerator::new(seed, 65_000.0, SIMULATED_START_S, 3600);
    for _ in 0..bars {
        let (c, _) = g.next_candle();
        // Rounding is monotonic, so low <= open, close <= high still holds.
        writeln!(
            out,
            "{},{:.2},{:.2},{:.2},{:.2},{:.4}",
            format_time_ms(c.ts * 1000),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume
        )?;
    }
    out.flush()
}
