//! The mail classcast sends, in English and Dutch, as plain text and HTML. A mail is
//! written whole when it is queued, so the node that sends it needs nothing else.

/// A language mail is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    English,
    Dutch,
}

impl Language {
    /// The first of `tags` (a language code such as `nl`, or an `Accept-Language` header's
    /// value, most wanted first) that mail is written in; English otherwise.
    pub fn pick<'a>(tags: impl IntoIterator<Item = &'a str>) -> Self {
        for tag in tags.into_iter().flat_map(|t| t.split(',')) {
            let base = tag.split(';').next().unwrap_or("").trim();
            let base = base.split('-').next().unwrap_or("").to_ascii_lowercase();
            match base.as_str() {
                "en" => return Language::English,
                "nl" => return Language::Dutch,
                _ => {}
            }
        }
        Language::English
    }
}

/// A mail's subject and bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a mail says, each in a paragraph; `link` is the one button.
struct Content<'a> {
    subject: &'a str,
    greeting: String,
    before: Vec<String>,
    link: Option<(&'a str, &'a str)>,
    after: Vec<String>,
}

impl Content<'_> {
    fn message(self) -> Message {
        let mut text = format!("{}\n\n", self.greeting);
        let mut html = format!(
            "<!doctype html><html><body style=\"font-family: sans-serif; line-height: 1.5\">\
             <p>{}</p>",
            escape(&self.greeting)
        );
        for paragraph in &self.before {
            text.push_str(&format!("{paragraph}\n\n"));
            html.push_str(&format!("<p>{}</p>", escape(paragraph)));
        }
        if let Some((label, url)) = self.link {
            text.push_str(&format!("{url}\n\n"));
            html.push_str(&format!(
                "<p><a href=\"{url}\" style=\"display: inline-block; padding: 0.6em 1.2em; \
                 background: #1d4ed8; color: #fff; text-decoration: none; border-radius: 6px\">\
                 {label}</a></p><p style=\"font-size: 0.9em\">{url}</p>",
                url = escape(url),
                label = escape(label)
            ));
        }
        for paragraph in &self.after {
            text.push_str(&format!("{paragraph}\n\n"));
            html.push_str(&format!("<p>{}</p>", escape(paragraph)));
        }
        text.push_str("-- \nclasscast\n");
        html.push_str("<p style=\"color: #555\">classcast</p></body></html>");
        Message {
            subject: self.subject.to_owned(),
            text,
            html,
        }
    }
}

/// The mail with a link to set a new password, valid for `minutes`.
pub fn password_reset(lang: Language, name: &str, link: &str, minutes: u64) -> Message {
    match lang {
        Language::English => Content {
            subject: "Set a new classcast password",
            greeting: format!("Hello {name},"),
            before: vec![
                "Someone (we hope you) asked to set a new password for your classcast account. \
                 Choose one with the link below."
                    .into(),
            ],
            link: Some(("Set a new password", link)),
            after: vec![
                format!(
                    "The link works once, for {minutes} minutes. Setting a new password signs \
                     you out everywhere."
                ),
                "Did you not ask for this? Then ignore this mail: your password stays as it is."
                    .into(),
            ],
        },
        Language::Dutch => Content {
            subject: "Een nieuw wachtwoord voor classcast",
            greeting: format!("Hallo {name},"),
            before: vec![
                "Iemand (hopelijk jij) vroeg om een nieuw wachtwoord voor je classcast-account. \
                 Kies er een met de link hieronder."
                    .into(),
            ],
            link: Some(("Nieuw wachtwoord kiezen", link)),
            after: vec![
                format!(
                    "De link werkt één keer, {minutes} minuten lang. Met een nieuw wachtwoord \
                     word je overal afgemeld."
                ),
                "Heb je hier niet om gevraagd? Negeer deze mail dan: je wachtwoord blijft zoals \
                 het is."
                    .into(),
            ],
        },
    }
    .message()
}

/// The mail with a link to confirm the address of a new account, valid for `days`.
pub fn confirm_address(lang: Language, name: &str, link: &str, days: u64) -> Message {
    match lang {
        Language::English => Content {
            subject: "Confirm your address for classcast",
            greeting: format!("Hello {name},"),
            before: vec![
                "Welcome to classcast. Confirm that this address is yours and your account is \
                 ready:"
                    .into(),
            ],
            link: Some(("Confirm my address", link)),
            after: vec![
                format!("The link works once, for {days} days."),
                "Did you not create an account? Then ignore this mail; the account is removed \
                 if nobody confirms it."
                    .into(),
            ],
        },
        Language::Dutch => Content {
            subject: "Bevestig je e-mailadres voor classcast",
            greeting: format!("Hallo {name},"),
            before: vec![
                "Welkom bij classcast. Bevestig dat dit adres van jou is en je account is klaar:"
                    .into(),
            ],
            link: Some(("Mijn adres bevestigen", link)),
            after: vec![
                format!("De link werkt één keer, {days} dagen lang."),
                "Heb je geen account aangemaakt? Negeer deze mail dan; het account verdwijnt als \
                 niemand het bevestigt."
                    .into(),
            ],
        },
    }
    .message()
}

/// The mail to the owner of an address someone tried to register again: it tells the
/// owner, not the person registering, that the address has an account.
pub fn already_registered(lang: Language, name: &str, sign_in: &str) -> Message {
    match lang {
        Language::English => Content {
            subject: "Your classcast account",
            greeting: format!("Hello {name},"),
            before: vec![
                "Someone tried to create a classcast account with this address, but it has one \
                 already: yours. Sign in here, or use \u{201c}Forgot your password?\u{201d} there:"
                    .into(),
            ],
            link: Some(("Sign in", sign_in)),
            after: vec!["Was it not you? Then you need not do anything.".into()],
        },
        Language::Dutch => Content {
            subject: "Je classcast-account",
            greeting: format!("Hallo {name},"),
            before: vec![
                "Iemand probeerde een classcast-account te maken met dit adres, maar het heeft er \
                 al een: het jouwe. Meld je hier aan, of kies daar \u{201c}Wachtwoord \
                 vergeten?\u{201d}:"
                    .into(),
            ],
            link: Some(("Aanmelden", sign_in)),
            after: vec!["Was jij het niet? Dan hoef je niets te doen.".into()],
        },
    }
    .message()
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_comes_from_the_first_known_tag() {
        assert_eq!(Language::pick(["nl-BE,en;q=0.8"]), Language::Dutch);
        assert_eq!(Language::pick(["fr-FR, nl;q=0.5"]), Language::Dutch);
        assert_eq!(Language::pick(["de"]), Language::English);
        assert_eq!(Language::pick([]), Language::English);
    }

    #[test]
    fn names_cannot_add_markup_to_the_html() {
        let m = password_reset(Language::English, "<b>Eve</b>", "https://x/y#reset=a&b", 30);
        assert!(m.html.contains("Hello &lt;b&gt;Eve&lt;/b&gt;,"));
        assert!(m.html.contains("href=\"https://x/y#reset=a&amp;b\""));
        assert!(m.text.contains("https://x/y#reset=a&b\n"));
        assert!(m.text.contains("30 minutes"));
    }

    #[test]
    fn every_mail_is_written_in_dutch_too() {
        let nl = confirm_address(Language::Dutch, "Anna", "https://x/login#confirm=t", 7);
        assert_eq!(nl.subject, "Bevestig je e-mailadres voor classcast");
        assert!(nl.text.contains("7 dagen"));
        let nl = already_registered(Language::Dutch, "Anna", "https://x/login");
        assert!(nl.html.contains("Aanmelden"));
    }
}
