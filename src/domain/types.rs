//! Plain types shared by the rules, the sources, the store and the UI.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The ML engine's view of where price is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Bullish,
    Bearish,
    Neutral,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bullish" => Some(Self::Bullish),
            "bearish" => Some(Self::Bearish),
            "neutral" => Some(Self::Neutral),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bullish => "bullish",
            Self::Bearish => "bearish",
            Self::Neutral => "neutral",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The AMD (Power of 3) phase of the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Accumulation,
    Manipulation,
    Distribution,
}

impl Phase {
    pub const ALL: [Phase; 3] = [
        Phase::Accumulation,
        Phase::Manipulation,
        Phase::Distribution,
    ];
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "accumulation" => Some(Self::Accumulation),
            "manipulation" => Some(Self::Manipulation),
            "distribution" => Some(Self::Distribution),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accumulation => "accumulation",
            Self::Manipulation => "manipulation",
            Self::Distribution => "distribution",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a decision tells the trader to do: the rules' verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Buy,
    Sell,
    Hold,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
            Self::Hold => "HOLD",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BUY" => Some(Self::Buy),
            "SELL" => Some(Self::Sell),
            "HOLD" => Some(Self::Hold),
            _ => None,
        }
    }
    pub fn is_actionable(self) -> bool {
        !matches!(self, Self::Hold)
    }
    /// The side of the order a BUY or SELL verdict makes; none for a HOLD.
    pub fn side(self) -> Option<Side> {
        match self {
            Self::Buy => Some(Side::Buy),
            Self::Sell => Some(Side::Sell),
            Self::Hold => None,
        }
    }
}

impl From<Side> for Verdict {
    fn from(side: Side) -> Self {
        match side {
            Side::Buy => Verdict::Buy,
            Side::Sell => Verdict::Sell,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The side of an order or a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BUY" => Some(Self::Buy),
            "SELL" => Some(Self::Sell),
            _ => None,
        }
    }
    /// The side of the order that closes a position on this side.
    pub fn closing(self) -> Side {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated ML signal (SPEC "ML Engine").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlSignal {
    pub direction: Direction,
    pub confidence: f64,
    pub entry_price: f64,
    pub take_profit: f64,
    pub stop_loss: f64,
    pub risk_reward_ratio: f64,
}

/// A validated AMD phase analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmdAnalysis {
    pub phase: Phase,
    pub confidence: f64,
    pub indicators: serde_json::Value,
}
