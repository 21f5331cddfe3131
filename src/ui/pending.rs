//! Pending decisions, and the selected one's reasoning and risk/reward.

use super::grid::{self, Col};
use super::signals::action_style;
use super::{Theme, fmt_pct, fmt_pct_of, fmt_ratio, price_choices, qty_choices};
use crate::app::{App, Focus};
use crate::domain::money::{fmt_money, fmt_qty};
use crate::domain::score::{decision_mark, decision_score, score_phrase};
use crate::store::DecisionLog;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};
use std::ops::Range;

/// The rows a table of one-line rows shows in `height` lines, keeping `selected` in view, the
/// way ratatui's `Table` picks them from offset 0. A frame builds only these rows, so a table of
/// hundreds costs what the screen shows.
pub fn visible_rows(len: usize, selected: Option<usize>, height: usize) -> Range<usize> {
    if len == 0 {
        return 0..0;
    }
    let end = match selected {
        Some(sel) => height.max(sel.min(len - 1) + 1),
        None => height,
    }
    .min(len);
    let start = match selected {
        Some(sel) if sel.min(len - 1) >= height => end - height.max(1),
        _ => 0,
    };
    start..end
}

/// The pending table's columns for `rows`: the key columns (action, symbol, size) stay; the
/// others drop by rank as the pane narrows: first the score (the detail box and the last
/// line show it, or the counter-signal mark), then R:R, the exits, which exit is nearer, the move and the time
/// left, the entry; the current price goes last.
fn columns(app: &App, theme: Theme, rows: &[DecisionLog]) -> Vec<Col> {
    let mut act = Col::new("Act", 0).min(4);
    let mut sym = Col::new("Symbol", 0);
    let mut score = Col::new("Score", 7).right();
    let mut entry = Col::new("Entry", 2).right();
    let mut now = Col::new("Now", 1).right();
    let mut moved = Col::new("Moved", 3).right();
    let mut near = Col::new("Near", 4);
    let mut tp = Col::new("TP", 5).right();
    let mut sl = Col::new("SL", 5).right();
    let mut size = Col::new("Size", 0).right();
    let mut rr = Col::new("R:R", 6).right();
    let mut left = Col::new("Left", 3).right();
    let dash = || vec!["—".to_string()];
    for d in rows {
        let dec = &d.decision;
        act.push(Span::styled(
            dec.action.as_str(),
            action_style(theme, dec.action),
        ));
        sym.push(dec.symbol.clone());
        // A manual or agent order no signal supports shows why it has no score.
        score.push(Span::styled(
            decision_score(dec, d.origin),
            if decision_mark(dec, d.origin).is_some() {
                theme.warn()
            } else {
                Style::new()
            },
        ));
        let plain = Style::new();
        entry.push_choices(dec.entry_price.map_or_else(dash, price_choices), plain);
        tp.push_choices(dec.take_profit.map_or_else(dash, price_choices), plain);
        sl.push_choices(dec.stop_loss.map_or_else(dash, price_choices), plain);
        size.push_choices(qty_choices(dec.position_size), plain);
        rr.push(
            dec.risk_reward
                .map(|r| fmt_ratio(r.risk_reward_ratio))
                .unwrap_or_else(|| "—".into()),
        );
        let last = app.price(&dec.symbol);
        now.push_choices(last.map_or_else(dash, price_choices), plain);
        match (last, dec.entry_price, dec.take_profit, dec.stop_loss) {
            (Some(l), Some(e), Some(t), Some(s)) if e > 0.0 => {
                let pct = (l - e) / e * 100.0;
                let toward_tp = (t - l).abs() < (s - l).abs();
                // Green when the market moved the trade's way, red against it.
                let favour = if dec.action == crate::domain::Verdict::Sell {
                    -pct
                } else {
                    pct
                };
                moved.push_choices(
                    vec![format!(
                        "{}{}",
                        if pct > 0.0 { "+" } else { "" },
                        fmt_pct(pct)
                    )],
                    theme.pnl(favour),
                );
                near.push(if toward_tp {
                    Span::styled("TP", theme.good())
                } else {
                    Span::styled("SL", theme.bad())
                });
            }
            _ => {
                moved.push("—");
                near.push("—");
            }
        }
        left.push(fmt_left(app, d.created_at_ms));
    }
    vec![
        act, sym, score, entry, now, moved, near, tp, sl, size, rr, left,
    ]
}

/// Time left before a pending decision expires: `4:12`, or `due` once past.
fn fmt_left(app: &App, created_at_ms: i64) -> String {
    let expires = created_at_ms.saturating_add(app.settings.pending_expiry_ms);
    if expires <= app.now_ms {
        "due".into()
    } else {
        crate::app::fmt_countdown(app.now_ms, expires)
    }
}

/// `with_detail`: the detail box is drawn beside the table, so no reasoning line inside.
pub fn render(app: &App, theme: Theme, area: Rect, with_detail: bool, buf: &mut Buffer) {
    let focused = app.focus == Focus::Pending;
    let pending = app.pending();
    // Without the detail box beside it, the table's last line tells why.
    let narrow = !with_detail && area.height.saturating_sub(2) >= 4;
    let rows = super::table_rows(area).saturating_sub(usize::from(narrow));
    let block = theme.block(
        super::titled(
            "Pending decisions",
            pending.len(),
            app.selected_pending_index(),
            rows,
        ),
        focused,
    );
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    if pending.is_empty() {
        let text = if app.snapshot.is_none() {
            "loading…"
        } else {
            "no pending decisions: actionable signals appear here for y (confirm) or n (cancel)"
        };
        Paragraph::new(Span::styled(text, theme.dim()))
            .wrap(Wrap { trim: true })
            .render(inner, buf);
        return;
    }
    let (table_area, why_area) = if narrow {
        let [t, w] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
        (t, w)
    } else {
        (inner, Rect::default())
    };
    // Below the header: build only the rows on screen (there may be hundreds).
    let selected = app.selected_pending_index();
    let shown = visible_rows(
        pending.len(),
        selected,
        table_area.height.saturating_sub(1) as usize,
    );
    let cols = columns(app, theme, &pending[shown.clone()]);
    grid::render(
        &cols,
        table_area,
        &theme.table_draw(focused, selected.map(|i| i - shown.start)),
        buf,
    );
    if narrow && let Some(d) = app.selected_pending_log() {
        let mut spans = vec![Span::styled("why ", theme.bold())];
        if d.origin != crate::domain::lifecycle::Origin::Auto {
            spans.push(Span::raw(format!("{} · ", d.origin.as_str())));
        }
        if let Some(mark) = decision_mark(&d.decision, d.origin) {
            spans.push(Span::styled(format!("{mark} · "), theme.warn()));
        }
        if let Some(rr) = d.decision.risk_reward {
            spans.push(Span::raw(format!(
                "risk {} reward {} · ",
                fmt_money(rr.risk_amount),
                fmt_money(rr.reward_amount)
            )));
        }
        let used: usize = spans.iter().map(|s| s.width()).sum();
        let room = (why_area.width as usize).saturating_sub(used);
        let reason = super::grid::cut_at_word(&d.decision.reasoning, room);
        if reason.chars().count() > 1 {
            spans.push(Span::styled(reason, theme.dim()));
        } else if let Some(last) = spans.last_mut() {
            // No room for the reasoning: no dangling separator either.
            let trimmed = last.content.trim_end_matches(" · ").to_string();
            last.content = trimmed.into();
        }
        Paragraph::new(Line::from(spans)).render(why_area, buf);
    }
}

/// The selected decision in full: ids, score, risk/reward and the reasoning.
pub fn render_detail(app: &App, theme: Theme, area: Rect, buf: &mut Buffer) {
    let block = theme.block("Selected decision".into(), false);
    let Some(d) = app.selected_pending_log() else {
        Paragraph::new(Span::styled("nothing selected", theme.dim()))
            .block(block)
            .render(area, buf);
        return;
    };
    let dec = &d.decision;
    let score = Span::styled(
        score_phrase(dec, d.origin),
        if decision_mark(dec, d.origin).is_some() {
            theme.warn()
        } else {
            Style::new()
        },
    );
    let mut lines = vec![
        Line::from(vec![
            Span::styled(dec.action.as_str(), action_style(theme, dec.action)),
            Span::styled(format!(" {}", dec.symbol), theme.bold()),
            Span::raw(" · "),
            score,
        ]),
        Line::from(Span::styled(
            format!("{} · {} · {}", d.log_id, d.origin.as_str(), d.mode),
            theme.dim(),
        )),
    ];
    if let Some(rr) = dec.risk_reward {
        lines.extend(risk_table(theme, &rr, app.risk.account_size));
    }
    let value = dec.entry_price.map(|e| e * dec.position_size);
    lines.push(Line::from(format!(
        "size {} · value {}",
        fmt_qty(dec.position_size),
        value.map(fmt_money).unwrap_or_else(|| "—".into())
    )));
    lines.push(Line::from(""));
    lines.push(Line::from(dec.reasoning.clone()));
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(block)
        .render(area, buf);
}

/// Risk and reward, each said of what: the amount, that amount as a percent of the account,
/// and how far its exit (SL, TP) lies from the entry as a percent of the entry price; their
/// ratio in the corner.
/// ```text
/// R:R 2.50 amount of account from entry
/// risk      40.00      0.40% SL 2.00%
/// reward   100.00      1.00% TP 5.00%
/// ```
pub fn risk_table(
    theme: Theme,
    rr: &crate::domain::rules::RiskReward,
    account_size: f64,
) -> Vec<Line<'static>> {
    let ratio = format!("R:R {}", fmt_ratio(rr.risk_reward_ratio));
    let amounts = [fmt_money(rr.risk_amount), fmt_money(rr.reward_amount)];
    let of_account = [
        fmt_pct_of(rr.risk_amount, account_size),
        fmt_pct_of(rr.reward_amount, account_size),
    ];
    let exits = [
        format!("SL {}", fmt_pct(rr.risk_percent)),
        format!("TP {}", fmt_pct(rr.reward_percent)),
    ];
    let wide = |texts: &[String], header: &str| {
        texts
            .iter()
            .map(|t| t.chars().count())
            .chain([header.chars().count()])
            .max()
            .unwrap_or(0)
    };
    let l = wide(std::slice::from_ref(&ratio), "reward");
    let (a, o) = (wide(&amounts, "amount"), wide(&of_account, "of account"));
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("{ratio:l$} ")),
        Span::styled(
            format!("{:>a$} {:>o$} from entry", "amount", "of account"),
            theme.dim(),
        ),
    ])];
    for (i, (label, style)) in [("risk", theme.bad()), ("reward", theme.good())]
        .into_iter()
        .enumerate()
    {
        lines.push(Line::from(vec![
            Span::raw(format!("{label:l$} ")),
            Span::styled(format!("{:>a$}", amounts[i]), style),
            Span::raw(format!(" {:>o$} {}", of_account[i], exits[i])),
        ]));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::visible_rows;
    use ratatui::buffer::Buffer;
    use ratatui::layout::{Constraint, Rect};
    use ratatui::widgets::{HighlightSpacing, Row, StatefulWidget, Table, TableState};

    fn table(rows: impl Iterator<Item = usize>) -> Table<'static> {
        Table::new(
            rows.map(|i| Row::new(vec![format!("row {i}")])),
            [Constraint::Length(8)],
        )
        .header(Row::new(vec!["head"]))
        .highlight_symbol("> ")
        .highlight_spacing(HighlightSpacing::Always)
    }

    #[test]
    fn only_the_visible_rows_render_the_same_as_all_of_them() {
        for len in 0..8 {
            for height in 0..6u16 {
                for selected in std::iter::once(None).chain((0..len + 2).map(Some)) {
                    let area = Rect::new(0, 0, 10, height);
                    let mut all = Buffer::empty(area);
                    let mut state = TableState::default().with_selected(selected);
                    StatefulWidget::render(table(0..len), area, &mut all, &mut state);

                    let window = visible_rows(len, selected, height.saturating_sub(1) as usize);
                    let mut some = Buffer::empty(area);
                    let mut state =
                        TableState::default().with_selected(selected.map(|s| s - window.start));
                    StatefulWidget::render(table(window.clone()), area, &mut some, &mut state);
                    assert_eq!(all, some, "len {len} height {height} selected {selected:?}");
                }
            }
        }
    }
}
