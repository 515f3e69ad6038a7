//! How slides and lessons look: a slide's layout (which its kind allows) and a lesson's
//! theme with its accent colour (docs/layouts.md).
//!
//! Only names and their rules live here; the board's stylesheet and `slides.js` draw them,
//! the same code on the board, in the editor's preview and in the console.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::lesson::SlideKind;
use super::ValidationError;

/// How a slide's parts are arranged. Left out, a slide looks as slides did before layouts:
/// `text` for text slides, `picture` for image slides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SlideLayout {
    /// The title and the text below it (text slides).
    Text,
    /// A title slide: the title large and centred, the text below as a subtitle.
    Title,
    /// The text in two columns, split at a line of only `---` (else balanced).
    TwoColumns,
    /// One big quote or number, centred; the title small above it.
    Big,
    /// The picture with the title as a caption (image slides).
    Picture,
    /// The picture on the left half, the title and text beside it.
    PictureText,
    /// The picture alone, edge to edge, nothing over it.
    PictureFull,
}

impl SlideLayout {
    const ALL: [(&'static str, SlideLayout, SlideKind); 7] = [
        ("text", SlideLayout::Text, SlideKind::Text),
        ("title", SlideLayout::Title, SlideKind::Text),
        ("two-columns", SlideLayout::TwoColumns, SlideKind::Text),
        ("big", SlideLayout::Big, SlideKind::Text),
        ("picture", SlideLayout::Picture, SlideKind::Image),
        ("picture-text", SlideLayout::PictureText, SlideKind::Image),
        ("picture-full", SlideLayout::PictureFull, SlideKind::Image),
    ];

    /// The name clients send and receive (`two-columns`, …).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, layout, _)| *layout == self)
            .map_or("text", |(name, _, _)| name)
    }

    /// The layouts a slide of `kind` may have, by name (none for videos, questions, timers).
    pub fn names_for(kind: SlideKind) -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|(_, _, k)| *k == kind)
            .map(|(name, _, _)| *name)
            .collect()
    }

    /// `raw` as a layout of a `kind` slide; an empty one is none (the kind's usual look).
    pub(crate) fn parse(
        errors: &mut ValidationError,
        field: &str,
        kind: SlideKind,
        raw: Option<&str>,
    ) -> Option<SlideLayout> {
        let raw = raw.map(str::trim).filter(|raw| !raw.is_empty())?;
        let allowed = Self::names_for(kind);
        let found = Self::ALL
            .iter()
            .find(|(name, _, k)| *name == raw && *k == kind)
            .map(|(_, layout, _)| *layout);
        if found.is_none() {
            let message = if allowed.is_empty() {
                format!(
                    "A {} slide has one layout: leave the layout out.",
                    kind.name()
                )
            } else {
                format!(
                    "A {} slide cannot have the layout {raw:?}; use one of {}.",
                    kind.name(),
                    allowed.join(", ")
                )
            };
            errors.add(field, message);
        }
        found
    }
}

/// A lesson's colours on the board. `light` is the look every lesson had before themes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThemeName {
    Light,
    Dark,
    /// White on black, for rooms with a washed-out projector and for low vision.
    Contrast,
}

impl ThemeName {
    /// The name clients send and receive.
    pub fn name(self) -> &'static str {
        match self {
            ThemeName::Light => "light",
            ThemeName::Dark => "dark",
            ThemeName::Contrast => "contrast",
        }
    }
}

/// The theme a lesson is shown in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Theme {
    pub name: ThemeName,
    /// `#rrggbb` (lowercase): the slides' titles and big text in this colour, made darker
    /// or lighter on the board where needed to keep 4.5:1 against the theme's background
    /// (7:1 in `contrast`). Left out: titles in the text colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub accent: Option<String>,
}

/// A theme as a client sends it, checked by [`Theme::parse`].
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ThemeInput {
    /// `light` (the look of lessons before themes), `dark` or `contrast`.
    #[schema(value_type = ThemeName)]
    pub name: String,
    /// `#rrggbb`; leave out for none.
    #[serde(default)]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub accent: Option<String>,
}

impl Theme {
    /// The theme `input` names, its problems added to `errors` under `theme.name` and
    /// `theme.accent`.
    pub fn parse(errors: &mut ValidationError, input: &ThemeInput) -> Option<Theme> {
        let raw = input.name.trim();
        let name = [ThemeName::Light, ThemeName::Dark, ThemeName::Contrast]
            .into_iter()
            .find(|name| name.name() == raw);
        if name.is_none() {
            errors.add(
                "theme.name",
                format!("Unknown theme {raw:?}; use one of light, dark, contrast."),
            );
        }
        let accent = match input.accent.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(hex) if hex.len() == 7 && hex.starts_with('#') && is_hex(&hex[1..]) => {
                Some(Some(hex.to_ascii_lowercase()))
            }
            Some(_) => {
                errors.add(
                    "theme.accent",
                    "An accent colour is # and six hexadecimal digits, such as #1d5fa8.",
                );
                None
            }
        };
        Some(Theme {
            name: name?,
            accent: accent?,
        })
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_belongs_to_its_kind() {
        let mut errors = ValidationError::default();
        let parse = |errors: &mut ValidationError, kind, raw| {
            SlideLayout::parse(errors, "layout", kind, Some(raw))
        };
        assert_eq!(
            parse(&mut errors, SlideKind::Text, "two-columns"),
            Some(SlideLayout::TwoColumns)
        );
        assert_eq!(
            parse(&mut errors, SlideKind::Image, "picture-text"),
            Some(SlideLayout::PictureText)
        );
        assert_eq!(parse(&mut errors, SlideKind::Text, " "), None);
        assert!(errors.fields.is_empty());
        assert_eq!(parse(&mut errors, SlideKind::Image, "big"), None);
        assert!(errors.fields["layout"].contains("picture, picture-text, picture-full"));
        let mut errors = ValidationError::default();
        assert_eq!(parse(&mut errors, SlideKind::Timer, "text"), None);
        assert!(errors.fields["layout"].contains("leave the layout out"));
    }

    #[test]
    fn a_theme_is_a_known_name_and_an_optional_colour() {
        let theme = |name: &str, accent: Option<&str>| {
            let mut errors = ValidationError::default();
            let input = ThemeInput {
                name: name.into(),
                accent: accent.map(Into::into),
            };
            (Theme::parse(&mut errors, &input), errors)
        };
        let (dark, _) = theme("dark", Some("#FFCC00"));
        assert_eq!(
            dark,
            Some(Theme {
                name: ThemeName::Dark,
                accent: Some("#ffcc00".into())
            })
        );
        assert_eq!(theme("light", Some("")).0.unwrap().accent, None);
        for bad in ["red", "#fc0", "#12345g", "#1234567"] {
            let (parsed, errors) = theme("light", Some(bad));
            assert_eq!(parsed, None, "{bad}");
            assert!(errors.fields.contains_key("theme.accent"), "{bad}");
        }
        let (parsed, errors) = theme("neon", None);
        assert_eq!(parsed, None);
        assert!(errors.fields["theme.name"].contains("light, dark, contrast"));
    }
}
