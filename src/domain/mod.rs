//! Validated types and pure rules: accounts, lessons and slides, the hybrid logical clock.
//!
//! Nothing here knows HTTP, SQL or sockets; everything here can be unit tested on its own.
//! Values are parsed at the edge (`LessonInput::parse`, `Email::parse`, …) so that the rest of
//! the program never holds an invalid one.

pub mod account;
pub mod board;
pub mod design;
pub mod hlc;
pub mod lesson;
pub mod library;
pub mod markdown;
pub mod media;
pub mod node;
pub mod pairing_link;

use std::collections::BTreeMap;

/// How deeply any JSON we accept may nest. Lessons need 3 levels, protocol messages 4;
/// serde skips unknown fields without a depth limit, so a deeper document is refused before
/// it is parsed.
pub const JSON_DEPTH_MAX: usize = 32;

/// The largest whole number every JSON client holds exactly (JavaScript's
/// `Number.MAX_SAFE_INTEGER`): numbers a client sends are refused above it, not rounded.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Whether `json` nests arrays and objects no deeper than `max`. Counts brackets outside
/// strings; it does not validate (the parser does that after).
pub fn json_depth_within(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Field-by-field reasons why an input was refused, keyed by a path such as `slides[2].title`.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("the input is not valid: {fields:?}")]
pub struct ValidationError {
    pub fields: BTreeMap<String, String>,
}

impl ValidationError {
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(field, message);
        e
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, the collected errors otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// Checks the length of a free-text field in characters (not bytes: teachers write in any
/// language), recording an error under `field` when it is out of range.
pub(crate) fn check_len(
    errors: &mut ValidationError,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) {
    let n = value.chars().count();
    if n < min {
        if min == 1 {
            errors.add(field, "This field must not be empty.");
        } else {
            errors.add(field, format!("Use at least {min} characters."));
        }
    } else if n > max {
        errors.add(
            field,
            format!("Use at most {max} characters (this has {n})."),
        );
    }
}

/// A title or name is one line: shown in corners and lists, where a control character
/// (a line break, a bell, a direction override) would only garble it.
pub(crate) fn check_line(errors: &mut ValidationError, field: &str, value: &str) {
    if value.chars().any(garbling) {
        errors.add(
            field,
            "Use one line of text, without tabs, line breaks, control characters or \
             direction overrides.",
        );
    }
}

/// A character a one-line field refuses: it breaks the line or garbles the text around it.
fn garbling(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` made a line [`check_line`] takes, of at most `max` characters: what breaks or
/// garbles a line becomes a space, runs of spaces one. For text from outside (a PDF's title).
pub fn one_line(text: &str, max: usize) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if garbling(c) { ' ' } else { c })
        .collect();
    let line = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars()
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_makes_any_text_a_line_check_line_takes() {
        let made = one_line("  Cells\n\tand \u{202e}tissues\u{0}  ", 100);
        assert_eq!(made, "Cells and tissues");
        let mut errors = ValidationError::default();
        check_line(&mut errors, "title", &made);
        assert!(errors.fields.is_empty());
        assert_eq!(one_line("abc def", 4), "abc");
    }

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert!(json_depth_within(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(!json_depth_within(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(json_depth_within(br#"{"a": "[[[[\"[[["}"#, 1));
        assert!(!json_depth_within(
            "[".repeat(100_000).as_bytes(),
            JSON_DEPTH_MAX
        ));
    }
}
