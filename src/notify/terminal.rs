//! Alerts on the dashboard's own terminal: the bell (BEL) and desktop notifications through
//! the terminal, OSC 9 (`ESC ] 9 ; text BEL`: iTerm2, kitty, Windows Terminal, Ghostty,
//! WezTerm) and OSC 777 (`ESC ] 777 ; notify ; title ; body BEL`: rxvt-unicode, foot,
//! Ghostty, WezTerm, VTE terminals that carry the patch). Both travel over SSH as plain
//! bytes; a terminal that knows neither ignores a well-formed OSC string.
//!
//! Inside tmux ($TMUX set) the OSC strings are wrapped in tmux's DCS passthrough
//! (`ESC P tmux; … ESC \`, every ESC inside doubled): tmux itself swallows OSC 9 (it reads
//! only 9;4, progress) and OSC 777, and passes the wrapped ones to the outer terminal when
//! `set -g allow-passthrough on` (tmux 3.3 and later; off by default, when tmux drops them
//! silently). The bell is left plain: tmux has its own (`bell-action`, `monitor-bell`).
//! GNU screen gets them plain (it drops them).
//!
//! Every text is sanitised first ([`sanitize`]): a symbol, a reason or a halt message can
//! carry no control character (ESC, BEL, ST …), no `;` (OSC 777's field separator) and no
//! invisible bidirectional override, and is cut to a length a notification shows.

use super::alert::Alert;
use crate::config::Notifications;

/// Most desktop notifications for one batch of alerts; the rest are counted in one more.
const MOST_AT_ONCE: usize = 3;
/// Longest title and body, in characters.
const TITLE_CHARS: usize = 80;
const BODY_CHARS: usize = 200;

/// How this terminal is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ringer {
    pub bell: bool,
    pub osc9: bool,
    pub osc777: bool,
    /// Wrap OSC strings in tmux's passthrough.
    pub tmux: bool,
}

impl Ringer {
    /// The config's choice, for the terminal the environment describes.
    pub fn from_env(n: &Notifications) -> Ringer {
        Ringer::new(n, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Which OSC a terminal gets: one it is known to show (a terminal that shows both would
    /// otherwise show every alert twice), both when it is not known, none on a console
    /// with no desktop (`TERM=linux`, `dumb`, `vt…`).
    pub fn new(n: &Notifications, env: impl Fn(&str) -> Option<String>) -> Ringer {
        let term = env("TERM").unwrap_or_default();
        let program = env("TERM_PROGRAM").unwrap_or_default();
        let is = |k: &str| env(k).is_some();
        let (osc9, osc777) = if term == "linux" || term == "dumb" || term.starts_with("vt") {
            (false, false)
        } else if program == "iTerm.app"
            || env("LC_TERMINAL").as_deref() == Some("iTerm2")
            || term == "xterm-kitty"
            || is("KITTY_WINDOW_ID")
            || is("WT_SESSION")
        {
            (true, false)
        } else if term.starts_with("foot")
            || term.starts_with("rxvt")
            || term == "xterm-ghostty"
            || program == "ghostty"
            || program == "WezTerm"
            || is("VTE_VERSION")
        {
            (false, true)
        } else {
            (true, true)
        };
        Ringer {
            bell: n.bell,
            osc9: n.desktop && osc9,
            osc777: n.desktop && osc777,
            tmux: is("TMUX"),
        }
    }

    /// Nothing is ever written.
    pub fn is_silent(&self) -> bool {
        !self.bell && !self.osc9 && !self.osc777
    }

    /// The bytes that tell the terminal of `alerts`: one bell for the batch (when one of
    /// them rings), a notification for each of the first few and one that counts the rest.
    pub fn bytes(&self, alerts: &[Alert]) -> Vec<u8> {
        let mut out = Vec::new();
        if alerts.is_empty() {
            return out;
        }
        if self.bell && alerts.iter().any(|a| a.kind.rings()) {
            out.push(0x07);
        }
        if !(self.osc9 || self.osc777) {
            return out;
        }
        let mut notes: Vec<(String, String)> = alerts
            .iter()
            .take(MOST_AT_ONCE)
            .map(|a| (a.title.clone(), a.body.clone()))
            .collect();
        if alerts.len() > MOST_AT_ONCE {
            let rest = alerts.len() - MOST_AT_ONCE;
            notes.push((
                format!("{rest} more alert(s)"),
                "see the dashboard's events".to_string(),
            ));
        }
        for (title, body) in notes {
            let title = sanitize(&format!("autotrade-tui: {title}"), TITLE_CHARS);
            let body = sanitize(&body, BODY_CHARS);
            if self.osc9 {
                let text = if body.is_empty() {
                    title.clone()
                } else {
                    format!("{title} - {body}")
                };
                self.osc(&mut out, &format!("\x1b]9;{text}\x07"));
            }
            if self.osc777 {
                self.osc(&mut out, &format!("\x1b]777;notify;{title};{body}\x07"));
            }
        }
        out
    }

    fn osc(&self, out: &mut Vec<u8>, seq: &str) {
        if self.tmux {
            out.extend_from_slice(b"\x1bPtmux;");
            out.extend_from_slice(seq.replace('\x1b', "\x1b\x1b").as_bytes());
            out.extend_from_slice(b"\x1b\\");
        } else {
            out.extend_from_slice(seq.as_bytes());
        }
    }
}

/// `s` made safe inside an OSC string and short: control characters (C0, DEL, C1: ESC, BEL,
/// ST, CSI …) become spaces, `;` a comma, invisible format characters (bidirectional
/// overrides, zero-width ones) go, runs of spaces become one, and the text is cut to `max`
/// characters with `…`.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut space = false;
    let mut count = 0usize;
    for c in s.chars() {
        let c = match c {
            c if c.is_control() || c.is_whitespace() => ' ',
            ';' => ',',
            '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}' => continue,
            c => c,
        };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count + 1 > max {
            // Cut: the last character becomes the ellipsis.
            let trimmed = out.trim_end().to_string();
            let mut cut: String = trimmed.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            return cut;
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::alert::AlertKind;

    fn notifications(bell: bool, desktop: bool) -> Notifications {
        Notifications {
            bell,
            desktop,
            webhook_url: None,
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn alert(kind: AlertKind, title: &str, body: &str) -> Alert {
        Alert {
            kind,
            key: format!("k:{title}"),
            user_id: "default".into(),
            symbol: None,
            log_id: None,
            at: None,
            title: title.into(),
            body: body.into(),
            fields: Default::default(),
        }
    }

    #[test]
    fn sanitize_strips_what_could_end_or_inject_a_sequence() {
        assert_eq!(
            sanitize("BTC/USD\x1b]0;pwned\x07 \x1b\\ok", 100),
            "BTC/USD ]0,pwned \\ok"
        );
        // C1 controls (ST U+009C, CSI U+009B), a semicolon, newlines and tabs.
        assert_eq!(sanitize("a\u{9c}b\u{9b}31mc;d\r\n\te", 100), "a b 31mc,d e");
        // Bidirectional overrides and zero-width characters vanish.
        assert_eq!(sanitize("ab\u{202e}cd\u{200b}e\u{2066}f", 100), "abcdef");
        assert_eq!(sanitize("  lots   of\u{7f}space  ", 100), "lots of space");
        assert_eq!(sanitize("", 10), "");
        let long = "é".repeat(50);
        let cut = sanitize(&long, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        assert_eq!(sanitize("exactly 10", 10), "exactly 10");
    }

    #[test]
    fn bell_and_both_notifications_by_default_and_nothing_when_off() {
        let r = Ringer::new(
            &notifications(true, true),
            env(&[("TERM", "xterm-256color")]),
        );
        let a = [alert(
            AlertKind::Pending,
            "BUY BTC/USD pending",
            "entry 45,000.00",
        )];
        let out = String::from_utf8(r.bytes(&a)).unwrap();
        assert_eq!(
            out,
            "\x07\x1b]9;autotrade-tui: BUY BTC/USD pending - entry 45,000.00\x07\
             \x1b]777;notify;autotrade-tui: BUY BTC/USD pending;entry 45,000.00\x07"
        );
        let quiet = Ringer::new(&notifications(false, false), env(&[("TERM", "xterm")]));
        assert!(quiet.is_silent());
        assert!(quiet.bytes(&a).is_empty());
        let bell_only = Ringer::new(&notifications(true, false), env(&[("TERM", "xterm")]));
        assert_eq!(bell_only.bytes(&a), b"\x07");
        // A quieter alert: no bell, a notification all the same.
        let closed = [alert(AlertKind::Closed, "Closed BTC/USD", "by trader")];
        let out = Ringer::new(&notifications(true, true), env(&[])).bytes(&closed);
        assert!(!out.starts_with(b"\x07"));
        assert!(out.starts_with(b"\x1b]9;"));
    }

    #[test]
    fn an_injected_title_cannot_break_out_of_its_sequence() {
        let r = Ringer::new(&notifications(false, true), env(&[("TERM", "xterm")]));
        let a = [alert(
            AlertKind::Halt,
            "HALTED\x07\x1b[2J",
            "x;y\x1b]777;notify;fake;fake\x07",
        )];
        let out = r.bytes(&a);
        // Exactly the two sequences' own ESCs and BELs, and the 777 fields intact.
        assert_eq!(out.iter().filter(|b| **b == 0x1b).count(), 2);
        assert_eq!(out.iter().filter(|b| **b == 0x07).count(), 2);
        let text = String::from_utf8(out).unwrap();
        let osc777 = text.split("\x1b]777;").nth(1).unwrap();
        assert_eq!(osc777.matches(';').count(), 2, "{osc777:?}");
    }

    #[test]
    fn the_terminal_decides_which_sequences() {
        let pick = |vars: &[(&str, &str)]| {
            let r = Ringer::new(&notifications(true, true), env(vars));
            (r.osc9, r.osc777)
        };
        assert_eq!(pick(&[("TERM", "xterm-256color")]), (true, true));
        assert_eq!(pick(&[("TERM", "xterm-kitty")]), (true, false));
        assert_eq!(
            pick(&[("TERM", "xterm-256color"), ("TERM_PROGRAM", "iTerm.app")]),
            (true, false)
        );
        assert_eq!(
            pick(&[("TERM", "xterm-256color"), ("WT_SESSION", "x")]),
            (true, false)
        );
        assert_eq!(pick(&[("TERM", "foot")]), (false, true));
        assert_eq!(pick(&[("TERM", "rxvt-unicode-256color")]), (false, true));
        assert_eq!(pick(&[("TERM", "xterm-ghostty")]), (false, true));
        assert_eq!(
            pick(&[("TERM", "xterm-256color"), ("VTE_VERSION", "7600")]),
            (false, true)
        );
        assert_eq!(pick(&[("TERM", "linux")]), (false, false));
    }

    #[test]
    fn inside_tmux_the_notifications_go_through_its_passthrough() {
        let r = Ringer::new(
            &notifications(true, true),
            env(&[
                ("TERM", "tmux-256color"),
                ("TMUX", "/tmp/tmux-1000/default,1,0"),
            ]),
        );
        assert!(r.tmux);
        let out =
            String::from_utf8(r.bytes(&[alert(AlertKind::Outage, "ML engine unreachable", "")]))
                .unwrap();
        assert_eq!(
            out,
            "\x07\x1bPtmux;\x1b\x1b]9;autotrade-tui: ML engine unreachable\x07\x1b\\\
             \x1bPtmux;\x1b\x1b]777;notify;autotrade-tui: ML engine unreachable;\x07\x1b\\"
        );
    }

    #[test]
    fn a_burst_is_one_bell_and_a_few_notifications() {
        let r = Ringer::new(&notifications(true, true), env(&[("TERM", "foot")]));
        let many: Vec<Alert> = (0..7)
            .map(|i| alert(AlertKind::Fill, &format!("Filled {i}"), ""))
            .collect();
        let out = String::from_utf8(r.bytes(&many)).unwrap();
        assert_eq!(out.matches('\x07').count(), 1 + 4);
        assert_eq!(out.matches("\x1b]777;").count(), 4);
        assert!(out.contains("4 more alert(s)"), "{out:?}");
    }
}
