//! How slides look: a slide's layout, which its kind allows (docs/layouts.md).
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
}
