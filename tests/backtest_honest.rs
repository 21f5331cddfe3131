#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The backtest's honest numbers: the break-even win rate, buy-and-hold over the same span, the
//! random-entry baseline, intervals on the calibration buckets, the score's Brier and AUC, and
//! warnings when there is too little to go on. Hand-checked on a known file, and as the user
//! sees them from the binary.

use autotrade_tui::backtest::{
    BarDecision, BaselineOptions, CandleSeries, Settings, decide_on_analysis, read_csv, replay,
    report,
};
use autotrade_tui::domain::rules::{Gates, RiskSettings};
use autotrade_tui::domain::{Direction, MlSignal, Phase};
use autotrade_tui::simulated::Candle;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Eight hourly bars in the format of backtesting.py's test data (unnamed index column,
/// capitalized names, naive timestamps): opens 98, 100, …, last close 112.
fn known_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backtest_known.csv")
}

fn settings(fee_percent: f64) -> Settings {
    Settings {
        symbol: "BTC/USD".into(),
        risk: RiskSettings {
            account_size: 10_000.0,
            max_risk_percent: 1.5,
            max_position_percent: 100.0,
            min_confidence: 0.75,
        },
        max_open_positions: 3,
        fee_percent,
        slippage_percent: 0.0,
        trail: None,
    }
}

/// Decisions by the live rules from hand-written signals: on bar `i`, a signal in `direction`
/// with ML confidence `ml`, entry at the bar's close and the given TP and SL.
fn scripted(
    plan: &[(usize, Direction, f64, f64, f64)],
    s: &Settings,
) -> impl FnMut(usize, &Candle, &Gates) -> Option<BarDecision> + use<> {
    let plan: HashMap<usize, (Direction, f64, f64, f64)> = plan
        .iter()
        .map(|&(i, d, ml, tp, sl)| (i, (d, ml, tp, sl)))
        .collect();
    let risk = s.risk;
    let symbol = s.symbol.clone();
    move |i, bar, gates| {
        let &(direction, ml, take_profit, stop_loss) = plan.get(&i)?;
        let phase = match direction {
            Direction::Bearish => Phase::Distribution,
            _ => Phase::Accumulation,
        };
        let signal = MlSignal {
            direction,
            confidence: ml,
            entry_price: bar.close,
            take_profit,
            stop_loss,
            risk_reward_ratio: 2.0,
        };
        let d = decide_on_analysis(&symbol, &signal, phase, 0.8, &risk, gates);
        Some(BarDecision::from_decision(direction, d))
    }
}

/// The report of `plan` on `series`, as the `--json` the user reads.
fn json_report(
    series: &CandleSeries,
    s: &Settings,
    plan: &[(usize, Direction, f64, f64, f64)],
    options: BaselineOptions,
) -> Value {
    let mut d = scripted(plan, s);
    let o = replay(&series.candles, s, &mut d, &mut |_, _| {});
    let r = report::build_with(series, s, &o, options);
    serde_json::to_value(&r).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

fn close_to(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// On the known file: a BUY decided on bar 0 (close 100, TP 110, SL 95, ML 0.9 → score 0.855)
/// fills at bar 1's open of 100 and takes profit on bar 2; a SELL decided on bar 3 (close 109,
/// TP 99, SL 114, ML 0.8 → score 0.76) fills at bar 4's open of 109 and stops out on bar 5.
fn two_trades() -> Vec<(usize, Direction, f64, f64, f64)> {
    vec![
        (0, Direction::Bullish, 0.9, 110.0, 95.0),
        (3, Direction::Bearish, 0.8, 99.0, 114.0),
    ]
}

#[test]
fn break_even_and_buy_and_hold_by_hand_on_the_known_file() {
    let series = read_csv(&known_file(), &mut |_, _| {}).unwrap();
    let s = settings(0.1);
    let v = json_report(&series, &s, &two_trades(), BaselineOptions::exactly(20, 1));
    let trades = v["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 2, "{v:#}");
    assert_eq!(trades[0]["exit_reason"], "take_profit");
    assert_eq!(trades[1]["exit_reason"], "stop_loss");
    // Risk 150 over 5 a unit: 30 units each. Fees 0.1 % a side: 3.00 + 3.30, and 3.27 + 3.42.
    assert_eq!(trades[0]["pnl"], 300.0 - 6.3);
    assert_eq!(trades[1]["pnl"], -150.0 - 6.69);

    // Each trade could win W = 30 × 10 = 300 or lose R = 30 × 5 = 150 from the fill bar's
    // open; costs C̄ = (6.30 + 6.69) / 2 = 6.495 a trade. Break-even before costs is
    // 1 / (1 + 300/150) = 1/3; after them (R̄ + C̄) / (W̄ + R̄) = 156.495 / 450 = 0.34777.
    let be = &v["break_even_win_rate"];
    assert_eq!(be["win_rate"], 0.5);
    assert_eq!(be["reward_to_risk"], 2.0);
    assert_eq!(be["before_costs"], 0.3333);
    assert_eq!(be["after_costs"], 0.3478);
    assert!(close_to(f(&be["costs_per_trade"]), 6.495, 0.006), "{be}");
    // Wilson 95 % on 1 of 2.
    assert_eq!(be["win_rate_interval"]["low"], 0.0945);
    assert_eq!(be["win_rate_interval"]["high"], 0.9055);
    assert_eq!(be["reason"], Value::Null);

    // Buy-and-hold from the first fill (bar 1, open 100) to the last close (112), 0.1 % a
    // side: q = 10,000 / (100 × 1.001) = 99.9001; final = q × 112 × 0.999 = 11,177.62.
    let bh = &v["buy_and_hold"];
    assert_eq!(bh["start_time"], "2017-04-19T10:00:00Z");
    assert_eq!(bh["end_time"], "2017-04-19T16:00:00Z");
    assert_eq!(bh["entry_price"], 100.0);
    assert_eq!(bh["exit_price"], 112.0);
    assert_eq!(bh["final_equity"], 11_177.62);
    assert_eq!(bh["total_return_percent"], 11.7762);
    // Fees q × (100 + 112) × 0.001 = 21.18.
    assert_eq!(bh["fees"], 21.18);
    // The peak is q × 114 (bar 5's close); the exit gets q × 112 × 0.999: 1 − 111.888/114.
    assert_eq!(bh["max_drawdown_percent"], 1.8526);
    // The strategy over the same span: 10,000 + 293.70 − 156.69.
    assert_eq!(v["summary"]["final_equity"], 10_137.01);
}

#[test]
fn buckets_carry_wilson_intervals_and_the_score_its_brier_and_auc() {
    let series = read_csv(&known_file(), &mut |_, _| {}).unwrap();
    let s = settings(0.1);
    let v = json_report(&series, &s, &two_trades(), BaselineOptions::exactly(5, 1));
    let cal = v["calibration"].as_array().unwrap();
    let keys: Vec<&str> = cal[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "confidence_min",
            "confidence_max",
            "trades",
            "win_rate",
            "wins",
            "interval"
        ]
    );
    // 0.75–0.80 holds the losing SELL (score 0.76): 0 of 1, Wilson 0–0.7935.
    assert_eq!(cal[0]["trades"], 1);
    assert_eq!(cal[0]["wins"], 0);
    assert_eq!(cal[0]["interval"]["low"], 0.0);
    assert_eq!(cal[0]["interval"]["high"], 0.7935);
    // 0.85–0.90 holds the winning BUY (score 0.855): 1 of 1, Wilson 0.2065–1.
    assert_eq!(cal[2]["trades"], 1);
    assert_eq!(cal[2]["interval"]["low"], 0.2065);
    assert_eq!(cal[2]["interval"]["high"], 1.0);
    // An empty bucket has no interval.
    assert_eq!(cal[1]["trades"], 0);
    assert_eq!(cal[1]["interval"], Value::Null);

    // Brier ((0.855 − 1)² + 0.76²) / 2 = 0.2993 against 0.5 × 0.5 for the constant; the
    // winner scored above the loser: AUC 1.
    let q = &v["score"];
    assert_eq!(q["trades"], 2);
    assert_eq!(q["brier"], 0.2993);
    assert_eq!(q["brier_constant"], 0.25);
    assert_eq!(q["brier_reason"], Value::Null);
    assert_eq!(q["auc"], 1.0);
    assert_eq!(q["auc_reason"], Value::Null);
    // One winner and one loser are too few for the AUC's interval.
    assert_eq!(q["auc_interval"], Value::Null);

    // Two trades: the report says they say little.
    let w: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(w.iter().any(|w| w.starts_with("only 8 candles")), "{w:?}");
    assert!(w.iter().any(|w| w.starts_with("only 2 trades")), "{w:?}");
}

#[test]
fn the_score_is_null_with_a_reason_when_every_trade_won() {
    let series = read_csv(&known_file(), &mut |_, _| {}).unwrap();
    let s = settings(0.1);
    let plan = [(0, Direction::Bullish, 0.9, 110.0, 95.0)];
    let v = json_report(&series, &s, &plan, BaselineOptions::exactly(5, 1));
    assert_eq!(v["score"]["auc"], Value::Null);
    assert!(
        v["score"]["auc_reason"]
            .as_str()
            .unwrap()
            .contains("every trade won"),
        "{}",
        v["score"]
    );
    assert!(v["score"]["brier"].as_f64().is_some());
}

/// Bars rising 0.5 % each, with ranges too narrow to fall 1 % below any close.
fn rising(n: usize) -> CandleSeries {
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    let mut open = 100.0f64;
    for i in 0..n {
        let close = open * 1.005;
        text.push_str(&format!(
            "{},{open},{},{},{close},1\n",
            1_704_067_200 + i as i64 * 3600,
            close * 1.001,
            open * 0.999
        ));
        open = close;
    }
    autotrade_tui::backtest::parse_csv(text.as_bytes(), &mut |_, _| {}).unwrap()
}

#[test]
fn random_entries_copy_the_trades_sides_and_levels_and_take_their_chances() {
    // On a market that only rises, a BUY with TP +1 % and SL −1 % wins wherever it is entered
    // and a SELL with the mirror levels loses: every random run wins exactly half its trades.
    let series = rising(300);
    let s = settings(0.1);
    let c = &series.candles;
    let plan = [
        (
            60,
            Direction::Bullish,
            0.9,
            c[60].close * 1.01,
            c[60].close * 0.99,
        ),
        (
            100,
            Direction::Bearish,
            0.9,
            c[100].close * 0.99,
            c[100].close * 1.01,
        ),
    ];
    let v = json_report(&series, &s, &plan, BaselineOptions::exactly(50, 3));
    assert_eq!(v["summary"]["trades"], 2, "{:#}", v["trades"]);
    let b = &v["baseline"];
    assert_eq!(b["runs"], 50);
    assert_eq!(b["seed"], 3);
    assert_eq!(
        (b["buys"].clone(), b["sells"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(b["trades_not_placed"], 0);
    for k in ["mean", "median", "p5", "p95"] {
        assert_eq!(b["win_rate"][k], 0.5, "{b}");
    }
    // The strategy won half too: it ties every run, the middle of the distribution.
    assert_eq!(b["strategy_percentile"]["win_rate"], 50.0);
    // Both trades are capped at the whole account, so every run makes about the same money.
    let r = &b["total_return_percent"];
    assert!(f(&r["p95"]) - f(&r["p5"]) < 0.1, "{r}");
    assert_eq!(b["reason"], Value::Null);
}

#[test]
fn without_trades_the_baseline_and_break_even_say_why() {
    let series = read_csv(&known_file(), &mut |_, _| {}).unwrap();
    let v = json_report(&series, &settings(0.1), &[], BaselineOptions::default());
    assert_eq!(v["baseline"]["runs"], 200);
    assert_eq!(v["baseline"]["total_return_percent"], Value::Null);
    assert!(
        v["baseline"]["reason"]
            .as_str()
            .unwrap()
            .contains("no trades")
    );
    assert_eq!(v["break_even_win_rate"]["after_costs"], Value::Null);
    assert_eq!(v["break_even_win_rate"]["reason"], "no trades");
    assert_eq!(v["score"]["brier"], Value::Null);
    assert_eq!(v["score"]["brier_reason"], "no trades");
    assert_eq!(v["score"]["auc_reason"], "no trades");
    // No fill: buy-and-hold runs from the first candle's open (98).
    assert_eq!(v["buy_and_hold"]["start_time"], "2017-04-19T09:00:00Z");
}

// ---- The binary, as a user runs it ----

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        "[backtest]\nfee_percent = 0.1\nslippage_percent = 0.0\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_autotrade-tui"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .output()
        .expect("run the binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_short_file_in_backtesting_py_format_is_read_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = known_file();
    let r = run(
        dir.path(),
        &["backtest", "--candles", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["candles"], 8);
    let w = v["warnings"].as_array().unwrap();
    assert!(
        w[0].as_str()
            .unwrap()
            .starts_with("only 8 candles: fewer than 1,500"),
        "{w:?}"
    );
    assert_eq!(w[1], "no trades: there is nothing to judge");
    // Eight bars are inside the analyzer's warm-up: no trade, so buy-and-hold runs from the
    // first open, 98: q = 10,000 / (98 × 1.001); final q × 112 × 0.999 = 11,405.74.
    let bh = &v["buy_and_hold"];
    assert_eq!(bh["start_time"], "2017-04-19T09:00:00Z");
    assert_eq!(bh["final_equity"], 11_405.74);
    assert_eq!(bh["total_return_percent"], 14.0574);
    assert_eq!(bh["fees"], 21.41);
    assert_eq!(bh["max_drawdown_percent"], 1.8526);

    let r = run(
        dir.path(),
        &["backtest", "--candles", file.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "Warnings",
        "  ! only 8 candles: fewer than 1,500",
        "  ! no trades: there is nothing to judge",
        "Win rate against break-even",
        "—  (no trades)",
        "  buy-and-hold       +14.06 %        11,405.74  max drawdown 1.85 %",
        "Against random entries: —  (no trades: nothing to enter at random)",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
}

/// The report's top-level keys, the SPEC's first.
const KEYS: [&str; 11] = [
    "candles",
    "symbol",
    "summary",
    "trades",
    "by_phase",
    "calibration",
    "break_even_win_rate",
    "buy_and_hold",
    "baseline",
    "score",
    "warnings",
];

#[test]
fn the_baseline_is_the_same_for_a_seed_and_changes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 4, 3_000).unwrap();
    let path = csv.to_str().unwrap();
    let args = |seed: &'static str| {
        vec![
            "backtest",
            "--candles",
            path,
            "--json",
            "--baseline-seeds",
            "40",
            "--seed",
            seed,
        ]
    };
    let a = run(dir.path(), &args("7"));
    let b = run(dir.path(), &args("7"));
    let c = run(dir.path(), &args("8"));
    for r in [&a, &b, &c] {
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(a.stdout, b.stdout, "same seed, same report, byte for byte");
    let va: Value = serde_json::from_str(&a.stdout).unwrap();
    let vc: Value = serde_json::from_str(&c.stdout).unwrap();
    let keys: Vec<&str> = va.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, KEYS);
    assert_eq!(va["baseline"]["runs"], 40);
    assert_eq!(va["baseline"]["seed"], 7);
    assert_eq!(vc["baseline"]["seed"], 8);
    assert!(
        va["summary"]["trades"].as_u64().unwrap() >= 30,
        "{}",
        va["summary"]
    );
    assert_ne!(
        va["baseline"]["total_return_percent"], vc["baseline"]["total_return_percent"],
        "another seed draws other bars"
    );
    // Only the baseline depends on the seed.
    for k in KEYS.iter().filter(|k| **k != "baseline") {
        assert_eq!(va[k], vc[k], "{k}");
    }
    let d = &va["baseline"]["total_return_percent"];
    assert!(
        f(&d["p5"]) <= f(&d["median"]) && f(&d["median"]) <= f(&d["p95"]),
        "{d}"
    );
    let rank = f(&va["baseline"]["strategy_percentile"]["total_return_percent"]);
    assert!((0.0..=100.0).contains(&rank));

    let r = run(
        dir.path(),
        &["backtest", "--candles", path, "--baseline-seeds", "100001"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--baseline-seeds"), "{}", r.stderr);
}

#[test]
fn the_text_report_puts_break_even_beside_the_win_rate_and_places_the_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 4, 3_000).unwrap();
    let path = csv.to_str().unwrap();
    let r = run(
        dir.path(),
        &[
            "backtest",
            "--candles",
            path,
            "--json",
            "--baseline-seeds",
            "40",
        ],
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let t = run(
        dir.path(),
        &["backtest", "--candles", path, "--baseline-seeds", "40"],
    );
    assert_eq!(t.code, 0, "{}", t.stderr);
    let out = &t.stdout;
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let be = &v["break_even_win_rate"];
    // The two rates on consecutive lines, as the JSON has them.
    let won_line = format!("  won            {:>7}", pct(f(&be["win_rate"])));
    let be_line = format!("  break-even     {:>7}", pct(f(&be["after_costs"])));
    let i = out
        .find(&won_line)
        .unwrap_or_else(|| panic!("{won_line:?} in\n{out}"));
    let j = out
        .find(&be_line)
        .unwrap_or_else(|| panic!("{be_line:?} in\n{out}"));
    assert!(i < j && out[i..j].lines().count() == 1, "{out}");
    // The sentences wrap: read them with the line breaks as spaces.
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let rank = f(&v["baseline"]["strategy_percentile"]["total_return_percent"]);
    let sentence = format!("The strategy's return beat {rank:.0} % of the random runs");
    assert!(words.contains(&sentence), "missing {sentence:?} in\n{out}");
    let where_ = if rank >= 95.0 {
        "in the top 5 %"
    } else if rank <= 5.0 {
        "in the bottom 5 %"
    } else {
        "inside the middle 90 %"
    };
    assert!(words.contains(where_), "{out}");
    for want in [
        "Against buy-and-hold",
        "Against random entries: 40 runs (seed 19)",
        "The analyzer's score (a trade's \"confidence\": it ranks setups, it is not a probability)",
        "Brier",
        "for a constant forecast of the win rate",
        "AUC",
        "Calibration (the analyzer's score → outcome)",
        "95 % interval",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
}
