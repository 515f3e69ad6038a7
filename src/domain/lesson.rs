//! Lessons: a title and ordered slides, validated as a whole.
//!
//! A lesson's content is stored as one immutable revision; the store never edits it in place.
//! This module owns the rules a lesson obeys (lengths, kinds, kind-specific fields) and the
//! shapes it is read and written in; it does not know how revisions are kept.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::design::{SlideLayout, Theme, ThemeInput};
use super::{check_len, check_line, ValidationError};

pub const TITLE_MAX: usize = 200;
pub const SLIDES_MAX: usize = 500;
pub const BODY_MAX: usize = 20_000;
pub const NOTES_MAX: usize = 20_000;
pub const ANSWER_MAX: usize = 2_000;
pub const TIMER_SECONDS_MAX: u32 = 86_400;
/// A picture's alternative text: one line, read aloud in place of the picture.
pub const ALT_MAX: usize = 1_000;

/// What a slide shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SlideKind {
    Text,
    Image,
    Video,
    Question,
    Timer,
}

impl SlideKind {
    const ALL: [(&'static str, SlideKind); 5] = [
        ("text", SlideKind::Text),
        ("image", SlideKind::Image),
        ("video", SlideKind::Video),
        ("question", SlideKind::Question),
        ("timer", SlideKind::Timer),
    ];

    /// The name clients send and receive (`text`, `image`, …).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("text", |(name, _)| name)
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(_, k)| *k)
    }
}

/// A validated slide, as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Slide {
    pub id: Uuid,
    pub kind: SlideKind,
    pub title: String,
    /// Markdown shown on the board.
    pub body: String,
    /// Speaker notes: shown to the teacher, never on the board.
    pub notes: String,
    /// SHA-256 (hex) of the uploaded image or video; image and video slides only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// The answer revealed on request; question slides only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Countdown length; timer slides only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 86400)]
    pub seconds: Option<u32>,
    /// How the slide is arranged (text and image slides; `SlideLayout`). Left out, the
    /// kind's usual look, so revisions saved before layouts read as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<SlideLayout>,
    /// What the picture shows, for those who cannot see it (image slides; one line of at
    /// most `ALT_MAX` characters). Left out, pages describe the picture by the slide's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

/// A slide as a client sends it. Every field is optional here so that a missing or wrong
/// field is reported with its path instead of failing the whole request at once.
/// (Its OpenAPI schema, one variant per kind, is written by hand in `http::lessons`.)
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlideInput {
    /// Omit (or send empty) for a new slide: the server assigns one.
    #[serde(default)]
    pub id: Option<String>,
    /// One of `text`, `image`, `video`, `question`, `timer`.
    pub kind: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub media: Option<String>,
    #[serde(default)]
    pub answer: Option<String>,
    /// A JSON number: `60` and `60.0` are the same number to most clients.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Text slides: `text`, `title`, `two-columns`, `big`; image slides: `picture`,
    /// `picture-text`, `picture-full`. Left out or empty: the kind's usual look.
    #[serde(default)]
    pub layout: Option<String>,
    /// Image slides: the picture's alternative text.
    #[serde(default)]
    pub alt: Option<String>,
}

/// The content of one lesson revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonContent {
    pub title: String,
    pub slides: Vec<Slide>,
    /// The folder the teacher filed the lesson in (`domain::library::parse_folder`); saved
    /// with each revision like the title, so filing a lesson is a save like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// The colours the lesson is shown in (`domain::design`); saved with each revision like
    /// the folder. None: the look lessons had before themes (`light`, no accent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
}

impl LessonContent {
    /// Validates a whole lesson, collecting every problem with its path
    /// (`title`, `slides`, `slides[3].answer`, …).
    pub fn parse(title: &str, slides: Vec<SlideInput>) -> Result<Self, ValidationError> {
        Self::parse_whole(title, None, None, slides)
    }

    /// [`LessonContent::parse`] of a lesson filed in `folder` (trimmed; empty is none) and
    /// shown in `theme` (none: the default look).
    pub fn parse_whole(
        title: &str,
        folder: Option<&str>,
        theme: Option<&ThemeInput>,
        slides: Vec<SlideInput>,
    ) -> Result<Self, ValidationError> {
        let mut errors = ValidationError::default();
        let folder = folder.and_then(|raw| super::library::parse_folder(&mut errors, raw));
        let theme = theme.and_then(|input| Theme::parse(&mut errors, input));
        let title = title.trim().to_owned();
        check_len(&mut errors, "title", &title, 1, TITLE_MAX);
        check_line(&mut errors, "title", &title);
        if slides.len() > SLIDES_MAX {
            errors.add(
                "slides",
                format!(
                    "A lesson has at most {SLIDES_MAX} slides (this has {}).",
                    slides.len()
                ),
            );
            return Err(errors);
        }
        let mut seen = std::collections::HashSet::new();
        let parsed: Vec<Slide> = slides
            .into_iter()
            .enumerate()
            .filter_map(|(i, input)| {
                let slide = parse_slide(&mut errors, &format!("slides[{i}]"), input, Rules::Save)?;
                if !seen.insert(slide.id) {
                    errors.add(&format!("slides[{i}].id"), "Two slides have the same id.");
                }
                Some(slide)
            })
            .collect();
        errors.into_result(Self {
            title,
            slides: parsed,
            folder,
            theme,
        })
    }

    /// A slide being written, for the editor's preview: what it still lacks to be saved (its
    /// picture or video, a question's answer, a timer's seconds) is left out instead of
    /// refused; whatever it has is checked as when saving (errors name `slides[0]`).
    pub fn draft_slide(input: SlideInput) -> Result<Slide, ValidationError> {
        let mut errors = ValidationError::default();
        let slide = parse_slide(&mut errors, "slides[0]", input, Rules::Draft);
        errors.into_result(())?;
        Ok(slide.expect("no errors, so a slide"))
    }

    /// Bytes a revision of this content takes in the store (its title and slides as JSON),
    /// which quotas count.
    pub fn stored_bytes(&self) -> usize {
        self.title.len() + serde_json::to_vec(&self.slides).map_or(0, |json| json.len())
    }

    /// The key lessons are sorted by when listed by title: case-insensitive, computed here so
    /// that every store backend sorts identically.
    pub fn title_key(&self) -> String {
        self.title.to_lowercase()
    }

    /// What a search looks in: the title and every text of every slide (titles, bodies,
    /// notes, answers), lowercased here so that every store backend ignores case alike. A
    /// line between fields keeps a word from being found across two of them.
    pub fn search_text(&self) -> String {
        let mut text = self.title.to_lowercase();
        for slide in &self.slides {
            let fields = [&slide.title, &slide.body, &slide.notes];
            for field in fields.into_iter().chain(&slide.answer) {
                if !field.is_empty() {
                    text.push('\n');
                    text.push_str(&field.to_lowercase());
                }
            }
        }
        text
    }
}

/// Whether a slide must be complete ([`Rules::Save`]) or may still lack what its kind needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    Save,
    Draft,
}

fn parse_slide(
    errors: &mut ValidationError,
    path: &str,
    input: SlideInput,
    rules: Rules,
) -> Option<Slide> {
    let draft = rules == Rules::Draft;
    let field = |name: &str| format!("{path}.{name}");
    let Some(kind) = SlideKind::parse(&input.kind) else {
        errors.add(
            &field("kind"),
            format!(
                "Unknown slide kind {:?}; use one of text, image, video, question, timer.",
                input.kind
            ),
        );
        return None;
    };
    let title = input.title.unwrap_or_default().trim().to_owned();
    let body = input.body.unwrap_or_default();
    let notes = input.notes.unwrap_or_default();
    let before = errors.fields.len();
    check_len(errors, &field("title"), &title, 0, TITLE_MAX);
    check_line(errors, &field("title"), &title);
    check_len(errors, &field("body"), &body, 0, BODY_MAX);
    check_len(errors, &field("notes"), &notes, 0, NOTES_MAX);

    // Fields of other kinds are dropped: an editor that switches a slide's kind may still
    // carry them, and they would otherwise resurface if the kind is switched back.
    let (mut media, mut answer, mut seconds, mut alt) = (None, None, None, None);
    if kind == SlideKind::Image {
        let text = input.alt.as_deref().unwrap_or_default().trim();
        check_len(errors, &field("alt"), text, 0, ALT_MAX);
        check_line(errors, &field("alt"), text);
        alt = (!text.is_empty()).then(|| text.to_owned());
    }
    match kind {
        SlideKind::Image | SlideKind::Video => match input.media.as_deref().map(str::trim) {
            None | Some("") if draft => {}
            None | Some("") => {
                errors.add(&field("media"), "Choose the image or video for this slide.")
            }
            Some(hash) if is_sha256_hex(hash) => media = Some(hash.to_ascii_lowercase()),
            Some(_) => errors.add(
                &field("media"),
                "A media reference is the 64-character SHA-256 of an uploaded file.",
            ),
        },
        SlideKind::Question => {
            let a = input.answer.unwrap_or_default();
            check_len(
                errors,
                &field("answer"),
                a.trim(),
                usize::from(!draft),
                ANSWER_MAX,
            );
            answer = (!a.trim().is_empty() || !draft).then_some(a);
        }
        SlideKind::Timer => match input.seconds {
            Some(s) if s.fract() == 0.0 && (1.0..=f64::from(TIMER_SECONDS_MAX)).contains(&s) => {
                // Whole and within 1..=TIMER_SECONDS_MAX, so the cast is exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let whole = s as u32;
                seconds = Some(whole)
            }
            Some(_) => errors.add(
                &field("seconds"),
                format!(
                    "A timer runs for a whole number of seconds from 1 to {TIMER_SECONDS_MAX}."
                ),
            ),
            None if draft => {}
            None => errors.add(&field("seconds"), "Set how many seconds the timer runs."),
        },
        SlideKind::Text => {}
    }
    let layout = SlideLayout::parse(errors, &field("layout"), kind, input.layout.as_deref());
    let id = match input.id.as_deref().map(str::trim) {
        None | Some("") => Some(Uuid::now_v7()),
        Some(raw) => Uuid::parse_str(raw)
            .map_err(|_| {
                errors.add(
                    &field("id"),
                    "A slide id is a UUID; omit it for a new slide.",
                )
            })
            .ok(),
    };
    (errors.fields.len() == before).then(|| Slide {
        id: id.unwrap_or_default(),
        kind,
        title,
        body,
        notes,
        media,
        answer,
        seconds,
        layout,
        alt,
    })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slide(kind: &str) -> SlideInput {
        SlideInput {
            kind: kind.into(),
            ..Default::default()
        }
    }

    #[test]
    fn titles_are_one_line_without_control_characters() {
        for bad in [
            "Line\nbreak",
            "Bell\u{7}",
            "Esc\u{1b}[31m",
            "\u{202e}txt.exe",
        ] {
            let errors = LessonContent::parse(
                bad,
                vec![SlideInput {
                    title: Some(bad.into()),
                    ..slide("text")
                }],
            )
            .unwrap_err();
            assert!(errors.fields.contains_key("title"), "{bad:?}");
            assert!(errors.fields.contains_key("slides[0].title"), "{bad:?}");
        }
        let fine = "Fractions — ½ + ¼, «vraag» 你好";
        assert!(LessonContent::parse(fine, vec![slide("text")]).is_ok());
    }

    #[test]
    fn a_draft_slide_lacks_what_it_has_not_yet_but_what_it_has_is_checked() {
        for kind in ["image", "video", "question", "timer"] {
            let whole = LessonContent::parse("Lesson", vec![slide(kind)]);
            assert!(whole.is_err(), "{kind} cannot be saved without it");
            let draft = LessonContent::draft_slide(slide(kind)).unwrap();
            assert_eq!(
                (draft.media, draft.answer, draft.seconds),
                (None, None, None)
            );
        }
        let long = SlideInput {
            title: Some("x".repeat(TITLE_MAX + 1)),
            ..slide("question")
        };
        let errors = LessonContent::draft_slide(long).unwrap_err();
        assert!(errors.fields.contains_key("slides[0].title"));
        let timer = SlideInput {
            seconds: Some(0.5),
            ..slide("timer")
        };
        assert!(LessonContent::draft_slide(timer).is_err());
    }

    #[test]
    fn a_valid_lesson_gets_ids_for_new_slides_and_keeps_given_ones() {
        let keep = Uuid::now_v7();
        let lesson = LessonContent::parse(
            "  Fractions ",
            vec![
                SlideInput {
                    id: Some(keep.to_string()),
                    ..slide("text")
                },
                SlideInput {
                    answer: Some("3/4".into()),
                    ..slide("question")
                },
                SlideInput {
                    seconds: Some(60.0),
                    ..slide("timer")
                },
            ],
        )
        .unwrap();
        assert_eq!(lesson.title, "Fractions");
        assert_eq!(lesson.slides[0].id, keep);
        assert_eq!(lesson.slides[1].answer.as_deref(), Some("3/4"));
        assert_eq!(lesson.slides[2].seconds, Some(60));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let err = LessonContent::parse(
            "",
            vec![
                slide("poem"),
                slide("question"),
                SlideInput {
                    seconds: Some(0.5),
                    ..slide("timer")
                },
                SlideInput {
                    media: Some("abc".into()),
                    ..slide("image")
                },
            ],
        )
        .unwrap_err();
        let keys: Vec<_> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "slides[0].kind",
                "slides[1].answer",
                "slides[2].seconds",
                "slides[3].media",
                "title"
            ]
        );
    }

    #[test]
    fn fields_of_another_kind_are_dropped() {
        let lesson = LessonContent::parse(
            "T",
            vec![SlideInput {
                answer: Some("x".into()),
                seconds: Some(5.0),
                ..slide("text")
            }],
        )
        .unwrap();
        assert_eq!(lesson.slides[0].answer, None);
        assert_eq!(lesson.slides[0].seconds, None);
    }

    #[test]
    fn duplicate_slide_ids_are_refused() {
        let id = Some(Uuid::now_v7().to_string());
        let err = LessonContent::parse(
            "T",
            vec![
                SlideInput {
                    id: id.clone(),
                    ..slide("text")
                },
                SlideInput {
                    id,
                    ..slide("text")
                },
            ],
        )
        .unwrap_err();
        assert!(err.fields.contains_key("slides[1].id"));
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let title = "é".repeat(TITLE_MAX);
        assert!(LessonContent::parse(&title, vec![]).is_ok());
        assert!(LessonContent::parse(&format!("{title}é"), vec![]).is_err());
    }
}
