//! The one key table. It feeds the key handler, the footer hints and the `?` help screen,
//! so the three never disagree.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks the dashboard to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    SwitchFocus,
    /// Shift-Tab: the focus the other way round.
    SwitchFocusBack,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// `/`: filter the signals by symbol.
    Filter,
    Confirm,
    Cancel,
    ToggleEnabled,
    KillSwitch,
    /// Kill switch and close every open position (asks y/n).
    Flatten,
    /// Clear a loss halt (asks y/n).
    ResetHalt,
    CheckNow,
    /// Open the manual trade form.
    NewTrade,
    /// Open the size form for the selected pending decision.
    Resize,
    /// Close the selected position (asks y/n).
    ClosePosition,
    Help,
    /// `q`: quit, asking first when positions are open or decisions pending.
    Quit,
    /// Ctrl-C: quit at once.
    QuitNow,
    /// In a form.
    NextField,
    PrevField,
    NextChoice,
    PrevChoice,
    DeleteChar,
    ClearField,
    Submit,
    CancelForm,
    /// In a y/n popup.
    Yes,
    No,
    /// Close the help screen or the history view.
    Close,
    /// Open the trade history view.
    History,
    /// Open the analytics view.
    Analytics,
}

/// Which table is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Popup,
    /// The manual trade form: unbound characters are typed into it.
    TradeForm,
    /// Typing a filter for the signals.
    Filter,
    /// The new-size form of a pending decision.
    SizeForm,
    Help,
    /// The trade history view.
    History,
    /// The analytics view.
    Analytics,
}

/// One key, as the terminal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn key(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

/// A row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub command: Command,
    /// The help screen's sentence.
    pub help: &'static str,
    /// The footer's hint: key label and one word. `None`: help screen only.
    pub footer: Option<(&'static str, &'static str)>,
}

/// Moving in a list, in every table that has one.
const UP: Binding = Binding {
    keys: &[key(KeyCode::Up), ch('k')],
    command: Command::Up,
    help: "select the previous item in the focused pane",
    footer: Some(("↑↓", "select")),
};
const DOWN: Binding = Binding {
    keys: &[key(KeyCode::Down), ch('j')],
    command: Command::Down,
    help: "select the next item in the focused pane",
    footer: None,
};
const PAGE_UP: Binding = Binding {
    keys: &[key(KeyCode::PageUp)],
    command: Command::PageUp,
    help: "a page up in the focused pane",
    footer: None,
};
const PAGE_DOWN: Binding = Binding {
    keys: &[key(KeyCode::PageDown)],
    command: Command::PageDown,
    help: "a page down in the focused pane",
    footer: None,
};
const TOP: Binding = Binding {
    keys: &[ch('g'), key(KeyCode::Home)],
    command: Command::Top,
    help: "the first item of the focused pane",
    footer: None,
};
const BOTTOM: Binding = Binding {
    keys: &[ch('G'), key(KeyCode::End)],
    command: Command::Bottom,
    help: "the last item of the focused pane",
    footer: None,
};

/// The dashboard's keys (SPEC "Dashboard").
pub const NORMAL: &[Binding] = &[
    // Table order is the footer's priority: at 80 columns the later hints drop out first.
    Binding {
        keys: &[ch('y'), key(KeyCode::Enter)],
        command: Command::Confirm,
        help: "confirm (execute) the selected pending decision",
        footer: Some(("y", "confirm")),
    },
    Binding {
        keys: &[ch('n'), ch('x'), key(KeyCode::Delete)],
        command: Command::Cancel,
        help: "cancel the selected pending decision",
        footer: Some(("n", "cancel")),
    },
    Binding {
        keys: &[ch('t')],
        command: Command::NewTrade,
        help: "new manual trade (a form: symbol, side, size, TP, SL)",
        footer: Some(("t", "trade")),
    },
    UP,
    DOWN,
    PAGE_UP,
    PAGE_DOWN,
    TOP,
    BOTTOM,
    Binding {
        keys: &[key(KeyCode::Tab)],
        command: Command::SwitchFocus,
        help: "focus the next pane: pending, positions, signals, events",
        footer: Some(("Tab", "pane")),
    },
    Binding {
        keys: &[key(KeyCode::BackTab)],
        command: Command::SwitchFocusBack,
        help: "focus the previous pane",
        footer: None,
    },
    Binding {
        keys: &[ch('/')],
        command: Command::Filter,
        help: "filter the signals by symbol (Enter keeps it, Esc clears it)",
        footer: Some(("/", "filter")),
    },
    Binding {
        keys: &[ch('K')],
        command: Command::KillSwitch,
        help: "kill switch: pause entries, cancel all pending (asks y/n)",
        footer: Some(("K", "kill")),
    },
    Binding {
        keys: &[ch('F')],
        command: Command::Flatten,
        help: "flatten: kill switch, and close every position (asks y/n)",
        footer: None,
    },
    Binding {
        keys: &[ch('R')],
        command: Command::ResetHalt,
        help: "reset a loss halt; limits restart from equity now (asks y/n)",
        footer: None,
    },
    Binding {
        keys: &[ch('c')],
        command: Command::ClosePosition,
        help: "close the selected position at the latest price (asks y/n)",
        footer: Some(("c", "close")),
    },
    Binding {
        keys: &[ch('s')],
        command: Command::Resize,
        help: "change the size of the selected pending decision",
        footer: Some(("s", "size")),
    },
    Binding {
        keys: &[ch('e')],
        command: Command::ToggleEnabled,
        help: "enable/disable auto-trading; enabling clears the kill switch",
        footer: Some(("e", "on/off")),
    },
    Binding {
        keys: &[ch('r')],
        command: Command::CheckNow,
        help: "check every symbol now",
        footer: Some(("r", "check")),
    },
    Binding {
        keys: &[ch('h')],
        command: Command::History,
        help: "history: closed trades with P&L, all events, searchable",
        footer: Some(("h", "history")),
    },
    Binding {
        keys: &[ch('a')],
        command: Command::Analytics,
        help: "analytics: outcomes of decisions, vetoes, score reliability",
        footer: Some(("a", "analytics")),
    },
    Binding {
        keys: &[ch('?')],
        command: Command::Help,
        help: "show or hide this help",
        footer: Some(("?", "help")),
    },
    Binding {
        keys: &[ch('q')],
        command: Command::Quit,
        help: "quit (asks when positions are open or decisions pending)",
        footer: Some(("q", "quit")),
    },
    Binding {
        keys: &[ctrl('c')],
        command: Command::QuitNow,
        help: "quit at once (the store keeps everything)",
        footer: None,
    },
];

/// Keys of a y/n confirmation popup.
pub const POPUP: &[Binding] = &[
    // Only `y`: a second Enter after `Enter` must not answer a dangerous question.
    Binding {
        keys: &[ch('y')],
        command: Command::Yes,
        help: "yes, do it",
        footer: Some(("y", "yes")),
    },
    Binding {
        keys: &[ch('n'), key(KeyCode::Esc), ch('q')],
        command: Command::No,
        help: "no, dismiss",
        footer: Some(("n/Esc", "no")),
    },
    Binding {
        keys: &[ctrl('c')],
        command: Command::QuitNow,
        help: "quit the dashboard",
        footer: None,
    },
];

/// Bindings both forms share.
const DELETE_CHAR: Binding = Binding {
    keys: &[key(KeyCode::Backspace)],
    command: Command::DeleteChar,
    help: "delete",
    footer: None,
};
const CLEAR_FIELD: Binding = Binding {
    keys: &[ctrl('u')],
    command: Command::ClearField,
    help: "clear",
    footer: None,
};
const CANCEL_FORM: Binding = Binding {
    keys: &[key(KeyCode::Esc)],
    command: Command::CancelForm,
    help: "cancel",
    footer: Some(("Esc", "cancel")),
};
const QUIT_CTRL_C: Binding = Binding {
    keys: &[ctrl('c')],
    command: Command::QuitNow,
    help: "quit the dashboard",
    footer: None,
};

/// Keys of the manual trade form. Characters no binding takes are typed into the focused field.
pub const TRADE_FORM: &[Binding] = &[
    Binding {
        keys: &[key(KeyCode::Tab), key(KeyCode::Down)],
        command: Command::NextField,
        help: "next field",
        footer: Some(("Tab", "field")),
    },
    Binding {
        keys: &[key(KeyCode::BackTab), key(KeyCode::Up)],
        command: Command::PrevField,
        help: "previous field",
        footer: None,
    },
    Binding {
        keys: &[key(KeyCode::Right), ch(' ')],
        command: Command::NextChoice,
        help: "next symbol/side",
        footer: Some(("←→", "symbol/side")),
    },
    Binding {
        keys: &[key(KeyCode::Left)],
        command: Command::PrevChoice,
        help: "previous",
        footer: None,
    },
    DELETE_CHAR,
    CLEAR_FIELD,
    Binding {
        keys: &[key(KeyCode::Enter)],
        command: Command::Submit,
        help: "create (stays pending)",
        footer: Some(("Enter", "create")),
    },
    CANCEL_FORM,
    QUIT_CTRL_C,
];

/// Keys of the new-size form. Digits and `.` are typed into the size.
pub const SIZE_FORM: &[Binding] = &[
    DELETE_CHAR,
    CLEAR_FIELD,
    Binding {
        keys: &[key(KeyCode::Enter)],
        command: Command::Submit,
        help: "resize",
        footer: Some(("Enter", "resize")),
    },
    CANCEL_FORM,
    QUIT_CTRL_C,
];

/// Keys while typing a signals filter. Other characters are typed into it.
pub const FILTER: &[Binding] = &[
    DELETE_CHAR,
    CLEAR_FIELD,
    Binding {
        keys: &[key(KeyCode::Enter)],
        command: Command::Submit,
        help: "keep the filter",
        footer: Some(("Enter", "keep")),
    },
    Binding {
        keys: &[key(KeyCode::Esc)],
        command: Command::CancelForm,
        help: "clear the filter",
        footer: Some(("Esc", "clear")),
    },
    QUIT_CTRL_C,
];

/// Keys of the trade history view.
pub const HISTORY: &[Binding] = &[
    Binding {
        keys: &[key(KeyCode::Esc), ch('h'), ch('q')],
        command: Command::Close,
        help: "close the history",
        footer: Some(("Esc", "close")),
    },
    Binding {
        keys: &[key(KeyCode::Tab), key(KeyCode::BackTab)],
        command: Command::SwitchFocus,
        help: "switch between the closed trades and the events",
        footer: Some(("Tab", "list")),
    },
    UP,
    DOWN,
    PAGE_UP,
    PAGE_DOWN,
    TOP,
    BOTTOM,
    Binding {
        keys: &[ch('/')],
        command: Command::Filter,
        help: "search the closed trades and the events (Enter searches, Esc clears)",
        footer: Some(("/", "search")),
    },
    QUIT_CTRL_C,
];

/// Keys of the analytics view.
pub const ANALYTICS: &[Binding] = &[
    Binding {
        keys: &[key(KeyCode::Esc), ch('a'), ch('q')],
        command: Command::Close,
        help: "close the analytics",
        footer: Some(("Esc", "close")),
    },
    UP,
    DOWN,
    PAGE_UP,
    PAGE_DOWN,
    TOP,
    BOTTOM,
    QUIT_CTRL_C,
];

/// Keys of the help screen.
pub const HELP: &[Binding] = &[
    Binding {
        keys: &[key(KeyCode::Esc), ch('?'), ch('q')],
        command: Command::Close,
        help: "close the help",
        footer: Some(("Esc", "close help")),
    },
    Binding {
        keys: &[ctrl('c')],
        command: Command::QuitNow,
        help: "quit, from anywhere",
        footer: None,
    },
];

pub fn table(mode: Mode) -> &'static [Binding] {
    match mode {
        Mode::Normal => NORMAL,
        Mode::Popup => POPUP,
        Mode::TradeForm => TRADE_FORM,
        Mode::SizeForm => SIZE_FORM,
        Mode::Help => HELP,
        Mode::Filter => FILTER,
        Mode::History => HISTORY,
        Mode::Analytics => ANALYTICS,
    }
}

fn matches(k: &Key, ev: &KeyEvent) -> bool {
    let ev_ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    if k.ctrl != ev_ctrl {
        return false;
    }
    match (k.code, ev.code) {
        // Shift is part of the character itself ('K'); some terminals also report the modifier.
        (KeyCode::Char(a), KeyCode::Char(b)) => a == b,
        (a, b) => a == b,
    }
}

/// The command a key press means in `mode`. Releases and repeats of other kinds are ignored.
pub fn command_for(mode: Mode, ev: &KeyEvent) -> Option<Command> {
    if ev.kind != KeyEventKind::Press {
        return None;
    }
    table(mode)
        .iter()
        .find(|b| b.keys.iter().any(|k| matches(k, ev)))
        .map(|b| b.command)
}

/// A key as the help screen names it.
pub fn key_name(k: &Key) -> String {
    let base = match k.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Delete => "Delete".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Esc => "Esc".into(),
        other => format!("{other:?}"),
    };
    if k.ctrl {
        format!("Ctrl-{}", base.to_uppercase())
    } else {
        base
    }
}

/// All the keys of a binding, for the help screen: `y, Enter`.
pub fn keys_label(b: &Binding) -> String {
    b.keys.iter().map(key_name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn every_command_of_the_spec_has_a_key() {
        for (code, mods, cmd) in [
            (KeyCode::Tab, KeyModifiers::NONE, Command::SwitchFocus),
            (KeyCode::Up, KeyModifiers::NONE, Command::Up),
            (KeyCode::Char('k'), KeyModifiers::NONE, Command::Up),
            (KeyCode::Down, KeyModifiers::NONE, Command::Down),
            (KeyCode::Char('j'), KeyModifiers::NONE, Command::Down),
            (KeyCode::Char('y'), KeyModifiers::NONE, Command::Confirm),
            (KeyCode::Enter, KeyModifiers::NONE, Command::Confirm),
            (KeyCode::Char('n'), KeyModifiers::NONE, Command::Cancel),
            (KeyCode::Char('x'), KeyModifiers::NONE, Command::Cancel),
            (KeyCode::Delete, KeyModifiers::NONE, Command::Cancel),
            (
                KeyCode::Char('e'),
                KeyModifiers::NONE,
                Command::ToggleEnabled,
            ),
            (KeyCode::Char('K'), KeyModifiers::SHIFT, Command::KillSwitch),
            (KeyCode::Char('K'), KeyModifiers::NONE, Command::KillSwitch),
            (KeyCode::Char('r'), KeyModifiers::NONE, Command::CheckNow),
            (KeyCode::Char('t'), KeyModifiers::NONE, Command::NewTrade),
            (KeyCode::Char('s'), KeyModifiers::NONE, Command::Resize),
            (
                KeyCode::Char('c'),
                KeyModifiers::NONE,
                Command::ClosePosition,
            ),
            (KeyCode::Char('?'), KeyModifiers::SHIFT, Command::Help),
            (KeyCode::Char('q'), KeyModifiers::NONE, Command::Quit),
            (KeyCode::Char('c'), KeyModifiers::CONTROL, Command::QuitNow),
        ] {
            assert_eq!(
                command_for(Mode::Normal, &press(code, mods)),
                Some(cmd),
                "{code:?} {mods:?}"
            );
        }
    }

    #[test]
    fn plain_c_closes_ctrl_c_quits_and_releases_do_nothing() {
        assert_eq!(
            command_for(Mode::Normal, &press(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Command::ClosePosition)
        );
        assert_eq!(
            command_for(
                Mode::TradeForm,
                &press(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Some(Command::QuitNow)
        );
        let mut release = press(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(command_for(Mode::Normal, &release), None);
    }

    #[test]
    fn a_form_leaves_letters_and_digits_to_the_fields() {
        for c in ['0', '9', '.', 'b', 's', 'q', 'y', 'n', 'j', 'k', 't', 'c'] {
            assert_eq!(
                command_for(
                    Mode::TradeForm,
                    &press(KeyCode::Char(c), KeyModifiers::NONE)
                ),
                None,
                "{c}"
            );
        }
        assert_eq!(
            command_for(Mode::TradeForm, &press(KeyCode::Esc, KeyModifiers::NONE)),
            Some(Command::CancelForm)
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_table() {
        for mode in [
            Mode::Normal,
            Mode::Popup,
            Mode::TradeForm,
            Mode::SizeForm,
            Mode::Help,
        ] {
            let keys: Vec<&Key> = table(mode).iter().flat_map(|b| b.keys.iter()).collect();
            for (i, a) in keys.iter().enumerate() {
                for b in &keys[i + 1..] {
                    assert_ne!(a, b, "{mode:?}: {a:?} bound twice");
                }
            }
        }
    }
}
