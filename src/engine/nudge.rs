//! Nudges: text typed into an agent's prompt and submitted. The text is stripped of control
//! characters and escape sequences first (nothing a user or another agent typed may drive the
//! terminal), and the Enter goes separately, after the text has landed: Gas Town's most common
//! failure was a prompt typed but never submitted.

use crate::{Error, Result};
use std::time::Duration;

/// How long after the text the Enter is sent.
pub const ENTER_DELAY: Duration = Duration::from_millis(80);

/// What the engine types to get an agent to start on its hook, naming `exe` (the engine's own
/// `gastown-tui`) by its absolute path: a login shell or a runtime's daemon may run the agent's
/// commands with a PATH of its own, where `gastown-tui` alone is not found.
pub fn prime_prompt(exe: &std::path::Path) -> String {
    format!("Run {} prime and begin work on your hook.", shell_word(exe))
}

/// `path` as one word of a shell command line: as it is when it holds nothing a shell would
/// split or expand, else in single quotes.
pub fn shell_word(path: &std::path::Path) -> String {
    let s = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Strips escape sequences (CSI, OSC, DCS, two-byte escapes) and every control character;
/// line breaks and tabs become spaces; runs of spaces collapse; the ends are trimmed.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~
                Some('[') => {
                    for n in chars.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \)
                Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
                    while let Some(n) = chars.next() {
                        if n == '\u{7}' {
                            break;
                        }
                        if n == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sanitizes and refuses what is left empty.
pub fn checked(text: &str) -> Result<String> {
    let clean = sanitize(text);
    if clean.is_empty() {
        return Err(Error::bad(
            "the nudge text is empty (after removing control characters)",
        ));
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_escape_sequences_never_reach_the_pty() {
        assert_eq!(sanitize("hello"), "hello");
        assert_eq!(sanitize("two\nlines\r\n\tand tab"), "two lines and tab");
        assert_eq!(sanitize("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(sanitize("title\x1b]0;pwned\x07 done"), "title done");
        assert_eq!(sanitize("st\x1b]52;c;aGk=\x1b\\ end"), "st end");
        assert_eq!(
            sanitize("bell\x07 nul\0 del\x7f c1\u{9b}2J"),
            "bell nul del c12J"
        );
        assert_eq!(sanitize("ctrl-c \x03 ctrl-d \x04"), "ctrl-c ctrl-d");
        assert_eq!(sanitize("dangling \x1b"), "dangling");
        assert_eq!(sanitize("ünïcode ✓"), "ünïcode ✓");
        assert!(checked("\x1b[2J\n").is_err());
        assert_eq!(checked(" go ").unwrap(), "go");
    }
}
