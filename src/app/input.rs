//! What keys and forms do to the dashboard: commands, selection, forms and confirmations.

use super::*;

/// A configured span exactly as set: whole minutes as minutes, else seconds (to the ms).
fn fmt_span(ms: i64) -> String {
    if ms > 0 && ms % 60_000 == 0 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} s", crate::domain::money::fmt_num(ms as f64 / 1000.0))
    }
}

/// PgUp and PgDn move this many rows.
const PAGE: isize = 10;

impl App {
    pub(super) fn command(&mut self, cmd: Command) -> Vec<Effect> {
        match cmd {
            Command::QuitNow => {
                self.quit = true;
                vec![]
            }
            Command::Quit => {
                match self.quit_question() {
                    Some(question) => {
                        self.popup = Some(Popup {
                            title: "Quit".into(),
                            question,
                            alert: None,
                            on_yes: Effect::Quit,
                        })
                    }
                    None => self.quit = true,
                }
                vec![]
            }
            Command::Help => {
                self.show_help = !self.show_help;
                vec![]
            }
            Command::Close => {
                if self.show_help {
                    self.show_help = false;
                } else if self.analytics.is_some() {
                    self.analytics = None;
                } else {
                    self.history = None;
                }
                vec![]
            }
            Command::History => {
                self.history = Some(HistoryView {
                    data: None,
                    query: String::new(),
                    asked: String::new(),
                    searching: false,
                    pane: HistoryPane::Closed,
                    closed_cursor: 0,
                    events_cursor: 0,
                });
                vec![Effect::LoadHistory {
                    query: String::new(),
                }]
            }
            Command::Analytics => {
                self.analytics = Some(AnalyticsView {
                    data: None,
                    from: 0,
                });
                vec![Effect::LoadReport]
            }
            Command::Yes => match self.popup.take() {
                Some(Popup {
                    on_yes: Effect::Quit,
                    ..
                }) => {
                    self.quit = true;
                    vec![]
                }
                // The trade form's override: the form closes as the trade goes.
                Some(Popup {
                    on_yes:
                        Effect::Trade {
                            order,
                            label,
                            allow,
                        },
                    ..
                }) => {
                    self.form = None;
                    self.note(
                        "info",
                        format!("placing manual trade {label} at the latest price, over a limit on purpose…"),
                    );
                    vec![Effect::Trade {
                        order,
                        label,
                        allow,
                    }]
                }
                Some(p) => vec![p.on_yes],
                None => vec![],
            },
            Command::No => {
                self.popup = None;
                vec![]
            }
            Command::SwitchFocus | Command::SwitchFocusBack if self.history.is_some() => {
                if let Some(h) = &mut self.history {
                    h.pane = match h.pane {
                        HistoryPane::Closed => HistoryPane::Events,
                        HistoryPane::Events => HistoryPane::Closed,
                    };
                }
                vec![]
            }
            Command::SwitchFocus | Command::SwitchFocusBack => {
                self.focus = self.focus.next(cmd == Command::SwitchFocusBack);
                vec![]
            }
            Command::PageUp => {
                self.move_selection(-PAGE);
                vec![]
            }
            Command::PageDown => {
                self.move_selection(PAGE);
                vec![]
            }
            Command::Top => {
                self.move_selection(isize::MIN / 2);
                vec![]
            }
            Command::Bottom => {
                self.move_selection(isize::MAX / 2);
                vec![]
            }
            Command::Filter if self.history.is_some() => {
                if let Some(h) = &mut self.history {
                    h.searching = true;
                }
                vec![]
            }
            Command::Filter => {
                self.filtering = true;
                self.focus = Focus::Signals;
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
            Command::ToggleEnabled => match self.snapshot.as_ref().map(|s| &s.state) {
                // A loss halt is cleared only by a reset, which asks.
                Some(st) if st.halt.is_some() && (!st.enabled || st.kill_switch) => {
                    self.note(
                        "warn",
                        "HALTED by a loss limit: `R` resets it (asks), or `enable --reset`".into(),
                    );
                    vec![]
                }
                // Re-enabling after the kill switch asks: the trader stopped everything on purpose.
                Some(st) if st.kill_switch => {
                    self.popup = Some(Popup {
                        title: "Re-enable after the kill switch".into(),
                        question: "Clear the kill switch and enable auto-trading? New decisions \
                                   will be made and queued again."
                            .into(),
                        alert: None,
                        on_yes: Effect::SetEnabled(true),
                    });
                    vec![]
                }
                Some(st) => vec![Effect::SetEnabled(!st.enabled)],
                None => {
                    self.note("info", "the store is still loading: try again".into());
                    vec![]
                }
            },
            Command::KillSwitch => {
                let pending = self.pending().len();
                let open = self.positions().len();
                self.popup = Some(Popup {
                    title: "Kill switch: pause entries".into(),
                    question: format!(
                        "Disable auto-trading and cancel {pending} pending decision(s)? \
                         {open} open position(s) stay open with their exits (`F` flattens). \
                         `e` enables again."
                    ),
                    alert: None,
                    on_yes: Effect::Kill,
                });
                vec![]
            }
            Command::Flatten => {
                let pending = self.pending().len();
                let symbols: Vec<String> =
                    self.positions().iter().map(|p| p.symbol.clone()).collect();
                let how = match &self.settings.broker {
                    Some(b) => format!("by a market order each at {b}"),
                    None => "at the latest price".into(),
                };
                self.popup = Some(Popup {
                    title: if self.settings.live {
                        "Flatten LIVE".into()
                    } else {
                        "Flatten".into()
                    },
                    question: if symbols.is_empty() {
                        format!(
                            "Disable auto-trading and cancel {pending} pending decision(s)? \
                             No position is open."
                        )
                    } else {
                        format!(
                            "Disable auto-trading, cancel {pending} pending decision(s) and \
                             close {} open position(s) ({}) {how}?",
                            symbols.len(),
                            symbols.join(", ")
                        )
                    },
                    alert: None,
                    on_yes: Effect::Flatten,
                });
                vec![]
            }
            Command::ResetHalt => {
                match self.halt().cloned() {
                    Some(h) => {
                        self.popup = Some(Popup {
                            title: "Reset the loss halt".into(),
                            question: format!(
                                "HALTED: {}. Clear it, start the limits again from today's \
                                 equity, and enable auto-trading?",
                                h.reason
                            ),
                            alert: None,
                            on_yes: Effect::ResetHalt,
                        })
                    }
                    None => self.note("info", "no loss halt is in force".into()),
                }
                vec![]
            }
            Command::CheckNow => match self.attached.clone() {
                Some(a) if a.running || a.remote.is_some() => {
                    self.note(
                        "info",
                        format!(
                            "attached to the engine of {}: it checks on its own schedule",
                            a.pid_text()
                        ),
                    );
                    vec![]
                }
                Some(_) => vec![Effect::StartEngine],
                None => {
                    self.note("info", "check requested".into());
                    vec![Effect::CheckNow]
                }
            },
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
                match (&mut self.form, &mut self.history) {
                    (Some(Form::Trade(f)), _) => f.delete_char(),
                    (Some(Form::Size(f)), _) => {
                        f.size.text.pop();
                    }
                    (None, Some(h)) => {
                        h.query.pop();
                    }
                    (None, None) => {
                        self.filter.pop();
                    }
                }
                vec![]
            }
            Command::ClearField => {
                match (&mut self.form, &mut self.history) {
                    (Some(Form::Trade(f)), _) => f.clear_field(),
                    (Some(Form::Size(f)), _) => f.size.text.clear(),
                    (None, Some(h)) => h.query.clear(),
                    (None, None) => self.filter.clear(),
                }
                vec![]
            }
            Command::Submit if self.form.is_none() && self.history.is_some() => {
                self.search_history(false)
            }
            Command::Submit if self.filtering => {
                self.filtering = false;
                vec![]
            }
            Command::Submit => self.submit_form(),
            Command::CancelForm if self.form.is_none() && self.history.is_some() => {
                self.search_history(true)
            }
            Command::CancelForm => {
                if self.form.take().is_none() && self.filtering {
                    self.filtering = false;
                    self.filter.clear();
                }
                vec![]
            }
        }
    }

    /// A character no binding took, typed into the open form.
    pub(super) fn type_into_form(&mut self, ev: &KeyEvent) {
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
            None if self.history.as_ref().is_some_and(|h| h.searching) => {
                if let Some(h) = &mut self.history
                    && !c.is_control()
                    && h.query.chars().count() < 64
                {
                    h.query.push(c);
                }
            }
            None if self.filtering => {
                if c.is_ascii_alphanumeric() || c == '/' {
                    self.filter.push(c.to_ascii_uppercase());
                    self.signals_cursor = 0;
                }
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
            halted: s.state.halt.is_some(),
            symbol_has_open_position: s.positions.iter().any(|p| p.symbol == symbol),
            symbol_has_pending: s.pending.iter().any(|d| d.decision.symbol == symbol),
            open_positions: s.positions.len(),
            max_open_positions: self.settings.max_open_positions,
        })
    }

    pub(super) fn known(&self, symbol: &str) -> Known {
        Known {
            price: self.price(symbol),
            signal: self.signal(symbol),
            blocked: self.gates(symbol).and_then(|g| g.blocked_by(symbol)),
        }
    }

    /// Recompute the open form's preview from what the dashboard knows now.
    pub(super) fn refresh_form(&mut self) {
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
    pub(super) fn open_trade_form(&mut self) {
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
    pub(super) fn open_size_form(&mut self) {
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
    pub(super) fn submit_form(&mut self) -> Vec<Effect> {
        match &self.form {
            Some(Form::Trade(f)) => {
                let Ok(order) = f.order() else {
                    return vec![];
                };
                let label = f.label();
                match (&f.preview, f.lift) {
                    (Ok(_), _) => {}
                    // Over a limit the trader may lift: a second, explicit question, the
                    // figure in red; the form stays open behind it.
                    (Err(why), Some(allow)) => {
                        let figure = why
                            .strip_suffix("; Enter asks to take it on purpose")
                            .unwrap_or(why)
                            .to_string();
                        self.popup = Some(Popup {
                            title: if self.settings.live {
                                "Over a limit: LIVE trade".into()
                            } else {
                                "Over a limit".into()
                            },
                            question: format!(
                                "Take {label} over this limit on purpose? It is created pending and still needs confirming."
                            ),
                            alert: Some(figure),
                            on_yes: Effect::Trade {
                                order,
                                label,
                                allow,
                            },
                        });
                        return vec![];
                    }
                    (Err(_), None) => return vec![],
                }
                self.form = None;
                self.note(
                    "info",
                    format!("placing manual trade {label} at the latest price…"),
                );
                vec![Effect::Trade {
                    order,
                    label,
                    allow: Default::default(),
                }]
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
    pub(super) fn ask_close_selected(&mut self) {
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
            alert: None,
            on_yes: Effect::ClosePosition {
                position_id: p.id,
                symbol: p.symbol.clone(),
                label,
            },
        });
    }

    pub(super) fn label(log: &DecisionLog) -> String {
        format!(
            "{} {} {} ({})",
            log.decision.action,
            fmt_qty(log.decision.position_size),
            log.decision.symbol,
            log.log_id
        )
    }

    /// The selected pending decision when the pending pane has the focus; a hint otherwise.
    pub(super) fn target(&mut self, verb: &str) -> Option<DecisionLog> {
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

    /// What `q` asks when quitting leaves something behind: which positions and decisions,
    /// and what keeps watching them (the engine elsewhere, the broker) or nothing does.
    pub(super) fn quit_question(&self) -> Option<String> {
        use crate::domain::lifecycle::ExitsHeldBy;
        let s = self.snapshot.as_ref()?;
        let (open, pending) = (s.positions.len(), s.pending.len());
        if open == 0 && pending == 0 {
            return None;
        }
        let mut parts = Vec::new();
        match &self.attached {
            Some(a) if a.running || a.remote.is_some() => parts.push(format!(
                "The engine of {} keeps running: it watches the {open} open position(s) and \
                 expires the {pending} pending decision(s) on its own schedule. Only this view closes.",
                a.pid_text()
            )),
            _ => {
                parts.push(
                    "Quitting stops the engine this dashboard runs: no checks, no new decisions."
                        .to_string(),
                );
                let (at_broker, watched): (Vec<_>, Vec<_>) = s
                    .positions
                    .iter()
                    .partition(|p| p.exits_held_by == ExitsHeldBy::Broker);
                if !watched.is_empty() {
                    let symbols: Vec<&str> = watched.iter().map(|p| p.symbol.as_str()).collect();
                    parts.push(format!(
                        "{} open position(s) ({}) stay open, and nothing watches their \
                         take-profit and stop-loss until the dashboard, `run` or `serve` runs again.",
                        watched.len(),
                        symbols.join(", ")
                    ));
                }
                if !at_broker.is_empty() {
                    parts.push(format!(
                        "{} position(s) keep their exits at the broker.",
                        at_broker.len()
                    ));
                }
                if pending > 0 {
                    parts.push(format!(
                        "{pending} pending decision(s) stay pending (`confirm` still works) and \
                         expire {} after they were made.",
                        fmt_span(self.settings.pending_expiry_ms)
                    ));
                }
            }
        }
        parts.push("Quit?".into());
        Some(parts.join(" "))
    }

    pub(super) fn confirm_selected(&mut self) -> Vec<Effect> {
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
                alert: None,
                on_yes: effect,
            });
            return vec![];
        }
        vec![effect]
    }

    pub(super) fn cancel_selected(&mut self) -> Vec<Effect> {
        let Some(log) = self.target("cancel") else {
            return vec![];
        };
        vec![Effect::Cancel {
            log_id: log.log_id.clone(),
            label: Self::label(&log),
        }]
    }

    /// End typing a history search: run it (`clear`: drop it and show everything).
    fn search_history(&mut self, clear: bool) -> Vec<Effect> {
        let Some(h) = &mut self.history else {
            return vec![];
        };
        h.searching = false;
        if clear {
            h.query.clear();
        }
        h.closed_cursor = 0;
        h.events_cursor = 0;
        h.asked = h.query.clone();
        vec![Effect::LoadHistory {
            query: h.asked.clone(),
        }]
    }

    /// The history view's data arrived: kept when it answers the search on screen.
    pub(super) fn history_loaded(&mut self, data: History) {
        if let Some(h) = &mut self.history
            && h.asked == data.query
        {
            h.closed_cursor = h.closed_cursor.min(data.closed.len().saturating_sub(1));
            h.events_cursor = h.events_cursor.min(data.events.len().saturating_sub(1));
            h.data = Some(data);
        }
    }

    pub(super) fn move_selection(&mut self, delta: isize) {
        fn step(current: Option<usize>, len: usize, delta: isize) -> Option<usize> {
            if len == 0 {
                return None;
            }
            Some(match current {
                None => 0,
                Some(i) => (i as isize)
                    .saturating_add(delta)
                    .clamp(0, len as isize - 1) as usize,
            })
        }
        if let Some(a) = &mut self.analytics {
            let len = a.data.as_ref().map_or(0, crate::ui::analytics::line_count);
            a.from = step(Some(a.from), len, delta).unwrap_or(0);
            return;
        }
        if let Some(h) = &mut self.history {
            let (cursor, len) = match (h.pane, &h.data) {
                (HistoryPane::Closed, Some(d)) => (&mut h.closed_cursor, d.closed.len()),
                (HistoryPane::Events, Some(d)) => (&mut h.events_cursor, d.events.len()),
                (_, None) => return,
            };
            *cursor = step(Some(*cursor), len, delta).unwrap_or(0);
            return;
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
            Focus::Signals => {
                let len = self.signal_symbols().len();
                self.signals_cursor = step(Some(self.signals_cursor), len, delta).unwrap_or(0);
            }
            Focus::Events => {
                let len = self.event_lines().len();
                self.events_cursor = step(Some(self.events_cursor), len, delta).unwrap_or(0);
            }
        }
    }
}
