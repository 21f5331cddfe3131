#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The pure decision rules (SPEC rules 1 to 6) without HTTP or a store: exact numbers,
//! rounding at the edges, and the reasons a trader reads.

use autotrade_tui::domain::rules::{
    self, Decision, DecisionInput, Gates, RiskSettings, check_levels, decide, matrix, max_quantity,
    parse_phase, parse_signal, risk_reward, round_dp, size_position,
};
use autotrade_tui::domain::{Direction, Phase, Verdict};
use serde_json::{Value, json};

fn risk() -> RiskSettings {
    RiskSettings {
        account_size: 10_000.0,
        max_risk_percent: 1.5,
        max_position_percent: 20.0,
        min_confidence: 0.75,
    }
}

fn open_gates() -> Gates {
    Gates {
        enabled: true,
        kill_switch: false,
        halted: false,
        symbol_has_open_position: false,
        symbol_has_pending: false,
        open_positions: 0,
        max_open_positions: 3,
    }
}

fn sig(direction: &str, confidence: f64, entry: f64, tp: f64, sl: f64) -> Value {
    json!({"direction": direction, "confidence": confidence, "entry_price": entry,
           "take_profit": tp, "stop_loss": sl, "risk_reward_ratio": 2.5})
}

fn amd(phase: &str) -> Value {
    json!({"phase": phase, "confidence": 0.8, "indicators": {}})
}

fn run(signal: Value, phase: Value, risk: &RiskSettings, gates: &Gates) -> Decision {
    decide(&DecisionInput {
        symbol: "BTC/USD",
        signal: &Ok(signal),
        phase: &Ok(phase),
        risk,
        gates,
    })
}

#[test]
fn the_matrix_is_the_seeds_table() {
    use Direction::*;
    use Phase::*;
    let ml = 0.8;
    for (dir, phase, action, conf) in [
        (Bullish, Accumulation, Verdict::Buy, ml * 0.95),
        (Bullish, Manipulation, Verdict::Buy, ml * 0.70),
        (Bullish, Distribution, Verdict::Hold, 0.30),
        (Bearish, Distribution, Verdict::Sell, ml * 0.95),
        (Bearish, Manipulation, Verdict::Sell, ml * 0.70),
        (Bearish, Accumulation, Verdict::Hold, 0.30),
        (Neutral, Accumulation, Verdict::Hold, 0.0),
        (Neutral, Manipulation, Verdict::Hold, 0.0),
        (Neutral, Distribution, Verdict::Hold, 0.0),
    ] {
        assert_eq!(matrix(dir, phase, ml), (action, conf), "{dir} × {phase}");
    }
}

#[test]
fn decision_confidence_has_no_binary_noise() {
    // 0.87 × 0.95 is 0.8264999999999999 in f64; the trader reads 0.8265.
    let d = run(
        sig("bullish", 0.87, 45000.0, 47500.0, 44000.0),
        amd("accumulation"),
        &risk(),
        &open_gates(),
    );
    assert_eq!(d.action, Verdict::Buy);
    assert_eq!(d.confidence, 0.8265);
}

#[test]
fn a_confidence_a_hair_below_min_confidence_is_a_hold() {
    // 0.78943 × 0.95 = 0.7499585: below 0.75, even though it rounds to 0.7500 at 4 dp.
    let d = run(
        sig("bullish", 0.78943, 45000.0, 47500.0, 44000.0),
        amd("accumulation"),
        &risk(),
        &open_gates(),
    );
    assert_eq!(d.action, Verdict::Hold, "{}", d.reasoning);
    assert!(d.reasoning.contains("0.7499585"), "{}", d.reasoning);
    assert!(
        d.reasoning.contains("min_confidence 0.75"),
        "{}",
        d.reasoning
    );
    assert!(d.risk_reward.is_none());
}

#[test]
fn a_confidence_exactly_at_min_confidence_trades() {
    let r = RiskSettings {
        min_confidence: 0.76,
        ..risk()
    };
    // 0.8 × 0.95 = 0.7599999999999999 in f64.
    let d = run(
        sig("bullish", 0.8, 45000.0, 47500.0, 44000.0),
        amd("accumulation"),
        &r,
        &open_gates(),
    );
    assert_eq!(d.action, Verdict::Buy, "{}", d.reasoning);
    assert_eq!(d.confidence, 0.76);
}

#[test]
fn sizing_the_specs_example_is_capped() {
    let s = size_position(&risk(), 45000.0, 44000.0);
    assert_eq!(s.risk_quantity, 0.15);
    assert_eq!(s.cap_quantity, 0.04444444);
    assert_eq!(s.quantity, 0.04444444);
    assert!(s.capped);
    let rr = risk_reward(s.quantity, 45000.0, 47500.0, 44000.0);
    assert_eq!(rr.risk_amount, 44.44);
    assert_eq!(rr.reward_amount, 111.11);
    assert_eq!(rr.risk_reward_ratio, 2.5);
    assert_eq!(rr.risk_percent, 2.22);
    assert_eq!(rr.reward_percent, 5.56);
}

#[test]
fn sizing_under_the_cap_is_exact() {
    let r = RiskSettings {
        max_position_percent: 100.0,
        ..risk()
    };
    let s = size_position(&r, 45000.0, 44000.0);
    // 150 / 1000 = 0.15 exactly, not 0.14999999.
    assert_eq!(s.quantity, 0.15);
    assert!(!s.capped);
    let s = size_position(&risk(), 3.0, 2.9);
    // 150 / 0.1 = 1500 units, but 2000 / 3 = 666.66666666 is the cap.
    assert_eq!(s.quantity, 666.66666666);
}

#[test]
fn the_cap_is_floored_never_rounded_up() {
    // 2000 / 50794.27 = 0.039374519999992…: the 8 dp floor is 0.03937451.
    let q = max_quantity(&risk(), 50794.27);
    assert_eq!(q, 0.03937451);
    assert!(q * 50794.27 <= 2000.0);
}

#[test]
fn no_position_ever_exceeds_the_cap() {
    let cap_value = 2000.0;
    let mut violations = Vec::new();
    for cents in (100u64..20_000_000).step_by(997) {
        let entry = cents as f64 / 100.0;
        let q = max_quantity(&risk(), entry);
        let exact = cap_value / entry;
        if q * entry > cap_value * (1.0 + 1e-15) || q < exact - 1.0000001e-8 {
            violations.push((entry, q));
        }
    }
    for entry in [50794.27, 77273.99, 99900.05, 100100.05, 101588.54] {
        let q = max_quantity(&risk(), entry);
        if q * entry > cap_value * (1.0 + 1e-15) {
            violations.push((entry, q));
        }
    }
    assert!(violations.is_empty(), "{violations:?}");
}

#[test]
fn money_rounds_half_away_from_zero_to_the_cent() {
    assert_eq!(round_dp(1.005, 2), 1.01);
    assert_eq!(round_dp(-1.005, 2), -1.01);
    assert_eq!(round_dp(2.675, 2), 2.68);
    assert_eq!(round_dp(44.444444, 2), 44.44);
    // 1.005 units risking 1 per unit: 1.005 at risk, 1.01 to the cent.
    let rr = risk_reward(1.005, 101.0, 103.0, 100.0);
    assert_eq!(rr.risk_amount, 1.01);
    assert_eq!(rr.reward_amount, 2.01);
}

#[test]
fn rounding_survives_extreme_values() {
    assert_eq!(round_dp(1e300, 2), 1e300);
    assert_eq!(round_dp(0.0, 2), 0.0);
    assert!(round_dp(f64::NAN, 2).is_nan());
    assert_eq!(round_dp(f64::INFINITY, 2), f64::INFINITY);
    assert_eq!(round_dp(1.23456789e-12, 4), 0.0);
}

#[test]
fn levels_are_checked_for_the_side() {
    assert_eq!(
        check_levels(Verdict::Buy, 50.0, 55.0, 50.0).unwrap_err(),
        "stop_loss 50 equals entry_price 50"
    );
    assert!(check_levels(Verdict::Buy, 100.0, 110.0, 95.0).is_ok());
    assert!(check_levels(Verdict::Sell, 100.0, 90.0, 105.0).is_ok());
    let e = check_levels(Verdict::Buy, 100.0, 99.5, 95.0).unwrap_err();
    assert!(
        e.contains("take_profit 99.5") && e.contains("entry_price 100"),
        "{e}"
    );
    let e = check_levels(Verdict::Sell, 100.0, 90.0, 99.0).unwrap_err();
    assert!(
        e.contains("stop_loss 99") && e.contains("entry_price 100"),
        "{e}"
    );
    let e = check_levels(Verdict::Sell, 100.0, 100.0, 105.0).unwrap_err();
    assert!(e.contains("take_profit 100"), "{e}");
}

#[test]
fn parse_signal_says_what_is_wrong() {
    let ok = sig("bullish", 0.87, 45000.0, 47500.0, 44000.0);
    assert!(parse_signal(&ok).is_ok());
    let cases: Vec<(Value, &str)> = vec![
        (json!("hello"), "expected a JSON object, got a string"),
        (json!({}), "missing field direction"),
        (
            {
                let mut v = ok.clone();
                v["direction"] = json!(1);
                v
            },
            "direction must be a string",
        ),
        (
            {
                let mut v = ok.clone();
                v["entry_price"] = json!("45000");
                v
            },
            "entry_price must be a number",
        ),
        (
            {
                let mut v = ok.clone();
                v["stop_loss"] = json!("-inf");
                v
            },
            "stop_loss -inf is not finite",
        ),
        (
            {
                let mut v = ok.clone();
                v["confidence"] = json!(null);
                v
            },
            "missing field confidence",
        ),
        (
            {
                let mut v = ok.clone();
                v.as_object_mut().unwrap().remove("risk_reward_ratio");
                v
            },
            "missing field risk_reward_ratio",
        ),
    ];
    for (v, needle) in cases {
        let e = parse_signal(&v).unwrap_err();
        assert!(e.contains(needle), "{v}: {e:?} should contain {needle:?}");
        assert!(e.starts_with("ML signal"), "{e}");
    }
}

#[test]
fn parse_phase_says_what_is_wrong() {
    assert_eq!(
        parse_phase(&amd("distribution")).unwrap().phase,
        Phase::Distribution
    );
    let e = parse_phase(&json!({"phase": "Accumulation", "confidence": 0.5})).unwrap_err();
    assert!(e.contains("unknown phase \"Accumulation\""), "{e}");
    let e = parse_phase(&json!({"phase": "accumulation", "confidence": 1.01})).unwrap_err();
    assert!(e.contains("confidence 1.01 is outside 0..=1"), "{e}");
    let e = parse_phase(&json!(null)).unwrap_err();
    assert!(e.contains("expected a JSON object, got null"), "{e}");
}

#[test]
fn a_fetch_failure_is_an_untrusted_hold_naming_the_endpoint() {
    let r = risk();
    let g = open_gates();
    let d = decide(&DecisionInput {
        symbol: "BTC/USD",
        signal: &Err("GET x: HTTP 500".into()),
        phase: &Ok(amd("accumulation")),
        risk: &r,
        gates: &g,
    });
    assert_eq!((d.action, d.confidence), (Verdict::Hold, 0.0));
    assert_eq!(d.reasoning, "ML signal unavailable: GET x: HTTP 500");
    let d = decide(&DecisionInput {
        symbol: "BTC/USD",
        signal: &Ok(sig("bullish", 0.87, 45000.0, 47500.0, 44000.0)),
        phase: &Err("GET y: timed out after 0.5s".into()),
        risk: &r,
        gates: &g,
    });
    assert_eq!((d.action, d.confidence), (Verdict::Hold, 0.0));
    assert_eq!(
        d.reasoning,
        "AMD phase unavailable: GET y: timed out after 0.5s"
    );
}

#[test]
fn bad_levels_on_an_actionable_signal_zero_the_confidence() {
    let d = run(
        sig("bearish", 0.9, 100.0, 101.0, 105.0),
        amd("distribution"),
        &risk(),
        &open_gates(),
    );
    assert_eq!((d.action, d.confidence), (Verdict::Hold, 0.0));
    assert!(
        d.reasoning.contains("SELL needs take_profit < entry_price"),
        "{}",
        d.reasoning
    );
    assert_eq!(d.position_size, 0.0);
}

#[test]
fn gates_block_in_the_traders_words() {
    let s = "ETH/USD";
    let g = open_gates();
    assert_eq!(g.blocked_by(s), None);
    let cases = [
        (
            Gates {
                enabled: false,
                ..g
            },
            "auto-trading is disabled",
        ),
        (
            Gates {
                kill_switch: true,
                enabled: false,
                ..g
            },
            "kill switch is on",
        ),
        (
            Gates {
                symbol_has_open_position: true,
                ..g
            },
            "ETH/USD already has an open position",
        ),
        (
            Gates {
                symbol_has_pending: true,
                ..g
            },
            "ETH/USD already has a pending decision",
        ),
        (
            Gates {
                open_positions: 3,
                ..g
            },
            "open positions 3 >= max_open_positions 3",
        ),
    ];
    for (gates, why) in cases {
        assert_eq!(gates.blocked_by(s).as_deref(), Some(why));
        let d = run(
            sig("bullish", 0.87, 45000.0, 47500.0, 44000.0),
            amd("accumulation"),
            &risk(),
            &gates,
        );
        assert_eq!(d.action, Verdict::Hold);
        assert!(d.reasoning.contains("blocked"), "{}", d.reasoning);
        assert!(d.risk_reward.is_none());
        assert_eq!(d.position_size, 0.0);
    }
}

#[test]
fn an_actionable_decision_carries_its_size_and_analysis() {
    let d = run(
        sig("bullish", 0.87, 45000.0, 47500.0, 44000.0),
        amd("accumulation"),
        &risk(),
        &open_gates(),
    );
    assert_eq!(d.action, Verdict::Buy);
    assert_eq!(d.position_size, 0.04444444);
    assert_eq!(d.entry_price, Some(45000.0));
    assert_eq!(d.take_profit, Some(47500.0));
    assert_eq!(d.stop_loss, Some(44000.0));
    assert_eq!(d.amd_phase, Some(Phase::Accumulation));
    let rr = d.risk_reward.unwrap();
    assert_eq!((rr.risk_amount, rr.reward_amount), (44.44, 111.11));
    assert!(d.reasoning.starts_with("BUY"), "{}", d.reasoning);
}

#[test]
fn numbers_print_as_typed() {
    assert_eq!(rules::fmt_num(50.0), "50");
    assert_eq!(rules::fmt_num(44000.5), "44000.5");
    assert_eq!(rules::fmt_num(-5.0), "-5");
}
