//! Account inputs: e-mail addresses, display names and passwords, with the rules they obey.
//!
//! E-mail uniqueness is *not* a rule here or a constraint in the store: under multi-master
//! replication it is resolved when reading (the earliest registration owns an address).

use super::{check_len, check_line, ValidationError};

pub const NAME_MAX: usize = 100;
pub const PASSWORD_MIN: usize = 8;
/// Long passphrases are welcome, but an unbounded one would let a client make us hash megabytes.
pub const PASSWORD_MAX: usize = 256;
const EMAIL_MAX: usize = 254;

/// An e-mail address as typed, plus its normalised form used for look-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let display = raw.trim();
        if display.is_empty() {
            return Err("Enter your e-mail address.".into());
        }
        if display.chars().count() > EMAIL_MAX {
            return Err(format!(
                "An e-mail address has at most {EMAIL_MAX} characters."
            ));
        }
        if display.chars().any(is_invisible) {
            return Err(
                "The e-mail address contains an invisible character; type it again.".into(),
            );
        }
        let valid = match display.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !display.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if !valid {
            return Err("This does not look like an e-mail address (name@school.org).".into());
        }
        // Look-alikes written with other code points (the Kelvin sign for K, full-width
        // letters) are the same address: compatibility-normalised, then lower case.
        let normalized = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc()
            .normalize(display)
            .to_lowercase();
        Ok(Self {
            display: display.to_owned(),
            normalized,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// An address no one has, for checking a password when the typed address is invalid.
    fn placeholder() -> Self {
        Self {
            display: String::new(),
            normalized: String::new(),
        }
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    pub fn domain(&self) -> &str {
        self.normalized.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// Characters that show nothing: zero-width spaces and joiners, direction marks, the soft
/// hyphen, variation selectors, the byte-order mark, tags. An address containing one looks
/// like another account's.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A new account's fields, validated together so the client sees every problem at once.
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: Email,
    pub name: String,
    pub password: String,
}

impl Registration {
    pub fn parse(email: &str, name: &str, password: &str) -> Result<Self, ValidationError> {
        let mut errors = ValidationError::default();
        let email = Email::parse(email).map_err(|m| errors.add("email", m)).ok();
        let name = parse_name(name).map_err(|m| errors.add("name", m)).ok();
        let checked = match &email {
            Some(email) => check_password(password, email),
            None => check_password(password, &Email::placeholder()),
        };
        if let Err(m) = checked {
            errors.add("password", m);
        }
        match (email, name) {
            (Some(email), Some(name)) if errors.is_empty() => Ok(Self {
                email,
                name,
                password: password.to_owned(),
            }),
            _ => Err(errors),
        }
    }
}

pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let mut errors = ValidationError::default();
    check_len(&mut errors, "name", name, 1, NAME_MAX);
    check_line(&mut errors, "name", name);
    match errors.fields.remove("name") {
        Some(message) => Err(message),
        None => Ok(name.to_owned()),
    }
}

/// Passwords nobody should use, one a line (lower case; `#` starts a comment line).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// The rules a new password obeys, for the account with address `email`.
pub fn check_password(password: &str, email: &Email) -> Result<(), String> {
    let n = password.chars().count();
    let lower = password.trim().to_lowercase();
    let local_part = email.normalized().rsplit_once('@').map_or("", |(l, _)| l);
    if n < PASSWORD_MIN {
        Err(format!("Use at least {PASSWORD_MIN} characters."))
    } else if n > PASSWORD_MAX {
        Err(format!("Use at most {PASSWORD_MAX} characters."))
    } else if password.chars().any(char::is_control) {
        Err("A password cannot contain control characters (tabs, line breaks, NUL).".into())
    } else if lower.chars().count() < PASSWORD_MIN {
        Err(format!(
            "Use at least {PASSWORD_MIN} characters besides spaces."
        ))
    } else if lower == email.normalized() || lower == local_part {
        Err("Do not use your e-mail address as your password.".into())
    } else if COMMON_PASSWORDS
        .lines()
        .any(|common| !common.starts_with('#') && common == lower)
    {
        Err("This password is one of the most common ones; choose another.".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_normalised_for_lookup() {
        let e = Email::parse("  Ann.Smith@School.ORG ").unwrap();
        assert_eq!(e.as_str(), "Ann.Smith@School.ORG");
        assert_eq!(e.normalized(), "ann.smith@school.org");
        assert_eq!(e.domain(), "school.org");
    }

    #[test]
    fn look_alike_addresses_are_one_address_and_invisible_characters_are_refused() {
        let kelvin = Email::parse("\u{212A}ate@school.org").unwrap();
        assert_eq!(kelvin.normalized(), "kate@school.org");
        let wide = Email::parse("\u{FF4B}ate@school.org").unwrap();
        assert_eq!(wide.normalized(), "kate@school.org");
        for hidden in [
            "kate\u{200B}@school.org",
            "\u{FEFF}kate@school.org",
            "ka\u{00AD}te@school.org",
        ] {
            assert!(Email::parse(hidden).is_err(), "{hidden:?} was accepted");
        }
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "a@b",
            "@school.org",
            "a b@school.org",
            "a@.org",
            "a@org.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let email = Email::parse("Kate.Smith@School.org").unwrap();
        for weak in [
            "12345678",
            "password",
            "PassWord1",
            "        ",
            "\0\0\0\0\0\0\0\0",
            "line\nbreak here",
            "kate.smith@school.org",
            "KATE.SMITH",
            "iloveyou",
        ] {
            assert!(
                check_password(weak, &email).is_err(),
                "{weak:?} was accepted"
            );
        }
        assert!(check_password("correct horse battery", &email).is_ok());
        assert!(check_password("  kate.smith@school.org  x", &email).is_ok());
    }

    #[test]
    fn registration_reports_every_bad_field() {
        let err = Registration::parse("nope", " ", "short").unwrap_err();
        let keys: Vec<_> = err.fields.keys().cloned().collect();
        assert_eq!(keys, ["email", "name", "password"]);
    }
}
