//! What the dashboard shows: snapshots and engine events taken in, rows and lines given out.

use super::*;

impl App {
    /// Take a new snapshot, keeping the selection on the same decision and position.
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        let old_pending = self.selected_pending_index();
        let old_position = self.selected_position_index();
        self.now_ms = self.now_ms.max(snap.taken_at_ms);
        let arrived = snap.pending.iter().any(|d| {
            self.snapshot
                .as_ref()
                .is_none_or(|old| !old.pending.iter().any(|o| o.log_id == d.log_id))
        });
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
                        "new pending {} {} {} {} ({})",
                        d.decision.action,
                        fmt_qty(d.decision.position_size),
                        d.decision.symbol,
                        crate::domain::score::score_phrase(&d.decision, d.origin),
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
        // A decision to act on came while the trader looks at an empty pane: show it.
        if arrived && self.focus != Focus::Pending && self.focused_len() == 0 {
            self.focus = Focus::Pending;
            // A key already on its way was meant for the empty pane: it must not act on a
            // decision the trader has not seen drawn.
            self.selection_unseen = true;
        }
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

    pub(super) fn engine_event(&mut self, ev: EngineEvent) {
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
            EngineEvent::Feed { provider, state } => self.feed = Some((provider, state)),
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

    /// How many rows the focused pane holds.
    pub fn focused_len(&self) -> usize {
        match self.focus {
            Focus::Pending => self.pending().len(),
            Focus::Positions => self.positions().len(),
            Focus::Signals => self.signal_symbols().len(),
            Focus::Events => self.event_lines().len(),
        }
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

    /// The configured symbols the signals pane lists: those the filter matches.
    pub fn signal_symbols(&self) -> Vec<&str> {
        self.settings
            .symbols
            .iter()
            .map(String::as_str)
            .filter(|sym| sym.contains(self.filter.as_str()))
            .collect()
    }

    /// The signals table: one row per listed symbol.
    pub fn signal_rows(&self) -> Vec<SignalRow> {
        self.signal_symbols()
            .into_iter()
            .map(|s| self.signal_row(s))
            .collect()
    }

    /// One symbol's row of the signals table, from the engine's latest view and the store.
    pub fn signal_row(&self, sym: &str) -> SignalRow {
        let log = self
            .snapshot
            .as_ref()
            .and_then(|s| s.latest.iter().find(|d| d.decision.symbol == sym));
        let view = self.views.get(sym);
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
            symbol: sym.to_string(),
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
