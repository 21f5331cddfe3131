//! The manual trade form (`t`) and the new-size form (`s`): the fields as typed, and the
//! preview `App::update` computed (size, risk/reward, or why the rules would refuse).

use super::signals::action_style;
use super::{Theme, fmt_pct, fmt_pct_of, fmt_ratio};
use crate::app::App;
use crate::domain::lifecycle::Origin;
use crate::domain::money::{fmt_money, fmt_price, fmt_qty};
use crate::domain::rules::{Decision, RiskReward, max_quantity};
use crate::domain::score::{decision_mark, fmt_score, score_phrase, signal_maker};
use crate::form::{NumberField, SizeForm, TradeField, TradeForm};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

/// Cells of a number field's box, brackets excluded.
const BOX: usize = 14;
/// Column of the field values (after the marker and the label).
const VALUE_COL: u16 = 10;

fn label(theme: Theme, focused: bool, name: &str) -> Vec<Span<'static>> {
    let marker = if focused { "▶ " } else { "  " };
    vec![
        Span::styled(marker, theme.fg(Color::Cyan).patch(theme.bold())),
        Span::styled(
            format!("{name:<8}"),
            if focused { theme.bold() } else { Style::new() },
        ),
    ]
}

fn number_box(theme: Theme, focused: bool, f: &NumberField) -> Vec<Span<'static>> {
    let style = if focused {
        Style::new().add_modifier(ratatui::style::Modifier::REVERSED)
    } else {
        Style::new()
    };
    vec![
        Span::raw("["),
        Span::styled(format!("{:<BOX$}", f.text), style),
        Span::raw("] "),
    ]
    .into_iter()
    .map(|s| {
        if focused {
            s.patch_style(theme.bold())
        } else {
            s
        }
    })
    .collect()
}

/// A choice field: `◀ BTC/USD ▶` when focused, padded to one width either way.
fn choice(theme: Theme, focused: bool, text: Span<'static>, width: usize) -> Vec<Span<'static>> {
    let pad = " ".repeat(width.saturating_sub(text.width()));
    if focused {
        vec![
            Span::styled("◀ ", theme.fg(Color::Cyan)),
            text,
            Span::styled(" ▶", theme.fg(Color::Cyan)),
            Span::raw(pad),
        ]
    } else {
        vec![Span::raw("  "), text, Span::raw("  "), Span::raw(pad)]
    }
}

/// Risk and reward, each said of what:
/// `risk 44.44 = 0.44% of account · SL 2.22% from entry` and
/// `reward 111.11 = 1.11% of account · TP 5.56% from entry · R:R 2.50`.
fn risk_reward_lines(theme: Theme, rr: &RiskReward, account_size: f64) -> [Line<'static>; 2] {
    [
        Line::from(vec![
            Span::raw("risk "),
            Span::styled(fmt_money(rr.risk_amount), theme.bad()),
            Span::raw(format!(
                " = {} of account · SL {} from entry",
                fmt_pct_of(rr.risk_amount, account_size),
                fmt_pct(rr.risk_percent)
            )),
        ]),
        Line::from(vec![
            Span::raw("reward "),
            Span::styled(fmt_money(rr.reward_amount), theme.good()),
            Span::raw(format!(
                " = {} of account · TP {} from entry · R:R {}",
                fmt_pct_of(rr.reward_amount, account_size),
                fmt_pct(rr.reward_percent),
                fmt_ratio(rr.risk_reward_ratio)
            )),
        ]),
    ]
}

/// `BUY 0.04444444 BTC/USD @ 45,000.00 · value 2,000.00`, and for a new trade its score
/// (`· score 0.87`, or `· counter-signal` when it goes against the signal).
fn order_line(theme: Theme, d: &Decision, origin: Option<Origin>) -> Line<'static> {
    let mut spans = vec![
        Span::styled(d.action.as_str(), action_style(theme, d.action)),
        Span::styled(
            format!(" {} {}", fmt_qty(d.position_size), d.symbol),
            theme.bold(),
        ),
    ];
    if let Some(e) = d.entry_price {
        spans.push(Span::raw(format!(
            " @ {} · value {}",
            fmt_price(e),
            fmt_money(e * d.position_size)
        )));
    }
    if let Some(origin) = origin {
        let style = if decision_mark(d, origin).is_some() {
            theme.warn()
        } else {
            Style::new()
        };
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(score_phrase(d, origin), style));
    }
    Line::from(spans)
}

fn problem(theme: Theme, text: String) -> Line<'static> {
    Line::from(vec![
        Span::styled("✗ ", theme.bad().patch(theme.bold())),
        Span::styled(text, theme.bad()),
    ])
}

fn popup_area(screen: Rect, height: u16) -> Rect {
    screen.centered(
        Constraint::Length(screen.width.min(72)),
        Constraint::Length(height.min(screen.height)),
    )
}

/// The trade form; returns where the text cursor goes when a number field has the focus.
pub fn render_trade(
    app: &App,
    f: &TradeForm,
    theme: Theme,
    screen: Rect,
    buf: &mut Buffer,
) -> Option<Position> {
    let dim = theme.dim();
    let focused = |field| f.field == field;
    let known = &f.known;
    let preview = f.preview.as_ref().ok();

    let mut symbol_line = label(theme, focused(TradeField::Symbol), "Symbol");
    symbol_line.extend(choice(
        theme,
        focused(TradeField::Symbol),
        Span::styled(f.symbol().to_string(), theme.bold()),
        BOX - 1,
    ));
    symbol_line.push(Span::styled(
        match known.price {
            Some(p) => format!(" last {}", fmt_price(p)),
            None => " no price yet".into(),
        },
        dim,
    ));
    // Whose signal the levels and the side follow: the analyzer's on the simulated market.
    let maker = signal_maker(app.settings.simulated);
    let signal_line = Line::from(Span::styled(
        match &known.signal {
            Some(s) => format!(
                "{maker} signal: {}, score {}",
                s.direction,
                fmt_score(s.confidence)
            ),
            None => format!("no {maker} signal"),
        },
        dim,
    ));

    let mut side_line = label(theme, focused(TradeField::Side), "Side");
    side_line.extend(choice(
        theme,
        focused(TradeField::Side),
        Span::styled(f.side.as_str(), action_style(theme, f.side.into())),
        BOX - 1,
    ));
    if !f.side_chosen {
        side_line.push(Span::styled(" follows the signal", dim));
    }

    // Beside an empty field: what fills it in; beside a typed one: `typed`, if anything.
    let hint_or_error =
        |field: &NumberField, name: &str, hint: String, typed: String| -> Span<'static> {
            match field.value(name) {
                Err(_) => Span::styled("✗ not a number > 0", theme.bad()),
                Ok(Some(_)) => Span::styled(typed, dim),
                Ok(None) => Span::styled(hint, dim),
            }
        };

    let mut size_line = label(theme, focused(TradeField::Size), "Size");
    size_line.extend(number_box(theme, focused(TradeField::Size), &f.size));
    let auto = match preview {
        Some(d) => {
            let capped = d
                .entry_price
                .is_some_and(|e| d.position_size >= max_quantity(&app.risk, e));
            if capped {
                format!(
                    "auto {} (the cap: {}% of account)",
                    fmt_qty(d.position_size),
                    app.risk.max_position_percent
                )
            } else {
                format!(
                    "auto {} ({}% risk)",
                    fmt_qty(d.position_size),
                    app.risk.max_risk_percent
                )
            }
        }
        None => "auto: from the risk rules".into(),
    };
    let cap = known
        .price
        .map(|p| format!("cap {}", fmt_qty(max_quantity(&app.risk, p))))
        .unwrap_or_default();
    size_line.push(hint_or_error(&f.size, "size", auto, cap));

    let level_hint = |from_signal: Option<f64>| match from_signal {
        Some(v) => format!("from signal {}", fmt_price(v)),
        None => "no signal: type one".into(),
    };
    let mut tp_line = label(theme, focused(TradeField::TakeProfit), "TP");
    tp_line.extend(number_box(
        theme,
        focused(TradeField::TakeProfit),
        &f.take_profit,
    ));
    tp_line.push(hint_or_error(
        &f.take_profit,
        "TP",
        level_hint(known.signal.as_ref().map(|s| s.take_profit)),
        String::new(),
    ));
    let mut sl_line = label(theme, focused(TradeField::StopLoss), "SL");
    sl_line.extend(number_box(
        theme,
        focused(TradeField::StopLoss),
        &f.stop_loss,
    ));
    sl_line.push(hint_or_error(
        &f.stop_loss,
        "SL",
        level_hint(known.signal.as_ref().map(|s| s.stop_loss)),
        String::new(),
    ));

    let mut lines: Vec<Line> = vec![
        Line::from(symbol_line),
        Line::from(side_line),
        Line::from(size_line),
        Line::from(tp_line),
        Line::from(sl_line),
        Line::from(""),
        signal_line,
    ];
    match &f.preview {
        Ok(d) => {
            lines.push(order_line(theme, d, Some(Origin::Manual)));
            if let Some(rr) = &d.risk_reward {
                lines.extend(risk_reward_lines(theme, rr, app.risk.account_size));
            }
        }
        Err(e) => lines.push(problem(theme, e.clone())),
    }
    if let Some(why) = &known.blocked {
        lines.push(Line::from(vec![
            Span::styled("! ", theme.warn().patch(theme.bold())),
            Span::styled(format!("{why}: the store will refuse it"), theme.warn()),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        if f.preview.is_ok() {
            "Enter creates it pending: confirm it with y. Esc cancels."
        } else {
            "Fix the above to create it. Esc cancels."
        },
        dim,
    )));

    let area = popup_area(screen, 15);
    Clear.render(area, buf);
    let block = theme.block("New manual trade".into(), true);
    let inner = block.inner(area);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block)
        .render(area, buf);
    // The terminal's cursor sits after the text of the focused number field.
    let row = TradeField::ALL.iter().position(|x| *x == f.field)? as u16;
    let text = match f.field {
        TradeField::Size => &f.size,
        TradeField::TakeProfit => &f.take_profit,
        TradeField::StopLoss => &f.stop_loss,
        TradeField::Symbol | TradeField::Side => return None,
    };
    cursor(inner, row, text)
}

fn cursor(inner: Rect, row: u16, text: &NumberField) -> Option<Position> {
    let x = inner.x + VALUE_COL + 1 + text.text.chars().count().min(BOX) as u16;
    let y = inner.y + row;
    (x < inner.right() && y < inner.bottom()).then_some(Position { x, y })
}

/// The new-size form of a pending decision.
pub fn render_size(
    app: &App,
    f: &SizeForm,
    theme: Theme,
    screen: Rect,
    buf: &mut Buffer,
) -> Option<Position> {
    let d = &f.decision;
    let dim = theme.dim();
    let levels = |x: Option<f64>| x.map(fmt_price).unwrap_or_else(|| "—".into());
    let mut lines = vec![
        Line::from(vec![
            Span::styled(d.action.as_str(), action_style(theme, d.action)),
            Span::styled(format!(" {}", d.symbol), theme.bold()),
            Span::raw(format!(
                " @ {} · TP {} · SL {}",
                levels(d.entry_price),
                levels(d.take_profit),
                levels(d.stop_loss)
            )),
        ]),
        Line::from(Span::styled(
            format!(
                "now {} · cap {} ({}% of account {})",
                fmt_qty(d.position_size),
                f.cap.map(fmt_qty).unwrap_or_else(|| "—".into()),
                app.risk.max_position_percent,
                fmt_money(app.risk.account_size)
            ),
            dim,
        )),
        Line::from(Span::styled(f.log_id.clone(), dim)),
        Line::from(""),
    ];
    let mut size_line = label(theme, true, "Size");
    size_line.extend(number_box(theme, true, &f.size));
    lines.push(Line::from(size_line));
    lines.push(Line::from(""));
    match &f.preview {
        Ok(new) => {
            lines.push(order_line(theme, new, None));
            if let Some(rr) = &new.risk_reward {
                lines.extend(risk_reward_lines(theme, rr, app.risk.account_size));
            }
        }
        Err(e) if f.size.text.is_empty() => {
            lines.push(Line::from(Span::styled(e.clone(), dim)));
        }
        Err(e) => lines.push(problem(theme, e.clone())),
    }
    let area = popup_area(screen, 12);
    Clear.render(area, buf);
    let block = theme.block("New size".into(), true);
    let inner = block.inner(area);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block)
        .render(area, buf);
    cursor(inner, 4, &f.size)
}
