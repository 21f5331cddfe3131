//! The header: mode, switches, source, user, equity, positions and the next check.

use super::Theme;
use crate::app::{App, fmt_countdown};
use crate::domain::money::{fmt_money, fmt_signed};
use crate::engine::Health;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

pub fn render(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let mut first: Vec<Span> = vec![Span::raw(" ")];
    if app.settings.live {
        first.push(Span::styled(" LIVE ", theme.badge(Color::Red)));
    } else {
        first.push(Span::styled(" PAPER ", theme.badge(Color::Cyan)));
    }
    first.push(Span::raw(" "));
    match app.snapshot.as_ref().map(|s| s.state) {
        Some(st) if st.enabled => first.push(Span::styled(" ENABLED ", theme.badge(Color::Green))),
        Some(_) => first.push(Span::styled(" DISABLED ", theme.badge(Color::Yellow))),
        None => first.push(Span::styled(" LOADING ", theme.dim())),
    }
    if app.kill_switch() {
        first.push(Span::raw(" "));
        first.push(Span::styled(" KILL SWITCH ", theme.badge(Color::Red)));
    }
    first.push(Span::raw("  "));
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
    if unreachable.is_some() {
        first.push(Span::styled(
            format!(" {source} UNREACHABLE "),
            theme.badge(Color::Red),
        ));
    } else {
        first.push(Span::styled(source, theme.bold()));
    }
    first.push(Span::raw("  user "));
    first.push(Span::styled(app.settings.user_id.clone(), theme.bold()));
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

    let mut second: Vec<Span> = vec![Span::raw(" equity ")];
    match &app.snapshot {
        Some(s) => {
            second.push(Span::styled(fmt_money(s.equity), theme.bold()));
            let pnl = s.realized_pnl + s.unrealized_pnl;
            second.push(Span::raw(" ("));
            second.push(Span::styled(fmt_signed(pnl), theme.pnl(pnl)));
            second.push(Span::raw(")"));
            second.push(Span::raw(format!(
                "  positions {}/{}  pending {}",
                s.positions.len(),
                app.settings.max_open_positions,
                s.pending.len()
            )));
        }
        None => second.push(Span::styled(
            fmt_money(app.settings.account_size),
            theme.dim(),
        )),
    }
    second.push(Span::raw("  "));
    if app.checking {
        second.push(Span::styled("checking…", theme.warn()));
    } else {
        match app.next_check_at_ms {
            Some(at) => {
                second.push(Span::raw("next check in "));
                second.push(Span::styled(fmt_countdown(app.now_ms, at), theme.bold()));
            }
            None => second.push(Span::styled("first check starting", theme.dim())),
        }
    }
    Paragraph::new(vec![Line::from(first), Line::from(second)]).render(area, buf);
}
