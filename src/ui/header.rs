//! The header: mode, switches, source, user, equity, positions and the next check.

use super::Theme;
use crate::app::{App, fmt_age, fmt_countdown};
use crate::domain::money::{fmt_money, fmt_signed};
use crate::engine::Health;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

/// A header line of whole items: an item that does not fit in `width` is left out, never cut
/// (a later, shorter one may still fit).
fn fit_items(items: Vec<Vec<Span<'static>>>, width: usize) -> Vec<Span<'static>> {
    let mut out = Vec::new();
    let mut used = 0;
    for item in items {
        let w: usize = item.iter().map(Span::width).sum();
        if used + w <= width {
            used += w;
            out.extend(item);
        }
    }
    out
}

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let width = area.width as usize;
    // Where orders go: the paper ledger, or a real broker's paper or live account.
    let broker = app
        .settings
        .broker
        .as_ref()
        .map(|b| format!("{} ", b.to_ascii_uppercase()))
        .unwrap_or_default();
    let mode = if app.settings.live {
        Span::styled(format!(" {broker}LIVE "), theme.badge(Color::Red))
    } else {
        Span::styled(format!(" {broker}PAPER "), theme.badge(Color::Cyan))
    };
    let switch = match app.snapshot.as_ref().map(|s| &s.state) {
        Some(st) if st.enabled => Span::styled(" ENABLED ", theme.badge(Color::Green)),
        Some(_) => Span::styled(" DISABLED ", theme.badge(Color::Yellow)),
        None => Span::styled(" LOADING ", theme.dim()),
    };
    let mut items = vec![vec![Span::raw(" "), mode], vec![Span::raw(" "), switch]];
    if app.halt().is_some() {
        items.push(vec![
            Span::raw(" "),
            Span::styled(" HALTED ", theme.badge(Color::Red)),
        ]);
    }
    if app.kill_switch() {
        items.push(vec![
            Span::raw(" "),
            Span::styled(" KILL SWITCH ", theme.badge(Color::Red)),
        ]);
    }
    // Another process runs the engine: this dashboard shows its store and acts through it.
    match &app.attached {
        Some(a) if a.running => {
            let mut item = vec![
                Span::raw(" "),
                Span::styled(" ATTACHED ", theme.badge(Color::Blue)),
                Span::raw(format!(" {}", a.pid_text())),
            ];
            if let Some(since) = a.since_ms {
                item.push(Span::raw(format!(", up {}", fmt_age(app.now_ms, since))));
            }
            items.push(item);
        }
        Some(a) if a.remote.is_some() => items.push(vec![
            Span::raw(" "),
            Span::styled(
                format!(" {} UNREACHABLE ", a.pid_text()),
                theme.badge(Color::Red),
            ),
        ]),
        Some(a) => items.push(vec![
            Span::raw(" "),
            Span::styled(
                format!(" ENGINE STOPPED ({}) ", a.pid_text()),
                theme.badge(Color::Red),
            ),
            Span::styled(" r runs it here", theme.warn()),
        ]),
        None => {}
    }
    // When the source is down, its badge replaces its name: the mark must fit at 80 columns.
    let unreachable = match &app.health {
        Health::Unreachable { message, failures } => Some((message, failures)),
        Health::Ok => None,
    };
    let source = if app.settings.simulated {
        "SIMULATED"
    } else {
        "ML ENGINE"
    };
    items.push(if unreachable.is_some() {
        vec![
            Span::raw("  "),
            Span::styled(format!(" {source} UNREACHABLE "), theme.badge(Color::Red)),
        ]
    } else {
        vec![Span::raw("  "), Span::styled(source, theme.bold())]
    });
    // The simulated market's speed stands beside its name when the line has room for it
    // after every other item: it goes first on a narrow terminal.
    let speed = match app.settings.seconds_per_candle {
        Some(s) if app.settings.simulated && unreachable.is_none() => Some((
            items.len(),
            vec![Span::styled(
                format!(" {}", crate::simulated::source::fmt_speed(s)),
                theme.bold(),
            )],
        )),
        _ => None,
    };
    // The live feed, when there is one: how prices arrive now.
    if let Some((provider, state)) = &app.feed {
        use crate::market::FeedState;
        let name = provider.to_ascii_uppercase();
        items.push(match state {
            FeedState::Streaming => vec![
                Span::raw("  "),
                Span::styled(format!("{name} streaming"), theme.good()),
            ],
            FeedState::Connecting => vec![
                Span::raw("  "),
                Span::styled(format!("{name} connecting…"), theme.warn()),
            ],
            FeedState::Polling { every, .. } => vec![
                Span::raw("  "),
                Span::styled(
                    format!("{name} polling every {}s", every.as_secs().max(1)),
                    theme.warn(),
                ),
            ],
            FeedState::Down { .. } => vec![
                Span::raw("  "),
                Span::styled(format!(" {name} DOWN "), theme.badge(Color::Red)),
            ],
        });
    }
    items.push(vec![
        Span::raw("  user "),
        Span::styled(app.settings.user_id.clone(), theme.bold()),
    ]);
    let mut first = fit_items(items.clone(), width);
    if let Some((at, item)) = speed {
        let used: usize = first.iter().map(|s| s.width()).sum();
        let width_of = |spans: &[Span]| spans.iter().map(Span::width).sum::<usize>();
        // The items fit greedily in order, so the source was kept when it fits after those before it.
        let source_kept = width_of(&fit_items(items[..at - 1].to_vec(), width))
            + width_of(&items[at - 1])
            <= width;
        if source_kept && used + width_of(&item) <= width {
            items.insert(at, item);
            first = fit_items(items, width);
        }
    }
    if let Some((message, failures)) = unreachable {
        // Cut at a word, marked, never inside a number or an address.
        let used: usize = first.iter().map(|s| s.width()).sum();
        let room = (area.width as usize).saturating_sub(used);
        first.push(Span::styled(
            format!(
                "  {}",
                super::grid::cut_at_word(
                    &format!("×{failures}: {message}"),
                    room.saturating_sub(2)
                )
            ),
            theme.bad(),
        ));
    }

    // A store that cannot write takes the whole second line: nothing is being stored.
    if let Some(f) = &app.store_health.failing {
        let text = super::grid::cut_at_word(
            &format!(
                "cannot write ({}): nothing is stored; exits watched from memory",
                f.message.trim_start_matches("store: ")
            ),
            width.saturating_sub(17),
        );
        let second = vec![
            Span::styled(" STORE FAILING ", theme.badge(Color::Red)),
            Span::styled(format!(" {text}"), theme.bad()),
        ];
        Paragraph::new(vec![Line::from(first), Line::from(second)]).render(area, buf);
        return;
    }
    let mut items: Vec<Vec<Span>> = Vec::new();
    // A loss halt leads the second line, with its reason and figures; else how much of each
    // loss limit is used, when one is set, after the equity and the counts.
    let mut limits = Vec::new();
    if let Some(s) = &app.snapshot {
        match &s.state.halt {
            Some(h) => {
                // Whole, or its first clause ("daily loss 300.00") on a narrow terminal.
                let whole = format!(" {} ", h.reason);
                let text = if whole.chars().count() <= width {
                    whole
                } else {
                    format!(" {} ", h.reason.split(" = ").next().unwrap_or_default())
                };
                items.push(vec![Span::styled(text, theme.bad())]);
            }
            None => limits = loss_limits(app, s, theme),
        }
    }
    match &app.snapshot {
        Some(s) => {
            let pnl = s.realized_pnl + s.unrealized_pnl;
            // With a real broker its account is the truth: its equity and buying power, named.
            match s.broker.as_ref() {
                Some(b) => {
                    let name = b.broker.to_ascii_uppercase();
                    if b.error.is_some() {
                        items.push(vec![
                            Span::raw(" "),
                            Span::styled(format!(" {name} DOWN "), theme.badge(Color::Red)),
                        ]);
                    }
                    match &b.account {
                        Some(a) => {
                            items.push(vec![
                                Span::raw(format!(" {} equity ", b.broker)),
                                Span::styled(fmt_money(a.equity), theme.bold()),
                            ]);
                            items.push(vec![
                                Span::raw("  buying power "),
                                Span::styled(fmt_money(a.buying_power), theme.bold()),
                            ]);
                            if let Some(why) = &a.blocked {
                                items.push(vec![
                                    Span::raw("  "),
                                    Span::styled(format!("blocked: {why}"), theme.bad()),
                                ]);
                            }
                        }
                        None => items.push(vec![
                            Span::raw(format!(" {} equity ", b.broker)),
                            Span::styled("—", theme.dim()),
                        ]),
                    }
                }
                // Before the first reconciliation a real broker's account is not known yet.
                None if app.settings.broker.is_some() => items.push(vec![
                    Span::raw(format!(
                        " {} equity ",
                        app.settings.broker.as_deref().unwrap_or_default()
                    )),
                    Span::styled("—", theme.dim()),
                ]),
                None => items.push(vec![
                    Span::raw(" equity "),
                    Span::styled(fmt_money(s.equity), theme.bold()),
                    Span::raw(" ("),
                    Span::styled(fmt_signed(pnl), theme.pnl(pnl)),
                    Span::raw(")"),
                ]),
            }
            items.push(vec![Span::raw(format!(
                "  positions {}/{}",
                s.positions.len(),
                app.settings.max_open_positions
            ))]);
            items.push(vec![Span::raw(format!("  pending {}", s.pending.len()))]);
            items.append(&mut limits);
        }
        None => items.push(vec![
            Span::raw(" equity "),
            Span::styled(fmt_money(app.settings.account_size), theme.dim()),
        ]),
    }
    items.push(if let Some(a) = &app.attached {
        // The engine's schedule is its own: this dashboard does not know its next check.
        if a.running {
            vec![Span::styled(
                format!("  checks by the engine of {}", a.pid_text()),
                theme.dim(),
            )]
        } else if a.remote.is_some() {
            vec![Span::styled(
                "  the last state the server sent",
                theme.bad(),
            )]
        } else {
            vec![Span::styled("  no engine checks now", theme.bad())]
        }
    } else if app.checking {
        vec![Span::raw("  "), Span::styled("checking…", theme.warn())]
    } else {
        match app.next_check_at_ms {
            Some(at) => vec![
                Span::raw("  next check in "),
                Span::styled(fmt_countdown(app.now_ms, at), theme.bold()),
            ],
            None => vec![
                Span::raw("  "),
                Span::styled("first check starting", theme.dim()),
            ],
        }
    });
    let second = fit_items(items, width);
    Paragraph::new(vec![Line::from(first), Line::from(second)]).render(area, buf);
}

/// `day loss 1.20% of 3%`, `drawdown 0.50% of 10%`: how much of each `[risk]` limit the
/// ledger's equity has used, measured as the engine measures it (none when off).
fn loss_limits(app: &App, s: &crate::desk::Snapshot, theme: Theme) -> Vec<Vec<Span<'static>>> {
    use crate::domain::halt;
    let limits = halt::LossLimits {
        daily_loss_percent: app.settings.daily_loss_limit_percent,
        max_drawdown_percent: app.settings.max_drawdown_percent,
    };
    if !limits.any() {
        return Vec::new();
    }
    let marks = halt::roll(s.state.marks, s.equity, app.now_ms);
    let (daily, drawdown) = halt::usage(&limits, &marks, s.equity);
    let style = |u: &halt::Used| {
        if u.percent >= u.limit_percent * 0.75 {
            theme.warn()
        } else {
            theme.dim()
        }
    };
    [("day loss", daily), ("drawdown", drawdown)]
        .into_iter()
        .filter_map(|(name, u)| {
            u.map(|u| vec![Span::styled(format!("  {name} {}", u.text()), style(&u))])
        })
        .collect()
}
