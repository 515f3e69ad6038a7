//! The rules of a teacher's lesson library (issue 24): what a folder name may be, what a
//! search may ask, and how a copy of a lesson is titled so it can be told from the original.
//!
//! A folder is a property of the lesson saved with each revision (docs/lesson-library.md):
//! nothing here knows where it is stored.

use super::lesson::TITLE_MAX;
use super::{check_len, check_line, ValidationError};

/// The longest folder name, in characters.
pub const FOLDER_MAX: usize = 60;
/// The longest search, in characters.
pub const QUERY_MAX: usize = 200;
/// The most words a search may have: each is one more scan of the text.
pub const QUERY_WORDS_MAX: usize = 8;

/// A folder name as sent: trimmed; empty means "in no folder". One line of at most
/// [`FOLDER_MAX`] characters; a `/` is an ordinary character (folders do not nest).
pub fn parse_folder(errors: &mut ValidationError, raw: &str) -> Option<String> {
    let folder = raw.trim();
    if folder.is_empty() {
        return None;
    }
    let before = errors.fields.len();
    check_len(errors, "folder", folder, 1, FOLDER_MAX);
    check_line(errors, "folder", folder);
    (errors.fields.len() == before).then(|| folder.to_owned())
}

/// The words of a search, lowercased (a search ignores case) and each once: a lesson matches
/// when its text contains every one of them, in any order. Empty when `raw` has no words.
pub fn parse_query(raw: &str) -> Result<Vec<String>, ValidationError> {
    if raw.chars().count() > QUERY_MAX {
        return Err(ValidationError::single(
            "q",
            format!("Search with at most {QUERY_MAX} characters."),
        ));
    }
    let mut words: Vec<String> = Vec::new();
    for word in raw.split_whitespace().map(str::to_lowercase) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.len() > QUERY_WORDS_MAX {
        return Err(ValidationError::single(
            "q",
            format!("Search with at most {QUERY_WORDS_MAX} words."),
        ));
    }
    Ok(words)
}

/// The title of a copy of a lesson titled `title`: "Title (copy)", else "Title (copy 2)",
/// "Title (copy 3)", …, the first that `taken` says is free. The title is shortened to keep
/// the whole within [`TITLE_MAX`]; after 500 taken names the last one tried is used.
pub fn copy_title(title: &str, taken: impl Fn(&str) -> bool) -> String {
    let named = |n: usize| {
        let suffix = if n == 1 {
            " (copy)".to_owned()
        } else {
            format!(" (copy {n})")
        };
        let room = TITLE_MAX - suffix.chars().count();
        let base: String = title.chars().take(room).collect();
        format!("{}{suffix}", base.trim_end())
    };
    (1..=500)
        .map(named)
        .find(|t| !taken(t))
        .unwrap_or_else(|| named(500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_trimmed_bounded_single_lines() {
        let mut errors = ValidationError::default();
        assert_eq!(
            parse_folder(&mut errors, "  Year 7 / Maths "),
            Some("Year 7 / Maths".into())
        );
        assert_eq!(parse_folder(&mut errors, "   "), None);
        assert!(errors.is_empty());
        assert_eq!(parse_folder(&mut errors, &"x".repeat(FOLDER_MAX + 1)), None);
        assert!(errors.fields.contains_key("folder"));
        let mut errors = ValidationError::default();
        assert_eq!(parse_folder(&mut errors, "a\nb"), None);
        assert!(errors.fields.contains_key("folder"));
    }

    #[test]
    fn a_query_is_its_distinct_lowercased_words_within_bounds() {
        assert_eq!(
            parse_query(" Fractions  PIE fractions ").unwrap(),
            ["fractions", "pie"]
        );
        assert!(parse_query("  ").unwrap().is_empty());
        assert!(
            parse_query(&"a ".repeat(QUERY_WORDS_MAX)).is_ok(),
            "one word, repeated"
        );
        let many: Vec<String> = (0..=QUERY_WORDS_MAX).map(|n| format!("w{n}")).collect();
        assert!(parse_query(&many.join(" ")).is_err());
        assert!(parse_query(&"x".repeat(QUERY_MAX + 1)).is_err());
    }

    #[test]
    fn a_copy_is_titled_apart_and_within_the_title_limit() {
        assert_eq!(copy_title("Pie", |_| false), "Pie (copy)");
        let taken = ["Pie (copy)", "Pie (copy 2)"];
        assert_eq!(copy_title("Pie", |t| taken.contains(&t)), "Pie (copy 3)");
        let long = "é".repeat(TITLE_MAX);
        let copy = copy_title(&long, |_| false);
        assert_eq!(copy.chars().count(), TITLE_MAX);
        assert!(copy.ends_with("é (copy)"));
        assert_eq!(copy_title("Pie", |_| true), "Pie (copy 500)");
    }
}
