//! Dashboard state and its one way in: `App::update(Action) -> Vec<Effect>`.
//!
//! Keys, ticks, store snapshots and engine events all arrive as [`Action`]s. `update` changes
//! state and returns side effects as data ([`Effect`]); the runner (`tui.rs`) performs them off
//! the UI thread and sends their results back as `Action::Done`. Drawing only reads `App`.

mod input;
mod views;

use crate::config::Config;
pub use crate::desk::{History, Snapshot};
use crate::domain::manual::ManualOrder;
use crate::domain::money::{fmt_price, fmt_qty, fmt_signed};
use crate::domain::rules::{self, Gates, RiskSettings};
use crate::domain::{Direction, MlSignal, Phase, Verdict};
use crate::engine::{CycleSummary, EngineEvent, Health, SymbolView};
use crate::form::{Form, Known, SizeForm, TradeForm};
use crate::keymap::{self, Command, Mode};
use crate::store::{DecisionLog, Position, Status};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;
pub use views::{fmt_age, fmt_countdown};

/// How many dashboard-side events (refusals, engine errors) are kept.
const LOCAL_EVENTS: usize = 50;

/// The settings the dashboard shows, taken from the config once (a remote dashboard gets
/// them from `serve`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub user_id: String,
    pub live: bool,
    pub simulated: bool,
    /// On the simulated market: wall seconds per candle, its speed; `None` with an ML engine
    /// (and from a server that does not say).
    #[serde(default)]
    pub seconds_per_candle: Option<f64>,
    pub symbols: Vec<String>,
    pub max_open_positions: usize,
    pub account_size: f64,
    /// How long a pending decision lives before it expires, in ms.
    pub pending_expiry_ms: i64,
    /// With a live feed: a price older than this (ms) is stale, and shown so.
    pub stale_after_ms: Option<i64>,
    /// A real broker's name (its account is shown instead of the ledger's equity); `None` on
    /// the paper ledger.
    pub broker: Option<String>,
    /// `[risk]` loss limits, percent (0: off); the header shows how much of each is used.
    #[serde(default)]
    pub daily_loss_limit_percent: f64,
    #[serde(default)]
    pub max_drawdown_percent: f64,
    pub color: bool,
}

impl Settings {
    pub fn from_config(config: &Config, color: bool) -> Settings {
        Settings {
            user_id: config.auto_trade.user_id.clone(),
            live: !config.auto_trade.paper_trading,
            simulated: config.is_simulated(),
            seconds_per_candle: config
                .is_simulated()
                .then_some(config.simulation.seconds_per_candle),
            symbols: config.auto_trade.symbols.clone(),
            max_open_positions: config.auto_trade.max_open_positions,
            account_size: config.account.size,
            pending_expiry_ms: config.pending_expiry().as_millis().min(i64::MAX as u128) as i64,
            broker: match config.broker.kind {
                crate::config::BrokerKind::Paper => None,
                crate::config::BrokerKind::Alpaca => Some("alpaca".into()),
            },
            stale_after_ms: config.market_data.provider.is_feed().then(|| {
                config
                    .market_data
                    .stale_after()
                    .as_millis()
                    .min(i64::MAX as u128) as i64
            }),
            daily_loss_limit_percent: config.risk_limits.daily_loss_limit_percent,
            max_drawdown_percent: config.risk_limits.max_drawdown_percent,
            color,
        }
    }
}

/// Everything that can change the dashboard.
#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// The wall clock, once a second and before each batch of actions.
    Tick {
        now_ms: i64,
    },
    Resize,
    Snapshot(Box<Snapshot>),
    Engine(EngineEvent),
    /// The result of an [`Effect`].
    Done {
        what: String,
        outcome: Outcome,
    },
    /// Whose engine this dashboard shows: another process's (attached; `running` false once
    /// it stopped), or `None` once this dashboard runs its own.
    Attached(Option<Attached>),
    /// Things to tell the trader on this terminal (bell, desktop notifications), read from
    /// the store after this dashboard started.
    Alerts(Vec<crate::notify::Alert>),
    /// Whether this dashboard's store can write (a full disk), as its last write found.
    StoreHealth(crate::store::WriteHealth),
    /// A signal, the end of input or a terminal failure.
    Quit,
}

/// The engine this dashboard is attached to (another dashboard, `serve` or `run` on the same
/// data dir): its pid and since when it runs, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub pid: Option<u32>,
    pub since_ms: Option<i64>,
    /// False once it stopped (or, remote, cannot be reached): the dashboard shows the last
    /// state (and, local, offers to run the engine).
    pub running: bool,
    /// A remote `serve` (`attach URL`): its address.
    pub remote: Option<String>,
}

impl Attached {
    /// Which engine: `pid 1234`, or the remote server's address.
    pub fn pid_text(&self) -> String {
        match (&self.remote, self.pid) {
            (Some(url), _) => url.clone(),
            (None, Some(p)) => format!("pid {p}"),
            (None, None) => "pid unknown".into(),
        }
    }
}

/// How an effect ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the store's own event says what happened.
    Ok,
    /// The store refused, with its reason (not pending any more, a gate, expired ...).
    Refused(String),
    /// Something broke (the store, a closed channel).
    Failed(String),
    /// Refused, and the store has already recorded why as an event (a manual trade the
    /// rules or the gates refused): the events pane shows that, nothing to add.
    Recorded,
    /// The history view's data, loaded.
    History(Box<History>),
    /// The analytics view's report, loaded.
    Report(Box<crate::analytics::report::Report>),
}

/// A side effect `update` asks the runner to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Confirm {
        log_id: String,
        label: String,
    },
    Cancel {
        log_id: String,
        label: String,
    },
    SetEnabled(bool),
    Kill,
    /// The kill switch, then every open position closed (`kill --flatten`).
    Flatten,
    /// Clear a loss halt (`enable --reset`).
    ResetHalt,
    /// Leave the dashboard (asked when positions are open or decisions pending).
    Quit,
    CheckNow,
    /// Run the engine in this dashboard (the one it was attached to has stopped).
    StartEngine,
    /// A manual trade, placed like `trade` without `--yes`: fresh market, the rules, the gates.
    Trade {
        order: ManualOrder,
        label: String,
        /// Limits the trader lifted on purpose in the form (asked in red first).
        allow: crate::domain::manual::Overrides,
    },
    /// A new size for a pending decision.
    Resize {
        log_id: String,
        size: f64,
        label: String,
    },
    /// Close an open position at the latest price, like `close`.
    ClosePosition {
        position_id: i64,
        symbol: String,
        label: String,
    },
    /// Load the history view: closed positions and events containing `query`.
    LoadHistory {
        query: String,
    },
    /// Load the analytics view's report (over every decision).
    LoadReport,
}

impl Effect {
    /// What it does, in the trader's words, for the result message.
    pub fn describe(&self) -> String {
        match self {
            Effect::Confirm { label, .. } => format!("confirm {label}"),
            Effect::Cancel { label, .. } => format!("cancel {label}"),
            Effect::SetEnabled(true) => "enable".into(),
            Effect::SetEnabled(false) => "disable".into(),
            Effect::Kill => "kill switch".into(),
            Effect::Flatten => "flatten".into(),
            Effect::ResetHalt => "reset the loss halt".into(),
            Effect::Quit => "quit".into(),
            Effect::CheckNow => "check now".into(),
            Effect::StartEngine => "run the engine here".into(),
            Effect::LoadHistory { .. } => "load the history".into(),
            Effect::LoadReport => "load the analytics".into(),
            Effect::Trade { label, .. } => format!("manual trade {label}"),
            Effect::Resize { label, size, .. } => format!("resize {label} to {}", fmt_qty(*size)),
            Effect::ClosePosition { label, .. } => format!("close {label}"),
        }
    }
}

/// A y/n question that holds the effect it will perform.
#[derive(Debug, Clone, PartialEq)]
pub struct Popup {
    pub title: String,
    pub question: String,
    /// A figure over a limit, shown in red above the question.
    pub alert: Option<String>,
    pub on_yes: Effect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Pending,
    Positions,
    Signals,
    Events,
}

impl Focus {
    /// Tab's order; `back` for Shift-Tab.
    pub fn next(self, back: bool) -> Focus {
        const ORDER: [Focus; 4] = [
            Focus::Pending,
            Focus::Positions,
            Focus::Signals,
            Focus::Events,
        ];
        let i = ORDER.iter().position(|f| *f == self).unwrap_or(0);
        let n = ORDER.len();
        ORDER[if back { (i + n - 1) % n } else { (i + 1) % n }]
    }
}

/// A dashboard-side event: a refusal, an engine error, a symbol that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalEvent {
    pub at_ms: i64,
    pub level: &'static str,
    pub message: String,
    /// How many times in a row it happened.
    pub count: u32,
}

/// One line of the events pane, store and dashboard events merged.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub at_ms: i64,
    pub level: String,
    pub message: String,
}

/// One row of the signals table, from the engine's latest view and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalRow {
    pub symbol: String,
    pub price: Option<f64>,
    pub ml: Reading<Direction>,
    pub amd: Reading<Phase>,
    pub last: Option<LastDecision>,
}

/// A reading of the source: known, failed with a reason, or not seen yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading<T> {
    Known { value: T, confidence: Option<f64> },
    Failed(String),
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastDecision {
    pub action: Verdict,
    pub status: Status,
    pub confidence: f64,
    pub at_ms: i64,
    pub reasoning: String,
}

/// Which list of the history view has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryPane {
    Closed,
    Events,
}

/// The trade history view: closed positions with their P&L and the events log, searchable.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryView {
    /// None while the first load is on its way.
    pub data: Option<History>,
    /// The search as typed (with `/`).
    pub query: String,
    /// The search last run: the data shown answers it.
    pub asked: String,
    /// The search is being typed.
    pub searching: bool,
    pub pane: HistoryPane,
    pub closed_cursor: usize,
    pub events_cursor: usize,
}

/// The analytics view (`a`): the report, read from its line `from` on.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsView {
    /// None while the first load is on its way.
    pub data: Option<crate::analytics::report::Report>,
    pub from: usize,
}

/// Most alerts waiting for the terminal; older ones beyond it are not told there.
const MAX_WAITING_ALERTS: usize = 50;

/// The dashboard's state.
#[derive(Debug, Clone)]
pub struct App {
    pub settings: Settings,
    pub now_ms: i64,
    pub snapshot: Option<Snapshot>,
    /// The engine's latest view of each symbol.
    pub views: BTreeMap<String, SymbolView>,
    pub health: Health,
    /// How the live market-data feed gets prices; `None` without one.
    pub feed: Option<(&'static str, crate::market::FeedState)>,
    pub checking: bool,
    pub next_check_at_ms: Option<i64>,
    pub last_cycle: Option<CycleSummary>,
    pub focus: Focus,
    pub selected_pending: Option<String>,
    pub selected_position: Option<i64>,
    pub popup: Option<Popup>,
    /// The manual trade form or the new-size form, when one is open.
    pub form: Option<Form>,
    /// Sizing limits for the forms' previews (the store applies the same ones).
    pub risk: RiskSettings,
    pub show_help: bool,
    pub local_events: Vec<LocalEvent>,
    /// The row under the cursor in the signals and events panes (they scroll with it).
    pub signals_cursor: usize,
    pub events_cursor: usize,
    /// Symbols containing this (any case) show in the signals pane; empty: all.
    pub filter: String,
    /// The filter is being typed.
    pub filtering: bool,
    /// The trade history view, when open (`h`).
    pub history: Option<HistoryView>,
    /// The analytics view, when open (`a`).
    pub analytics: Option<AnalyticsView>,
    /// Attached to another process's engine; `None`: this dashboard runs the engine.
    pub attached: Option<Attached>,
    /// A refresh moved the selection off a decision that vanished, and the trader has not
    /// seen the new one highlighted yet: `y`/`n` must not act on it until it is drawn.
    selection_unseen: bool,
    /// Alerts the runner has yet to write to the terminal (see [`App::take_alerts`]).
    alerts: Vec<crate::notify::Alert>,
    /// Whether the store writes: the header's banner while it cannot.
    pub store_health: crate::store::WriteHealth,
    quit: bool,
    dirty: bool,
}

impl App {
    /// A dashboard with the default risk percentages; see [`App::with_risk`].
    pub fn new(settings: Settings, now_ms: i64) -> App {
        let risk = RiskSettings {
            account_size: settings.account_size,
            max_risk_percent: 1.5,
            max_position_percent: 20.0,
            min_confidence: 0.75,
        };
        App {
            settings,
            now_ms,
            snapshot: None,
            views: BTreeMap::new(),
            health: Health::Ok,
            feed: None,
            checking: false,
            next_check_at_ms: None,
            last_cycle: None,
            focus: Focus::Pending,
            selected_pending: None,
            selected_position: None,
            popup: None,
            form: None,
            risk,
            show_help: false,
            local_events: Vec::new(),
            signals_cursor: 0,
            events_cursor: 0,
            filter: String::new(),
            filtering: false,
            history: None,
            analytics: None,
            attached: None,
            selection_unseen: false,
            alerts: Vec::new(),
            store_health: Default::default(),
            quit: false,
            dirty: true,
        }
    }

    /// The configured sizing limits, for the forms' previews.
    pub fn with_risk(mut self, risk: RiskSettings) -> App {
        self.risk = risk;
        self
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether something changed since the last [`App::take_dirty`].
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn mode(&self) -> Mode {
        if self.popup.is_some() {
            Mode::Popup
        } else if let Some(form) = &self.form {
            match form {
                Form::Trade(_) => Mode::TradeForm,
                Form::Size(_) => Mode::SizeForm,
            }
        } else if self.show_help {
            Mode::Help
        } else if let Some(h) = &self.history {
            if h.searching {
                Mode::Filter
            } else {
                Mode::History
            }
        } else if self.analytics.is_some() {
            Mode::Analytics
        } else if self.filtering {
            Mode::Filter
        } else {
            Mode::Normal
        }
    }

    pub fn pending(&self) -> &[DecisionLog] {
        self.snapshot.as_ref().map_or(&[], |s| s.pending.as_slice())
    }

    pub fn positions(&self) -> &[Position] {
        self.snapshot
            .as_ref()
            .map_or(&[], |s| s.positions.as_slice())
    }

    /// The alerts to write to the terminal now (the runner does, between draws).
    pub fn take_alerts(&mut self) -> Vec<crate::notify::Alert> {
        std::mem::take(&mut self.alerts)
    }

    /// The frame on screen now shows the current state (the runner calls this after a draw).
    pub fn mark_drawn(&mut self) {
        self.selection_unseen = false;
    }

    pub fn selected_pending_index(&self) -> Option<usize> {
        let id = self.selected_pending.as_deref()?;
        self.pending().iter().position(|d| d.log_id == id)
    }

    pub fn selected_pending_log(&self) -> Option<&DecisionLog> {
        self.selected_pending_index().map(|i| &self.pending()[i])
    }

    pub fn selected_position_index(&self) -> Option<usize> {
        let id = self.selected_position?;
        self.positions().iter().position(|p| p.id == id)
    }

    /// The latest known price of a symbol: the store's, else the engine's.
    pub fn price(&self, symbol: &str) -> Option<f64> {
        self.snapshot
            .as_ref()
            .and_then(|s| s.prices.get(symbol))
            .map(|p| p.price)
            .or_else(|| self.views.get(symbol).and_then(|v| v.price))
    }

    /// Whether the stored price of `symbol` is older than the feed's `stale_after_seconds`
    /// (never without a feed).
    pub fn price_is_stale(&self, symbol: &str) -> bool {
        let (Some(limit), Some(snap)) = (self.settings.stale_after_ms, &self.snapshot) else {
            return false;
        };
        snap.prices
            .get(symbol)
            .is_some_and(|p| self.now_ms.saturating_sub(p.at_ms) > limit)
    }

    pub fn enabled(&self) -> Option<bool> {
        self.snapshot.as_ref().map(|s| s.state.enabled)
    }

    pub fn kill_switch(&self) -> bool {
        self.snapshot.as_ref().is_some_and(|s| s.state.kill_switch)
    }

    /// The loss halt in force, if any.
    pub fn halt(&self) -> Option<&crate::domain::halt::Halt> {
        self.snapshot.as_ref().and_then(|s| s.state.halt.as_ref())
    }

    /// The one way in.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(ev) => match keymap::command_for(self.mode(), &ev) {
                Some(cmd) => {
                    self.dirty = true;
                    let effects = self.command(cmd);
                    self.refresh_form();
                    effects
                }
                None => {
                    self.type_into_form(&ev);
                    Vec::new()
                }
            },
            Action::Tick { now_ms } => {
                // Ages and the countdown show whole seconds.
                if now_ms / 1000 != self.now_ms / 1000 {
                    self.dirty = true;
                }
                self.now_ms = now_ms;
                Vec::new()
            }
            Action::Resize => {
                self.dirty = true;
                Vec::new()
            }
            Action::Snapshot(s) => {
                let newest = |s: &Snapshot| s.events.first().map(|e| e.id);
                let changed = self.snapshot.as_ref().map(newest) != Some(newest(&s));
                self.apply_snapshot(*s);
                self.refresh_form();
                self.dirty = true;
                // An open history or analytics view follows the store: a new event (a close
                // is one) reloads it.
                let mut effects = Vec::new();
                match &self.history {
                    Some(h) if changed && h.data.is_some() => effects.push(Effect::LoadHistory {
                        query: h.asked.clone(),
                    }),
                    _ => {}
                }
                if changed && self.analytics.as_ref().is_some_and(|a| a.data.is_some()) {
                    effects.push(Effect::LoadReport);
                }
                effects
            }
            Action::Engine(ev) => {
                self.engine_event(ev);
                self.refresh_form();
                self.dirty = true;
                Vec::new()
            }
            Action::Done { what, outcome } => {
                match outcome {
                    Outcome::Ok | Outcome::Recorded => {}
                    Outcome::History(h) => self.history_loaded(*h),
                    Outcome::Report(r) => {
                        if let Some(a) = &mut self.analytics {
                            a.data = Some(*r);
                        }
                    }
                    Outcome::Refused(why) => self.note("warn", format!("{what} refused: {why}")),
                    Outcome::Failed(why) => self.note("error", format!("{what} failed: {why}")),
                }
                self.dirty = true;
                Vec::new()
            }
            Action::Attached(a) => {
                match (self.attached.clone(), a.clone()) {
                    (Some(was), Some(now)) if was.running && !now.running && now.remote.is_some() => self.note(
                        "error",
                        format!(
                            "{} cannot be reached: the screen shows the last state it sent",
                            was.pid_text()
                        ),
                    ),
                    (Some(was), Some(now)) if !was.running && now.running && now.remote.is_some() => {
                        self.note("info", format!("{} answers again", now.pid_text()))
                    }
                    (Some(was), Some(now)) if was.running && !now.running => self.note(
                        "error",
                        format!(
                            "the engine ({}) stopped: nothing checks or decides now; r runs it in this dashboard",
                            was.pid_text()
                        ),
                    ),
                    (Some(_), None) => {
                        self.note("info", "the engine runs in this dashboard now".into())
                    }
                    (Some(was), Some(now)) if now.pid != was.pid => self.note(
                        "info",
                        format!("attached to the engine of {}", now.pid_text()),
                    ),
                    _ => {}
                }
                self.attached = a;
                self.dirty = true;
                Vec::new()
            }
            Action::Alerts(a) => {
                // Nothing to draw: the runner writes them. A burst beyond this is noise.
                self.alerts.extend(a);
                let excess = self.alerts.len().saturating_sub(MAX_WAITING_ALERTS);
                self.alerts.drain(..excess);
                Vec::new()
            }
            Action::StoreHealth(h) => {
                let was = self.store_health.failing.as_ref().map(|f| f.since_ms);
                match (&h.failing, was) {
                    (Some(f), None) => {
                        self.note(
                            "error",
                            format!(
                                "the store cannot write: {}; nothing new is stored, exits are watched from memory",
                                f.message
                            ),
                        );
                        if let Some(a) =
                            crate::notify::alert::store_failing(&self.settings.user_id, &h)
                        {
                            self.alerts.push(a);
                        }
                    }
                    (None, Some(_)) => self.note(
                        "info",
                        "the store writes again: the exits held in memory are closed".into(),
                    ),
                    _ => {}
                }
                for line in &h.held_exits {
                    if !self.store_health.held_exits.contains(line) {
                        self.note("error", line.clone());
                    }
                }
                self.store_health = h;
                self.dirty = true;
                Vec::new()
            }
            Action::Quit => {
                self.quit = true;
                Vec::new()
            }
        }
    }
}
