//! Dashboard state and its one way in: `App::update(Action) -> Vec<Effect>`.
//!
//! Keys, ticks, store snapshots and engine events all arrive as [`Action`]s. `update` changes
//! state and returns side effects as data ([`Effect`]); the runner (`tui.rs`) performs them off
//! the UI thread and sends their results back as `Action::Done`. Drawing only reads `App`.

use crate::config::Config;
pub use crate::desk::Snapshot;
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

/// How many dashboard-side events (refusals, engine errors) are kept.
const LOCAL_EVENTS: usize = 50;

/// The settings the dashboard shows, taken from the config once.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub user_id: String,
    pub live: bool,
    pub simulated: bool,
    pub symbols: Vec<String>,
    pub max_open_positions: usize,
    pub account_size: f64,
    pub color: bool,
}

impl Settings {
    pub fn from_config(config: &Config, color: bool) -> Settings {
        Settings {
            user_id: config.auto_trade.user_id.clone(),
            live: !config.auto_trade.paper_trading,
            simulated: config.is_simulated(),
            symbols: config.auto_trade.symbols.clone(),
            max_open_positions: config.auto_trade.max_open_positions,
            account_size: config.account.size,
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
    /// A signal, the end of input or a terminal failure.
    Quit,
}

/// How an effect ended.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    CheckNow,
    /// A manual trade, placed like `trade` without `--yes`: fresh market, the rules, the gates.
    Trade {
        order: ManualOrder,
        label: String,
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
            Effect::CheckNow => "check now".into(),
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
    pub on_yes: Effect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Pending,
    Positions,
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

/// The dashboard's state.
#[derive(Debug, Clone)]
pub struct App {
    pub settings: Settings,
    pub now_ms: i64,
    pub snapshot: Option<Snapshot>,
    /// The engine's latest view of each symbol.
    pub views: BTreeMap<String, SymbolView>,
    pub health: Health,
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
    /// A refresh moved the selection off a decision that vanished, and the trader has not
    /// seen the new one highlighted yet: `y`/`n` must not act on it until it is drawn.
    selection_unseen: bool,
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
            selection_unseen: false,
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

    pub fn enabled(&self) -> Option<bool> {
        self.snapshot.as_ref().map(|s| s.state.enabled)
    }

    pub fn kill_switch(&self) -> bool {
        self.snapshot.as_ref().is_some_and(|s| s.state.kill_switch)
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
                self.apply_snapshot(*s);
                self.refresh_form();
                self.dirty = true;
                Vec::new()
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
                    Outcome::Refused(why) => self.note("warn", format!("{what} refused: {why}")),
                    Outcome::Failed(why) => self.note("error", format!("{what} failed: {why}")),
                }
                self.dirty = true;
                Vec::new()
            }
            Action::Quit => {
                self.quit = true;
                Vec::new()
            }
        }
    }

    fn command(&mut self, cmd: Command) -> Vec<Effect> {
        match cmd {
            Command::Quit => {
                self.quit = true;
                vec![]
            }
            Command::Help => {
                self.show_help = !self.show_help;
                vec![]
            }
            Command::Close => {
                self.show_help = false;
                vec![]
            }
            Command::Yes => match self.popup.take() {
                Some(p) => vec![p.on_yes],
                None => vec![],
            },
            Command::No => {
                self.popup = None;
                vec![]
            }
            Command::SwitchFocus => {
                self.focus = match self.focus {
                    Focus::Pending => Focus::Positions,
                    Focus::Positions => Focus::Pending,
                };
                vec![]
            }
            Command::Up => {
                self.move_selection(-1);
                vec![]
            }
            Command::Down => {
                self.move_selection(1);
                vec![]
            }
            Command::Confirm => self.confirm_selected(),
            Command::Cancel => self.cancel_selected(),
            Command::ToggleEnabled => match self.snapshot.as_ref().map(|s| s.state) {
                // The kill switch is cleared by enabling, so `e` after `K` enables.
                Some(st) => vec![Effect::SetEnabled(!st.enabled || st.kill_switch)],
                None => {
                    self.note("info", "the store is still loading: try again".into());
                    vec![]
                }
            },
            Command::KillSwitch => {
                let pending = self.pending().len();
                self.popup = Some(Popup {
                    title: "Kill switch".into(),
                    question: format!(
                        "Disable auto-trading and cancel {pending} pending decision(s)? \
                         `e` enables again."
                    ),
                    on_yes: Effect::Kill,
                });
                vec![]
            }
            Command::CheckNow => {
                self.note("info", "check requested".into());
                vec![Effect::CheckNow]
            }
            Command::NewTrade => {
                self.open_trade_form();
                vec![]
            }
            Command::Resize => {
                self.open_size_form();
                vec![]
            }
            Command::ClosePosition => {
                self.ask_close_selected();
                vec![]
            }
            Command::NextField | Command::PrevField => {
                let delta = if cmd == Command::NextField { 1 } else { -1 };
                if let Some(Form::Trade(f)) = &mut self.form {
                    f.next_field(delta);
                }
                vec![]
            }
            Command::NextChoice | Command::PrevChoice => {
                let delta = if cmd == Command::NextChoice { 1 } else { -1 };
                if let Some(Form::Trade(f)) = &mut self.form {
                    f.next_choice(delta);
                }
                vec![]
            }
            Command::DeleteChar => {
                match &mut self.form {
                    Some(Form::Trade(f)) => f.delete_char(),
                    Some(Form::Size(f)) => {
                        f.size.text.pop();
                    }
                    None => {}
                }
                vec![]
            }
            Command::ClearField => {
                match &mut self.form {
                    Some(Form::Trade(f)) => f.clear_field(),
                    Some(Form::Size(f)) => f.size.text.clear(),
                    None => {}
                }
                vec![]
            }
            Command::Submit => self.submit_form(),
            Command::CancelForm => {
                self.form = None;
                vec![]
            }
        }
    }

    /// A character no binding took, typed into the open form.
    fn type_into_form(&mut self, ev: &KeyEvent) {
        let KeyCode::Char(c) = ev.code else {
            return;
        };
        if ev.kind != ratatui::crossterm::event::KeyEventKind::Press
            || ev
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return;
        }
        match &mut self.form {
            Some(Form::Trade(f)) => f.type_char(c),
            Some(Form::Size(f)) => {
                f.size.push(c);
            }
            None => return,
        }
        self.refresh_form();
        self.dirty = true;
    }

    /// The latest valid ML signal of a symbol: the engine's, else the one stored with its
    /// latest decision. None when the engine's latest fetch failed.
    pub fn signal(&self, symbol: &str) -> Option<MlSignal> {
        match self.views.get(symbol).map(|v| &v.signal) {
            Some(Ok(s)) => Some(s.clone()),
            Some(Err(_)) => None,
            None => self
                .snapshot
                .as_ref()?
                .latest
                .iter()
                .find(|d| d.decision.symbol == symbol)
                .and_then(|d| rules::parse_signal(&d.decision.ml_signal).ok()),
        }
    }

    /// The gates a new trade on `symbol` meets, as the last snapshot saw them.
    pub fn gates(&self, symbol: &str) -> Option<Gates> {
        let s = self.snapshot.as_ref()?;
        Some(Gates {
            enabled: s.state.enabled,
            kill_switch: s.state.kill_switch,
            symbol_has_open_position: s.positions.iter().any(|p| p.symbol == symbol),
            symbol_has_pending: s.pending.iter().any(|d| d.decision.symbol == symbol),
            open_positions: s.positions.len(),
            max_open_positions: self.settings.max_open_positions,
        })
    }

    fn known(&self, symbol: &str) -> Known {
        Known {
            price: self.price(symbol),
            signal: self.signal(symbol),
            blocked: self.gates(symbol).and_then(|g| g.blocked_by(symbol)),
        }
    }

    /// Recompute the open form's preview from what the dashboard knows now.
    fn refresh_form(&mut self) {
        let known = match &self.form {
            Some(Form::Trade(f)) => Some(self.known(f.symbol())),
            _ => None,
        };
        let risk = self.risk;
        match &mut self.form {
            Some(Form::Trade(f)) => f.refresh(known.unwrap_or_default(), &risk),
            Some(Form::Size(f)) => f.refresh(&risk),
            None => {}
        }
    }

    /// `t`: the form starts on the first configured symbol that is free to trade (no open
    /// position, no pending decision), else the first one.
    fn open_trade_form(&mut self) {
        let symbols = self.settings.symbols.clone();
        if symbols.is_empty() {
            self.note("info", "no symbols configured to trade".into());
            return;
        }
        let free = symbols.iter().position(|sym| {
            self.gates(sym)
                .is_none_or(|g| !g.symbol_has_open_position && !g.symbol_has_pending)
        });
        self.form = Some(Form::Trade(TradeForm::new(symbols, free.unwrap_or(0))));
        self.show_help = false;
    }

    /// `s`: a new size for the selected pending decision.
    fn open_size_form(&mut self) {
        let Some(log) = self.target("change its size") else {
            return;
        };
        if log.decision.entry_price.is_none() {
            self.note(
                "info",
                format!("{} has no entry price to size against", log.log_id),
            );
            return;
        }
        self.form = Some(Form::Size(SizeForm::new(&log, &self.risk)));
    }

    /// Enter in a form: the effect when the preview is valid; otherwise the form stays open
    /// with its message.
    fn submit_form(&mut self) -> Vec<Effect> {
        match &self.form {
            Some(Form::Trade(f)) => {
                let (Ok(order), Ok(_)) = (f.order(), &f.preview) else {
                    return vec![];
                };
                let label = f.label();
                self.form = None;
                self.note(
                    "info",
                    format!("placing manual trade {label} at the latest price…"),
                );
                vec![Effect::Trade { order, label }]
            }
            Some(Form::Size(f)) => {
                let Ok(d) = &f.preview else {
                    return vec![];
                };
                let effect = Effect::Resize {
                    log_id: f.log_id.clone(),
                    size: d.position_size,
                    label: f.label(),
                };
                self.form = None;
                vec![effect]
            }
            None => vec![],
        }
    }

    /// `c`: a y/n question that holds the close of the selected position.
    fn ask_close_selected(&mut self) {
        let Some(p) = self
            .selected_position_index()
            .map(|i| self.positions()[i].clone())
        else {
            self.note("info", "no open position to close".into());
            return;
        };
        let label = format!("{} {} {}", p.side, fmt_qty(p.quantity), p.symbol);
        let now = match self.price(&p.symbol) {
            Some(l) => format!(
                " (now {}, P&L {})",
                fmt_price(l),
                p.unrealized_pnl(Some(l))
                    .map(fmt_signed)
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        self.popup = Some(Popup {
            title: if self.settings.live {
                "Close LIVE position".into()
            } else {
                "Close position".into()
            },
            question: format!("Close {label} at the latest price{now}?"),
            on_yes: Effect::ClosePosition {
                position_id: p.id,
                symbol: p.symbol.clone(),
                label,
            },
        });
    }

    fn label(log: &DecisionLog) -> String {
        format!(
            "{} {} {} ({})",
            log.decision.action,
            fmt_qty(log.decision.position_size),
            log.decision.symbol,
            log.log_id
        )
    }

    /// The selected pending decision when the pending pane has the focus; a hint otherwise.
    fn target(&mut self, verb: &str) -> Option<DecisionLog> {
        if self.focus != Focus::Pending {
            self.note(
                "info",
                format!("press Tab to focus the pending decisions, then {verb}"),
            );
            return None;
        }
        if self.selection_unseen {
            self.note(
                "info",
                format!("the selected decision is gone: look at the new selection, then {verb}"),
            );
            return None;
        }
        match self.selected_pending_log() {
            Some(log) => Some(log.clone()),
            None => {
                self.note("info", format!("no pending decision to {verb}"));
                None
            }
        }
    }

    fn confirm_selected(&mut self) -> Vec<Effect> {
        let Some(log) = self.target("confirm") else {
            return vec![];
        };
        let effect = Effect::Confirm {
            log_id: log.log_id.clone(),
            label: Self::label(&log),
        };
        if self.settings.live {
            // A live order is dangerous: it goes through a y/n popup that holds it.
            self.popup = Some(Popup {
                title: "LIVE order".into(),
                question: format!("Execute {} with real money?", Self::label(&log)),
                on_yes: effect,
            });
            return vec![];
        }
        vec![effect]
    }

    fn cancel_selected(&mut self) -> Vec<Effect> {
        let Some(log) = self.target("cancel") else {
            return vec![];
        };
        vec![Effect::Cancel {
            log_id: log.log_id.clone(),
            label: Self::label(&log),
        }]
    }

    fn move_selection(&mut self, delta: isize) {
        fn step(current: Option<usize>, len: usize, delta: isize) -> Option<usize> {
            if len == 0 {
                return None;
            }
            Some(match current {
                None => 0,
                Some(i) => (i as isize + delta).clamp(0, len as isize - 1) as usize,
            })
        }
        match self.focus {
            Focus::Pending => {
                // The trader chose it: what they move to is what they look at.
                self.selection_unseen = false;
                let i = step(self.selected_pending_index(), self.pending().len(), delta);
                self.selected_pending = i.map(|i| self.pending()[i].log_id.clone());
            }
            Focus::Positions => {
                let i = step(
                    self.selected_position_index(),
                    self.positions().len(),
                    delta,
                );
                self.selected_position = i.map(|i| self.positions()[i].id);
            }
        }
    }

    /// Take a new snapshot, keeping the selection on the same decision and position.
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        let old_pending = self.selected_pending_index();
        let old_position = self.selected_position_index();
        self.now_ms = self.now_ms.max(snap.taken_at_ms);
        // New pending decisions (the engine's, an agent's, a manual trade) are events too.
        if let Some(old) = &self.snapshot {
            let mut fresh: Vec<LocalEvent> = snap
                .pending
                .iter()
                .filter(|d| !old.pending.iter().any(|o| o.log_id == d.log_id))
                .map(|d| LocalEvent {
                    at_ms: d.created_at_ms,
                    level: "info",
                    message: format!(
                        "new pending {} {} {} conf {} ({})",
                        d.decision.action,
                        fmt_qty(d.decision.position_size),
                        d.decision.symbol,
                        crate::domain::money::fmt_fixed(d.decision.confidence, 2),
                        d.log_id
                    ),
                    count: 1,
                })
                .collect();
            fresh.reverse();
            for e in fresh {
                self.local_events.insert(0, e);
            }
            self.local_events.truncate(LOCAL_EVENTS);
        }
        self.snapshot = Some(snap);
        if let Some(Form::Size(f)) = &self.form
            && !self.pending().iter().any(|d| d.log_id == f.log_id)
        {
            let msg = format!("{} is no longer pending: resize dropped", f.log_id);
            self.form = None;
            self.note("info", msg);
        }
        let before = self.selected_pending.clone();
        self.selected_pending = reselect(
            self.pending(),
            self.selected_pending.as_deref(),
            old_pending,
            |d| d.log_id.as_str(),
        )
        .map(str::to_string);
        if before.is_some() && self.selected_pending.is_some() && before != self.selected_pending {
            self.selection_unseen = true;
        }
        let positions = self.positions();
        self.selected_position = if let Some(id) = self.selected_position
            && positions.iter().any(|p| p.id == id)
        {
            Some(id)
        } else {
            nearest(positions.len(), old_position).map(|i| positions[i].id)
        };
    }

    fn engine_event(&mut self, ev: EngineEvent) {
        match ev {
            EngineEvent::CycleStarted => self.checking = true,
            EngineEvent::Symbol(view) => {
                let view = *view;
                if let Err(e) = &view.signal {
                    self.note("warn", format!("{}: {e}", view.symbol));
                }
                if let Err(e) = &view.phase {
                    self.note("warn", format!("{}: {e}", view.symbol));
                }
                if let Err(e) = &view.outcome {
                    self.note("error", e.clone());
                }
                self.views.insert(view.symbol.clone(), view);
            }
            EngineEvent::CycleFinished(summary) => {
                self.checking = false;
                self.last_cycle = Some(summary);
            }
            EngineEvent::Health(h) => self.health = h,
            EngineEvent::NextCheck { at_ms } => self.next_check_at_ms = Some(at_ms),
            EngineEvent::Error(e) => self.note("error", e),
        }
    }

    /// Add a dashboard-side event; a repeat moves to the top with its count.
    pub fn note(&mut self, level: &'static str, message: String) {
        let mut count = 1;
        if let Some(i) = self.local_events.iter().position(|e| e.message == message) {
            count += self.local_events.remove(i).count;
        }
        self.local_events.insert(
            0,
            LocalEvent {
                at_ms: self.now_ms,
                level,
                message,
                count,
            },
        );
        self.local_events.truncate(LOCAL_EVENTS);
        self.dirty = true;
    }

    /// Store and dashboard events, newest first.
    pub fn event_lines(&self) -> Vec<EventLine> {
        let mut lines: Vec<EventLine> = self
            .snapshot
            .iter()
            .flat_map(|s| s.events.iter())
            .map(|e| EventLine {
                at_ms: e.at_ms,
                level: e.level.clone(),
                message: e.message.clone(),
            })
            .chain(self.local_events.iter().map(|e| EventLine {
                at_ms: e.at_ms,
                level: e.level.to_string(),
                message: if e.count > 1 {
                    format!("{} (×{})", e.message, e.count)
                } else {
                    e.message.clone()
                },
            }))
            .collect();
        // Stable: equal times keep store events before local ones, each newest first.
        lines.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        lines
    }

    /// The signals table: one row per configured symbol.
    pub fn signal_rows(&self) -> Vec<SignalRow> {
        let latest = |sym: &str| {
            self.snapshot
                .as_ref()
                .and_then(|s| s.latest.iter().find(|d| d.decision.symbol == sym))
        };
        self.settings
            .symbols
            .iter()
            .map(|sym| {
                let view = self.views.get(sym);
                let log = latest(sym);
                let ml = match view.map(|v| &v.signal) {
                    Some(Ok(s)) => Reading::Known {
                        value: s.direction,
                        confidence: Some(s.confidence),
                    },
                    Some(Err(e)) => Reading::Failed(e.clone()),
                    None => match log.map(|l| rules::parse_signal(&l.decision.ml_signal)) {
                        Some(Ok(s)) => Reading::Known {
                            value: s.direction,
                            confidence: Some(s.confidence),
                        },
                        _ => Reading::Unknown,
                    },
                };
                let amd = match view.map(|v| &v.phase) {
                    Some(Ok(p)) => Reading::Known {
                        value: p.phase,
                        confidence: Some(p.confidence),
                    },
                    Some(Err(e)) => Reading::Failed(e.clone()),
                    None => match log.and_then(|l| l.decision.amd_phase.map(|p| (p, l))) {
                        Some((p, l)) => Reading::Known {
                            value: p,
                            confidence: l.amd_confidence(),
                        },
                        None => Reading::Unknown,
                    },
                };
                SignalRow {
                    symbol: sym.clone(),
                    price: self.price(sym),
                    ml,
                    amd,
                    last: log.map(|l| LastDecision {
                        action: l.decision.action,
                        status: l.status,
                        confidence: l.decision.confidence,
                        at_ms: l.created_at_ms,
                        reasoning: l.decision.reasoning.clone(),
                    }),
                }
            })
            .collect()
    }
}

fn nearest(len: usize, old: Option<usize>) -> Option<usize> {
    if len == 0 {
        None
    } else {
        Some(old.unwrap_or(0).min(len - 1))
    }
}

/// Keep `selected` when it is still listed; else the item now at its old place; else the first.
fn reselect<'a, T>(
    items: &'a [T],
    selected: Option<&str>,
    old_index: Option<usize>,
    id: impl Fn(&'a T) -> &'a str,
) -> Option<&'a str> {
    if let Some(sel) = selected
        && let Some(item) = items.iter().find(|x| id(x) == sel)
    {
        return Some(id(item));
    }
    nearest(items.len(), old_index).map(|i| id(&items[i]))
}

/// `12s`, `5m`, `3h`, `2d`: how long ago, for a column that is narrow.
pub fn fmt_age(now_ms: i64, at_ms: i64) -> String {
    let s = ((now_ms - at_ms).max(0)) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// `4:05` until the next check (rounded up to the second).
pub fn fmt_countdown(now_ms: i64, at_ms: i64) -> String {
    let s = ((at_ms - now_ms).max(0) + 999) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
