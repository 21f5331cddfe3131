//! The dashboard's panes. Each pane renders from `&App` only: no I/O, no clock, no locks.

pub mod analytics;
pub mod confirm;
pub mod events;
pub mod footer;
pub mod form;
pub mod grid;
pub mod header;
pub mod help;
pub mod history;
pub mod pending;
pub mod positions;
pub mod signals;

use crate::app::{App, Focus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders};

/// Width from which the selected decision's detail box sits beside the pending table (which
/// then still has room for every column).
pub const WIDE: u16 = 140;
/// The detail box's width on a wide terminal; the pending table takes the rest.
pub const DETAIL_WIDTH: u16 = 42;
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
    /// What a fitted table needs to draw with the selection marker of its focus.
    pub fn table_draw(self, focused: bool, selected: Option<usize>) -> grid::Draw<'static> {
        grid::Draw {
            header_style: self.header_row(),
            highlight: Some((self.selected(focused), if focused { "▶ " } else { "▷ " })),
            selected,
        }
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

/// How many rows the panes hold, for sharing out the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rows {
    pub symbols: usize,
    pub pending: usize,
    pub positions: usize,
}

/// The areas of the screen for a terminal of this size. When the panes do not all fit, the
/// focused one gets its room first, then pending, positions and signals; a frame with no room
/// for a row is left out rather than drawn empty.
pub fn areas(area: Rect, rows: Rows, focus: Focus) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let tall = area.height >= TALL;
    let full = |pane: Focus| match pane {
        Focus::Signals => (rows.symbols as u16 + 3).min(if tall { 12 } else { 8 }),
        Focus::Pending => {
            if tall {
                12
            } else {
                7
            }
        }
        Focus::Positions => {
            if tall {
                8
            } else {
                5
            }
        }
        Focus::Events => 3,
    };
    // When the panes do not all fit at their usual heights, each asks only for what it holds
    // (an empty pane: its frame and a line saying so).
    let short = [Focus::Signals, Focus::Pending, Focus::Positions]
        .into_iter()
        .map(full)
        .sum::<u16>()
        > body.height;
    let want = |pane: Focus| {
        let needed = match pane {
            Focus::Pending if rows.pending == 0 => 4,
            Focus::Pending => rows.pending as u16 + 4,
            Focus::Positions => (rows.positions as u16 + 3).max(3),
            _ => full(pane),
        };
        if short {
            full(pane).min(needed)
        } else {
            full(pane)
        }
    };
    let mut order = vec![focus];
    for pane in [Focus::Pending, Focus::Positions, Focus::Signals] {
        if !order.contains(&pane) {
            order.push(pane);
        }
    }
    let mut left = body.height;
    let mut height = |pane: Focus| {
        let w = want(pane);
        let h = w.min(left);
        // Cut short below four lines a frame holds no row worth showing.
        let h = if h < w && h < 4 && pane != Focus::Events {
            0
        } else {
            h
        };
        left -= h;
        (pane, h)
    };
    let given: Vec<(Focus, u16)> = order.into_iter().map(&mut height).collect();
    let of = |pane: Focus| {
        given
            .iter()
            .find(|(p, _)| *p == pane)
            .map_or(0, |(_, h)| *h)
    };
    // What no pane takes goes to the events, or to the pending pane when too little for them.
    let spare = if left < 3 { left } else { 0 };
    let [signals, middle, positions, events] = Layout::vertical([
        Constraint::Length(of(Focus::Signals)),
        Constraint::Length(of(Focus::Pending) + spare),
        Constraint::Length(of(Focus::Positions)),
        Constraint::Fill(1),
    ])
    .areas(body);
    let (pending, detail) = if area.width >= WIDE {
        let [p, d] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(DETAIL_WIDTH)])
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
    let rows = Rows {
        symbols: app.signal_symbols().len(),
        pending: app.pending().len(),
        positions: app.positions().len(),
    };
    let a = areas(screen, rows, app.focus);
    let buf = frame.buffer_mut();
    header::render(app, theme, a.header, buf);
    if !a.signals.is_empty() {
        signals::render(app, theme, a.signals, buf);
    }
    pending::render(app, theme, a.pending, !a.detail.is_empty(), buf);
    if !a.detail.is_empty() {
        pending::render_detail(app, theme, a.detail, buf);
    }
    positions::render(app, theme, a.positions, buf);
    if !a.events.is_empty() {
        events::render(app, theme, a.events, buf);
    }
    footer::render(app, theme, a.footer, buf);
    if let Some(h) = &app.history {
        history::render(h, theme, screen, buf);
    }
    if let Some(a) = &app.analytics {
        analytics::render(a.data.as_ref(), a.from, theme, screen, buf);
    }
    if app.show_help {
        help::render(&app.settings, theme, screen, buf);
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

/// `x` in about three significant digits with a suffix (`~68.2k`, `~1.23M`) or an exponent
/// (`1.23e-5`), `~` in front when that rounds it: a compact form that is still true.
pub fn compact(x: f64) -> String {
    use crate::domain::money::fmt_fixed;
    if !x.is_finite() {
        return "—".into();
    }
    let a = x.abs();
    let (scaled, suffix) = match a {
        a if a >= 1e12 => (x / 1e12, "T"),
        a if a >= 1e9 => (x / 1e9, "B"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    if a != 0.0 && a < 1e-3 {
        let s = format!("{x:.2e}");
        let exact = s.parse::<f64>().ok() == Some(x);
        let s = s.replace(".00e", "e");
        return if exact { s } else { format!("~{s}") };
    }
    let dp = if scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    let text = fmt_fixed(scaled, dp);
    let back = text.replace(',', "").parse::<f64>().unwrap_or(f64::NAN)
        * match suffix {
            "T" => 1e12,
            "B" => 1e9,
            "M" => 1e6,
            "k" => 1e3,
            _ => 1.0,
        };
    let mark = if (back - x).abs() > f64::EPSILON * a.max(1.0) {
        "~"
    } else {
        ""
    };
    format!("{mark}{text}{suffix}")
}

/// A price as the table may show it, best first: the symbol's precision, then compact.
pub fn price_choices(x: f64) -> Vec<String> {
    vec![crate::domain::money::fmt_price(x), compact(x)]
}

/// A quantity as the table may show it, best first: exact, then compact.
pub fn qty_choices(x: f64) -> Vec<String> {
    vec![crate::domain::money::fmt_qty(x), compact(x)]
}

/// Money with its sign, best first: to the cent, then compact (`+1.2k`).
pub fn signed_choices(x: f64) -> Vec<String> {
    let c = compact(x);
    let c = if x > 0.0 {
        format!("+{c}").replace("+~", "~+")
    } else {
        c
    };
    vec![crate::domain::money::fmt_signed(x), c]
}

/// A pane's title with where its rows are: `Signals (3)` when they all show (or none can),
/// else `Signals 12–20 of 40`. `rows`: how many rows the pane has room for.
pub fn titled(name: &str, len: usize, selected: Option<usize>, rows: usize) -> String {
    if len <= rows || rows == 0 {
        return format!("{name} ({len})");
    }
    let shown = pending::visible_rows(len, selected, rows);
    if shown.is_empty() {
        format!("{name} ({len})")
    } else {
        format!("{name} {}–{} of {len}", shown.start + 1, shown.end)
    }
}

/// The rows a framed table of `area` has room for below its header.
pub fn table_rows(area: Rect) -> usize {
    area.height.saturating_sub(3) as usize
}

/// A percentage with two decimals: `2.35%`.
pub fn fmt_pct(x: f64) -> String {
    format!("{}%", crate::domain::money::fmt_fixed(x, 2))
}

/// A ratio (reward to risk): `2.50`.
pub fn fmt_ratio(x: f64) -> String {
    crate::domain::money::fmt_fixed(x, 2)
}

/// `part` as a percent of `whole`, for the risk and reward of a decision against the
/// account: `0.44%` (a dash when `whole` is not a size).
pub fn fmt_pct_of(part: f64, whole: f64) -> String {
    if whole > 0.0 && whole.is_finite() {
        fmt_pct(part / whole * 100.0)
    } else {
        "—".into()
    }
}

/// `11:00:05` in UTC.
pub fn fmt_clock(ms: i64) -> String {
    match crate::store::to_datetime(ms) {
        Some(t) => t.format("%H:%M:%S").to_string(),
        None => "--:--:--".into(),
    }
}
