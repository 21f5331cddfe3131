//! The replay: bar by bar, the paper broker's exits, then a decision from bars ≤ t by the live
//! rules, filled at bar t+1's open.
//!
//! Order of events in bar i: (1) the decision of bar i−1 fills at bar i's open (plus slippage);
//! (2) an open position exits if bar i touches its stop-loss or take-profit
//! ([`lifecycle::exit_in_bar`], stop-loss first), its stop as it stood at the bar's start; if
//! it stays open, a trailing stop follows the bar's favourable extreme
//! ([`trail::step_in_bar`], the live rule for a price); (3) bar i closes, the analyzer takes it and the
//! rules decide with the gates as the backtest's own broker stands; (4) equity is marked at the
//! close.

use crate::config::Config;
use crate::domain::lifecycle::{self, FillRefusal, Quote};
use crate::domain::rules::{self, Decision, Gates, RiskSettings};
use crate::domain::trail::{self, Step, Trail, Trailing};
use crate::domain::{AmdAnalysis, Direction, MlSignal, Phase, Side};
use crate::simulated::{Analyzer, Candle};

/// What the replay needs from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub symbol: String,
    pub risk: RiskSettings,
    pub max_open_positions: usize,
    /// Percent of traded value, charged on entry and on exit.
    pub fee_percent: f64,
    /// Percent of price, against the trader on every fill.
    pub slippage_percent: f64,
    /// The trail every position's stop follows (`[risk] trailing_stop_percent`, or
    /// `backtest --trail`); none: fixed stops.
    pub trail: Option<Trail>,
}

impl Settings {
    pub fn from_config(config: &Config, symbol: &str) -> Settings {
        let limits = crate::desk::Limits::from_config(config);
        Settings {
            symbol: symbol.to_string(),
            risk: limits.risk,
            max_open_positions: limits.max_open_positions,
            fee_percent: config.backtest.fee_percent,
            slippage_percent: config.backtest.slippage_percent,
            trail: crate::desk::default_trail(config),
        }
    }
}

/// One bar's readings as the matrix sees them, and the decision of the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct BarDecision {
    pub direction: Direction,
    pub phase: Phase,
    /// Rule 1's decision confidence for the cell (before rounding and min_confidence).
    pub confidence: f64,
    /// What [`rules::decide_validated`] decided. `None` when [`rules::may_act`] says it can only
    /// be a HOLD, so the rules were not asked to write out that HOLD's reasoning.
    pub decision: Option<Decision>,
}

impl BarDecision {
    /// A decision with its cell read back from it (for decisions made by hand in tests).
    pub fn from_decision(direction: Direction, decision: Decision) -> Self {
        BarDecision {
            direction,
            phase: decision.amd_phase.unwrap_or(Phase::Accumulation),
            confidence: decision.confidence,
            decision: Some(decision),
        }
    }
}

/// Where the decisions come from. The real one is [`AnalyzerDecider`]; tests inject their own.
pub trait Decider {
    /// Called once per bar, oldest first, when bar `index` has closed. `None`: no decision
    /// (the analyzer is still warming up).
    fn decide(&mut self, index: usize, bar: &Candle, gates: &Gates) -> Option<BarDecision>;
}

impl<F> Decider for F
where
    F: FnMut(usize, &Candle, &Gates) -> Option<BarDecision>,
{
    fn decide(&mut self, index: usize, bar: &Candle, gates: &Gates) -> Option<BarDecision> {
        self(index, bar, gates)
    }
}

/// The built-in analyzer and the live decision rules: the backtest's one source of decisions.
pub struct AnalyzerDecider {
    pub analyzer: Analyzer,
    symbol: String,
    risk: RiskSettings,
}

impl AnalyzerDecider {
    pub fn new(settings: &Settings) -> Self {
        AnalyzerDecider {
            analyzer: Analyzer::new(),
            symbol: settings.symbol.clone(),
            risk: settings.risk,
        }
    }
}

impl Decider for AnalyzerDecider {
    fn decide(&mut self, _index: usize, bar: &Candle, gates: &Gates) -> Option<BarDecision> {
        self.analyzer.push(bar);
        let signal = self.analyzer.signal()?;
        let (phase, phase_confidence) = self.analyzer.phase_and_confidence()?;
        let (_, confidence) = rules::matrix(signal.direction, phase, signal.confidence);
        // The rules decide every bar that may act; the rest are HOLDs whose reasoning text
        // would cost more than everything else in the bar.
        let may_act = rules::may_act(
            &self.symbol,
            signal.direction,
            phase,
            signal.confidence,
            &self.risk,
            gates,
        );
        let decision = may_act.then(|| {
            decide_on_analysis(
                &self.symbol,
                &signal,
                phase,
                phase_confidence,
                &self.risk,
                gates,
            )
        });
        Some(BarDecision {
            direction: signal.direction,
            phase,
            confidence,
            decision,
        })
    }
}

/// The live rules ([`rules::decide_validated`]) on the analyzer's readings. The live loop gets
/// the same readings as JSON and validates them first; the analyzer's are valid by construction,
/// and the indicators object (which no rule reads) is left out because building it is slow.
pub fn decide_on_analysis(
    symbol: &str,
    signal: &MlSignal,
    phase: Phase,
    phase_confidence: f64,
    risk: &RiskSettings,
    gates: &Gates,
) -> Decision {
    let amd = AmdAnalysis {
        phase,
        confidence: phase_confidence,
        indicators: serde_json::Value::Null,
    };
    rules::decide_validated(symbol, signal, &amd, serde_json::Value::Null, risk, gates)
}

/// A closed trade. Money is in the account currency, rounded to cents as the live broker does.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub side: Side,
    /// The bar whose open filled the trade, and the bar it closed in.
    pub entry_bar: usize,
    pub exit_bar: usize,
    pub entry_price: f64,
    pub exit_price: f64,
    pub quantity: f64,
    pub take_profit: f64,
    /// The decision's stop-loss (a trailing stop starts from it and the fill, see [`Trailing::start`]).
    pub stop_loss: f64,
    /// The trail the stop followed, if any.
    pub trail: Option<Trail>,
    /// The decision's entry price: the close of the bar before the fill, where the levels were
    /// set.
    pub decision_price: f64,
    /// After fees.
    pub pnl: f64,
    pub fees: f64,
    /// What slippage cost on the two fills, in money (already in the prices and the P&L).
    pub slippage: f64,
    /// `take_profit`, `stop_loss` or `end`.
    pub exit_reason: &'static str,
    pub confidence: f64,
    pub phase: Phase,
    pub direction: Direction,
}

/// Bars and trades of one matrix cell (ML direction × AMD phase).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CellStats {
    /// Bars whose readings fell in this cell.
    pub bars: usize,
    /// Sum of the decision confidences of those bars.
    pub confidence_sum: f64,
    /// Actionable decisions (they passed every rule and gate).
    pub actionable: usize,
}

/// What became of the decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecisionCounts {
    /// Bars with a decision (after the analyzer's warm-up).
    pub decided: usize,
    pub actionable: usize,
    /// Filled into a trade.
    pub filled: usize,
    /// Not filled: the next open was already past the take-profit or stop-loss, which the live
    /// broker's confirm also refuses.
    pub expired: usize,
    /// Not filled: at the next open the position would be over the cap or risk more than the
    /// limit, which the live confirm also refuses ([`lifecycle::check_fill`]).
    pub refused: usize,
    /// Not filled: the decision came on the last bar.
    pub unfilled_at_end: usize,
}

/// Everything the replay produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub start_equity: f64,
    pub trades: Vec<Trade>,
    /// Equity marked to market at each bar's close: realized P&L, plus the open position's
    /// unrealized P&L less its entry fee.
    pub equity: Vec<f64>,
    /// `cells[direction][phase]`, both in declaration order.
    pub cells: [[CellStats; 3]; 3],
    pub decisions: DecisionCounts,
    /// The first bar the decider answered (after the analyzer's warm-up).
    pub first_decision_bar: Option<usize>,
}

struct Pending {
    decision: Decision,
    direction: Direction,
}

/// An open position, as the replay and the random baseline hold it.
pub(super) struct Open {
    pub(super) side: Side,
    pub(super) entry_bar: usize,
    pub(super) entry_price: f64,
    pub(super) quantity: f64,
    pub(super) take_profit: f64,
    pub(super) stop_loss: f64,
    /// The stop as it stands: the stop-loss, or where the trail has moved it.
    pub(super) stop: f64,
    pub(super) trailing: Option<Trailing>,
    pub(super) decision_price: f64,
    pub(super) entry_fee: f64,
    /// Slippage paid on the entry fill, in money.
    pub(super) entry_slippage: f64,
    pub(super) confidence: f64,
    pub(super) phase: Phase,
    pub(super) direction: Direction,
}

impl Open {
    /// A position filled at `fill` (the open `open` plus slippage) on bar `entry_bar`.
    pub(super) fn new(
        d: &Decision,
        (side, fill, take_profit, stop_loss): (Side, f64, f64, f64),
        entry_bar: usize,
        open: f64,
        direction: Direction,
        settings: &Settings,
    ) -> Open {
        // The decision's own trail, else the backtest's.
        let trailing = d
            .trail
            .or(settings.trail)
            .map(|t| Trailing::start(t, side, fill, stop_loss));
        Open {
            side,
            entry_bar,
            entry_price: fill,
            quantity: d.position_size,
            take_profit,
            stop_loss,
            stop: trailing.map_or(stop_loss, |(_, stop)| stop),
            trailing: trailing.map(|(t, _)| t),
            decision_price: d.entry_price.unwrap_or(open),
            entry_fee: fee(d.position_size, fill, settings.fee_percent),
            entry_slippage: d.position_size * (fill - open).abs(),
            confidence: d.confidence,
            phase: d.amd_phase.unwrap_or(Phase::Accumulation),
            direction,
        }
    }
}

/// Percent of `price` against a trader who buys (`buying`) or sells.
fn slipped(price: f64, buying: bool, slippage_percent: f64) -> f64 {
    let s = slippage_percent / 100.0;
    if buying {
        price * (1.0 + s)
    } else {
        price * (1.0 - s)
    }
}

fn fee(quantity: f64, price: f64, fee_percent: f64) -> f64 {
    quantity * price * fee_percent / 100.0
}

/// The trade `o` makes when it exits at `level` (before slippage) in bar `exit_bar`.
pub(super) fn close(
    o: &Open,
    exit_bar: usize,
    level: f64,
    reason: &'static str,
    s: &Settings,
) -> Trade {
    let exit_price = slipped(level, o.side == Side::Sell, s.slippage_percent);
    let exit_fee = fee(o.quantity, exit_price, s.fee_percent);
    let fees = o.entry_fee + exit_fee;
    let slippage = o.entry_slippage + o.quantity * (exit_price - level).abs();
    let gross = lifecycle::pnl(o.side, o.quantity, o.entry_price, exit_price);
    Trade {
        side: o.side,
        entry_bar: o.entry_bar,
        exit_bar,
        entry_price: o.entry_price,
        exit_price,
        quantity: o.quantity,
        take_profit: o.take_profit,
        stop_loss: o.stop_loss,
        trail: o.trailing.map(|t| t.trail),
        decision_price: o.decision_price,
        pnl: rules::round_dp(gross - fees, 2),
        fees: rules::round_dp(fees, 2),
        slippage: rules::round_dp(slippage, 2),
        exit_reason: reason,
        confidence: o.confidence,
        phase: o.phase,
        direction: o.direction,
    }
}

/// The decision of the bar before filled at `bar`'s open, through the same
/// [`lifecycle::check_fill`] as a live confirm at the market price (the open): refused when it
/// is past the take-profit or stop-loss, when the size is over the cap, or when at that price
/// the position would risk more than the limit. The price is the bar's own, so never stale.
/// The fill is then the open plus slippage against the trader, a cost of the fill rather than
/// a market move, so it never turns an allowed fill into a refused one; a fill that slippage
/// pushes past a level still expires. Returns the side, the fill price, the TP and the SL.
pub fn fill_at_open(
    d: &Decision,
    bar: &Candle,
    settings: &Settings,
) -> Result<(Side, f64, f64, f64), FillRefusal> {
    let (Some(side), Some(tp), Some(sl)) = (d.action.side(), d.take_profit, d.stop_loss) else {
        return Err(FillRefusal::NoLevels);
    };
    let quote = Quote {
        price: bar.open,
        age: lifecycle::Age::Ago(std::time::Duration::ZERO),
    };
    lifecycle::check_fill(d, Some(quote), std::time::Duration::MAX, &settings.risk)?;
    let fill = slipped(bar.open, side == Side::Buy, settings.slippage_percent);
    if lifecycle::exit_reason(side, fill, tp, sl).is_some() {
        return Err(FillRefusal::PastLevel { price: fill });
    }
    Ok((side, fill, tp, sl))
}

/// Replay `candles` (oldest first) with decisions from `decider`; `progress` hears the bars done.
pub fn replay(
    candles: &[Candle],
    settings: &Settings,
    decider: &mut dyn Decider,
    progress: &mut dyn FnMut(usize, usize),
) -> Outcome {
    let n = candles.len();
    let start_equity = settings.risk.account_size;
    let mut trades = Vec::new();
    let mut equity = Vec::with_capacity(n);
    let mut cells = [[CellStats::default(); 3]; 3];
    let mut counts = DecisionCounts::default();
    let mut realized = 0.0;
    let mut pending: Option<Pending> = None;
    let mut open: Option<Open> = None;
    let mut first_decision_bar = None;

    for (i, bar) in candles.iter().enumerate() {
        if i & 0xFFFF == 0 {
            progress(i, n);
        }
        if let Some(p) = pending.take() {
            match fill_at_open(&p.decision, bar, settings) {
                Err(FillRefusal::PastLevel { .. } | FillRefusal::NoLevels) => counts.expired += 1,
                Err(_) => counts.refused += 1,
                Ok(filled) => {
                    counts.filled += 1;
                    open = Some(Open::new(
                        &p.decision,
                        filled,
                        i,
                        bar.open,
                        p.direction,
                        settings,
                    ));
                }
            }
        }
        if let Some(o) = &mut open {
            match trail::step_in_bar(
                o.side,
                (bar.open, bar.high, bar.low),
                o.take_profit,
                o.stop,
                o.trailing,
            ) {
                Step::Exit(exit, level) => {
                    let t = close(o, i, level, exit.as_str(), settings);
                    realized += t.pnl;
                    trades.push(t);
                    open = None;
                }
                Step::Open { stop, trailing } => (o.stop, o.trailing) = (stop, trailing),
            }
        }
        let gates = Gates {
            enabled: true,
            kill_switch: false,
            halted: false,
            symbol_has_open_position: open.is_some(),
            symbol_has_pending: false,
            open_positions: usize::from(open.is_some()),
            max_open_positions: settings.max_open_positions,
        };
        if let Some(bd) = decider.decide(i, bar, &gates) {
            counts.decided += 1;
            first_decision_bar.get_or_insert(i);
            let cell = &mut cells[bd.direction as usize][bd.phase as usize];
            cell.bars += 1;
            cell.confidence_sum += bd.confidence;
            if let Some(d) = bd.decision.filter(|d| d.action.is_actionable()) {
                cell.actionable += 1;
                counts.actionable += 1;
                if i + 1 < n {
                    pending = Some(Pending {
                        decision: d,
                        direction: bd.direction,
                    });
                } else {
                    counts.unfilled_at_end += 1;
                }
            }
        }
        let unrealized = open.as_ref().map_or(0.0, |o| {
            lifecycle::pnl(o.side, o.quantity, o.entry_price, bar.close) - o.entry_fee
        });
        equity.push(start_equity + realized + unrealized);
    }
    if let (Some(o), Some(last)) = (&open, candles.last()) {
        let t = close(o, n - 1, last.close, "end", settings);
        realized += t.pnl;
        trades.push(t);
        if let Some(e) = equity.last_mut() {
            *e = start_equity + realized;
        }
    }
    progress(n, n);
    Outcome {
        start_equity,
        trades,
        equity,
        cells,
        decisions: counts,
        first_decision_bar,
    }
}
