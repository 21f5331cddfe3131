//! The dashboard's two forms: a new manual trade (`t`) and a new size for a pending decision
//! (`s`). Plain state: `App::update` feeds them keys and what the dashboard knows of the
//! market, and they keep a preview computed by the rules the store will apply
//! (`domain::manual`). No I/O here; drawing only reads the preview.

use crate::domain::manual::{self, Level, ManualOrder, ManualRefusal, MarketContext};
use crate::domain::money::fmt_qty;
use crate::domain::rules::{Decision, RiskSettings, max_quantity};
use crate::domain::{Direction, MlSignal, Side};
use crate::store::DecisionLog;

/// The longest text a number field takes.
const MAX_LEN: usize = 16;

/// A number typed by the trader: digits and one decimal point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberField {
    pub text: String,
}

impl NumberField {
    /// Type a character; anything but a digit or a first `.` is ignored.
    pub fn push(&mut self, c: char) -> bool {
        let ok = c.is_ascii_digit() || (c == '.' && !self.text.contains('.'));
        if ok && self.text.len() < MAX_LEN {
            self.text.push(c);
            true
        } else {
            false
        }
    }

    /// `None` when empty (the rules fill it in); an error when it is not a number > 0.
    pub fn value(&self, name: &str) -> Result<Option<f64>, String> {
        if self.text.is_empty() {
            return Ok(None);
        }
        match self.text.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
            _ => Err(format!("{name} {} is not a number > 0", self.text)),
        }
    }
}

/// What the dashboard knows about a symbol when the form is drawn: the store's latest price,
/// the engine's latest valid signal, and the gate that would refuse a new trade.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Known {
    pub price: Option<f64>,
    pub signal: Option<MlSignal>,
    /// As the last snapshot saw it; the store checks again when the trade is placed.
    pub blocked: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeField {
    Symbol,
    Side,
    Size,
    TakeProfit,
    StopLoss,
}

impl TradeField {
    pub const ALL: [TradeField; 5] = [
        TradeField::Symbol,
        TradeField::Side,
        TradeField::Size,
        TradeField::TakeProfit,
        TradeField::StopLoss,
    ];

    fn step(self, delta: isize) -> TradeField {
        let i = Self::ALL.iter().position(|f| *f == self).unwrap_or(0) as isize;
        let n = Self::ALL.len() as isize;
        Self::ALL[(i + delta).rem_euclid(n) as usize]
    }
}

/// The manual trade form.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeForm {
    /// The configured symbols, one of which is chosen.
    pub symbols: Vec<String>,
    pub symbol: usize,
    pub side: Side,
    /// The trader picked the side; until then it follows the signal's direction.
    pub side_chosen: bool,
    pub size: NumberField,
    pub take_profit: NumberField,
    pub stop_loss: NumberField,
    pub field: TradeField,
    /// What the dashboard knows about the chosen symbol.
    pub known: Known,
    /// The decision the rules would make from what is known, or why they would refuse.
    pub preview: Result<Decision, String>,
    /// When the preview is refused only by limits a trader may lift on purpose: just enough
    /// to lift them (Enter then asks, showing the figure in red).
    pub lift: Option<manual::Overrides>,
}

impl TradeForm {
    pub fn new(symbols: Vec<String>, symbol: usize) -> TradeForm {
        let symbol = symbol.min(symbols.len().saturating_sub(1));
        TradeForm {
            symbols,
            symbol,
            side: Side::Buy,
            side_chosen: false,
            size: NumberField::default(),
            take_profit: NumberField::default(),
            stop_loss: NumberField::default(),
            field: TradeField::Symbol,
            known: Known::default(),
            preview: Err("loading…".into()),
            lift: None,
        }
    }

    pub fn symbol(&self) -> &str {
        self.symbols.get(self.symbol).map_or("", String::as_str)
    }

    /// The order as typed, or the first field that is not a number.
    pub fn order(&self) -> Result<ManualOrder, String> {
        Ok(ManualOrder {
            symbol: self.symbol().to_string(),
            side: self.side,
            size: self.size.value("size")?,
            take_profit: self.take_profit.value("TP")?,
            stop_loss: self.stop_loss.value("SL")?,
            // The config's default trail, when it has one, is the desk's to give.
            trail: None,
        })
    }

    /// Recompute the preview from what is known now.
    pub fn refresh(&mut self, known: Known, risk: &RiskSettings) {
        if !self.side_chosen {
            self.side = match known.signal.as_ref().map(|s| s.direction) {
                Some(Direction::Bearish) => Side::Sell,
                _ => Side::Buy,
            };
        }
        self.known = known;
        let market = MarketContext {
            price: self.known.price,
            signal: self.known.signal.clone(),
            // As the store will keep it, so the preview reads as the stored decision will.
            raw_signal: self
                .known
                .signal
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or_default(),
            phase: None,
        };
        let manual = crate::domain::lifecycle::Origin::Manual;
        self.lift = None;
        self.preview = self.order().and_then(|o| {
            manual::checked_decision(&o, &market, risk, manual, &manual::Overrides::default())
                .map_err(|e| {
                    self.lift = manual::needed_overrides(&o, &market, risk, manual);
                    let e = in_form_words(&e);
                    if self.lift.is_some() {
                        format!("{e}; Enter asks to take it on purpose")
                    } else {
                        e
                    }
                })
        });
    }

    pub fn next_field(&mut self, delta: isize) {
        self.field = self.field.step(delta);
    }

    /// ←/→/Space: the next symbol or side; nothing in a number field.
    pub fn next_choice(&mut self, delta: isize) {
        match self.field {
            TradeField::Symbol if !self.symbols.is_empty() => {
                let n = self.symbols.len() as isize;
                self.symbol = (self.symbol as isize + delta).rem_euclid(n) as usize;
            }
            TradeField::Side => {
                self.side = match self.side {
                    Side::Buy => Side::Sell,
                    Side::Sell => Side::Buy,
                };
                self.side_chosen = true;
            }
            _ => {}
        }
    }

    fn number_field(&mut self) -> Option<&mut NumberField> {
        match self.field {
            TradeField::Size => Some(&mut self.size),
            TradeField::TakeProfit => Some(&mut self.take_profit),
            TradeField::StopLoss => Some(&mut self.stop_loss),
            TradeField::Symbol | TradeField::Side => None,
        }
    }

    /// A typed character: into a number field; `b`/`s` pick the side; a letter on the
    /// symbol picks the next symbol that starts with it.
    pub fn type_char(&mut self, c: char) {
        match self.field {
            TradeField::Side => match c.to_ascii_lowercase() {
                'b' => {
                    self.side = Side::Buy;
                    self.side_chosen = true;
                }
                's' => {
                    self.side = Side::Sell;
                    self.side_chosen = true;
                }
                _ => {}
            },
            TradeField::Symbol => {
                let c = c.to_ascii_uppercase();
                let n = self.symbols.len();
                if let Some(i) = (1..=n)
                    .map(|k| (self.symbol + k) % n)
                    .find(|&i| self.symbols[i].starts_with(c))
                {
                    self.symbol = i;
                }
            }
            _ => {
                if let Some(f) = self.number_field() {
                    f.push(c);
                }
            }
        }
    }

    pub fn delete_char(&mut self) {
        if let Some(f) = self.number_field() {
            f.text.pop();
        }
    }

    pub fn clear_field(&mut self) {
        if let Some(f) = self.number_field() {
            f.text.clear();
        }
    }

    /// What the effect and the events say about this order.
    pub fn label(&self) -> String {
        format!("{} {}", self.side, self.symbol())
    }
}

/// The form for a new size of a pending decision.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeForm {
    pub log_id: String,
    /// The decision as it was when the form opened.
    pub decision: Decision,
    pub size: NumberField,
    /// The largest size the cap allows at the decision's entry.
    pub cap: Option<f64>,
    /// The decision with the new size and its risk/reward, or why it cannot have it.
    pub preview: Result<Decision, String>,
}

impl SizeForm {
    pub fn new(log: &DecisionLog, risk: &RiskSettings) -> SizeForm {
        let mut f = SizeForm {
            log_id: log.log_id.clone(),
            decision: log.decision.clone(),
            size: NumberField::default(),
            cap: log.decision.entry_price.map(|e| max_quantity(risk, e)),
            preview: Err(String::new()),
        };
        f.refresh(risk);
        f
    }

    pub fn refresh(&mut self, risk: &RiskSettings) {
        self.preview = match self.size.value("size") {
            Ok(Some(q)) => manual::resize(&self.decision, q, risk).and_then(|d| {
                manual::fat_finger(&d, risk, &manual::Overrides::default(), false).map(|()| d)
            }),
            Ok(None) => Err("type the new size".into()),
            Err(e) => Err(e),
        };
    }

    /// `BUY 0.04444444 BTC/USD (decision_…)`.
    pub fn label(&self) -> String {
        format!(
            "{} {} {} ({})",
            self.decision.action,
            fmt_qty(self.decision.position_size),
            self.decision.symbol,
            self.log_id
        )
    }
}

/// A form open on the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Form {
    Trade(TradeForm),
    Size(SizeForm),
}

/// A manual-order refusal in the form's words: it has fields, not flags.
pub fn in_form_words(e: &ManualRefusal) -> String {
    e.explain(
        |level| match level {
            Level::TakeProfit => "type a TP".into(),
            Level::StopLoss => "type an SL".into(),
        },
        "type TP/SL",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_fields_take_digits_and_one_point() {
        let mut f = NumberField::default();
        for c in "1a.2.5x".chars() {
            f.push(c);
        }
        assert_eq!(f.text, "1.25");
        assert_eq!(f.value("size"), Ok(Some(1.25)));
        assert_eq!(NumberField::default().value("size"), Ok(None));
        let dot = NumberField { text: ".".into() };
        assert!(
            dot.value("TP")
                .unwrap_err()
                .contains("TP . is not a number")
        );
        let zero = NumberField { text: "0".into() };
        assert!(zero.value("size").is_err());
    }

    #[test]
    fn fields_cycle_both_ways() {
        let mut f = TradeForm::new(vec!["BTC/USD".into(), "ETH/USD".into()], 0);
        f.next_field(-1);
        assert_eq!(f.field, TradeField::StopLoss);
        f.next_field(1);
        assert_eq!(f.field, TradeField::Symbol);
        f.type_char('e');
        assert_eq!(f.symbol(), "ETH/USD");
        f.next_choice(1);
        assert_eq!(f.symbol(), "BTC/USD");
    }
}
