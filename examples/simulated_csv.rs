//! Writes the simulated market's candles that the README's backtest figures are measured on
//! (seed 1, 20,000 hourly bars unless told otherwise):
//! `cargo run --release --example simulated_csv -- /tmp/simulated.csv [BARS]`.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "simulated.csv".into());
    let bars: usize = match args.next().map(|b| b.parse::<u64>()) {
        None => 20_000,
        Some(Ok(b)) if b > 0 => b as usize,
        Some(_) => {
            eprintln!("usage: simulated_csv [PATH] [BARS > 0]");
            return std::process::ExitCode::from(2);
        }
    };
    match autotrade_tui::backtest::write_simulated_csv(std::path::Path::new(&path), 1, bars) {
        Ok(()) => {
            eprintln!("wrote {bars} candles to {path}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
