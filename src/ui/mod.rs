//! The dashboard's panes. Each pane renders from `&App` only: no I/O, no clock, no locks.

pub mod confirm;
pub mod events;
pub mod footer;
pub mod form;
pub mod header;
pub mod help;
pub mod pending;
pub mod positions;
pub mod signals;

use crate::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders};

/// Width from which the selected decision's detail box sits beside the pending table.
pub const WIDE: u16 = 110;
/// Height from which every pane gets its full size.
pub const TALL: u16 = 32;

/// Colours, or none at all when `NO_COLOR` is set: modifiers (bold, reversed) stay.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    /// A badge: coloured background, or reversed without colour.
    pub fn badge(self, bg: Color) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(bg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }
    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::Red)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    /// Profit green, loss red.
    pub fn pnl(self, x: f64) -> Style {
        if x > 0.0 {
            self.good()
        } else if x < 0.0 {
            self.bad()
        } else {
            Style::new()
        }
    }
    pub fn header_row(self) -> Style {
        self.bold().patch(self.fg(Color::Cyan))
    }
    pub fn selected(self, focused: bool) -> Style {
        if focused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }
    /// A pane's frame: thick and bright when it has the focus.
    pub fn block(self, title: String, focused: bool) -> Block<'static> {
        let b = Block::new()
            .borders(Borders::ALL)
            .title(Span::styled(format!(" {title} "), self.bold()));
        if focused {
            b.border_type(BorderType::Thick)
                .border_style(self.fg(Color::Cyan))
        } else {
            b.border_type(BorderType::Plain).border_style(self.dim())
        }
    }
}

/// The areas of the screen for a terminal of this size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub signals: Rect,
    pub pending: Rect,
    /// Beside the pending table on a wide terminal; empty otherwise.
    pub detail: Rect,
    pub positions: Rect,
    /// Empty when the terminal is too short.
    pub events: Rect,
    pub footer: Rect,
}

pub fn areas(area: Rect, symbols: usize) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let tall = area.height >= TALL;
    let signals_h = (symbols as u16 + 3).min(if tall { 12 } else { 8 });
    let (pending_h, positions_h) = if tall { (12, 8) } else { (7, 5) };
    let [signals, middle, positions, events] = Layout::vertical([
        Constraint::Length(signals_h),
        Constraint::Min(pending_h),
        Constraint::Length(positions_h),
        Constraint::Fill(1),
    ])
    .areas(body);
    let (pending, detail) = if area.width >= WIDE {
        let [p, d] = Layout::horizontal([
            Constraint::Length(pending::TABLE_WIDTH),
            Constraint::Fill(1),
        ])
        .areas(middle);
        (p, d)
    } else {
        (middle, Rect::default())
    };
    // Events need a line of text inside their frame to be worth drawing.
    let events = if events.height >= 3 {
        events
    } else {
        Rect::default()
    };
    Areas {
        header,
        signals,
        pending,
        detail,
        positions,
        events,
        footer,
    }
}

/// Draw the whole dashboard.
pub fn draw(frame: &mut Frame, app: &App) {
    let theme = Theme {
        color: app.settings.color,
    };
    let screen = frame.area();
    let a = areas(screen, app.settings.symbols.len());
    let buf = frame.buffer_mut();
    header::render(app, theme, a.header, buf);
    signals::render(app, theme, a.signals, buf);
    pending::render(app, theme, a.pending, !a.detail.is_empty(), buf);
    if !a.detail.is_empty() {
        pending::render_detail(app, theme, a.detail, buf);
    }
    positions::render(app, theme, a.positions, buf);
    if !a.events.is_empty() {
        events::render(app, theme, a.events, buf);
    }
    footer::render(app, theme, a.footer, buf);
    if app.show_help {
        help::render(theme, screen, buf);
    }
    let cursor = match &app.form {
        Some(crate::form::Form::Trade(f)) => form::render_trade(app, f, theme, screen, buf),
        Some(crate::form::Form::Size(f)) => form::render_size(app, f, theme, screen, buf),
        None => None,
    };
    if let Some(p) = &app.popup {
        confirm::render(p, theme, screen, buf);
    } else if let Some(at) = cursor {
        frame.set_cursor_position(at);
    }
}

/// The first text that fits `width` cells; `#`s when none does (never a number cut short).
pub fn fit(width: usize, candidates: impl IntoIterator<Item = String>) -> String {
    candidates
        .into_iter()
        .find(|c| c.chars().count() <= width)
        .unwrap_or_else(|| "#".repeat(width))
}

/// A price in `width` cells: its usual precision, else fewer decimals.
pub fn price_cell(x: f64, width: usize) -> String {
    use crate::domain::money::{fmt_fixed, fmt_price};
    fit(
        width,
        [
            fmt_price(x),
            fmt_fixed(x, 2),
            fmt_fixed(x, 0),
            format!("{x:.0}"),
        ],
    )
}

/// A quantity in `width` cells: exact when it fits, else rounded to fewer decimals.
pub fn qty_cell(x: f64, width: usize) -> String {
    fit(
        width,
        std::iter::once(crate::domain::money::fmt_qty(x)).chain(
            (0..8)
                .rev()
                .map(|dp| crate::domain::money::fmt_fixed(x, dp)),
        ),
    )
}

/// A percentage with two decimals: `2.35%`.
pub fn fmt_pct(x: f64) -> String {
    format!("{}%", crate::domain::money::fmt_fixed(x, 2))
}

/// A confidence as the trader reads it: `0.83`.
pub fn fmt_conf(x: f64) -> String {
    crate::domain::money::fmt_fixed(x, 2)
}

/// `11:00:05` in UTC.
pub fn fmt_clock(ms: i64) -> String {
    match crate::store::to_datetime(ms) {
        Some(t) => t.format("%H:%M:%S").to_string(),
        None => "--:--:--".into(),
    }
}
