//! Slides over HTTP: the editor's preview of a slide as the board will show it, and the
//! OpenAPI schema of a slide as clients send it (one variant per kind).

use serde::Serialize;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json};
use super::AppState;
use crate::domain::board::SlideView;
use crate::domain::design::SlideLayout;
use crate::domain::lesson::{LessonContent, SlideInput, SlideKind};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview_slide))
}

/// A slide as the board shows it.
#[derive(Serialize, ToSchema)]
pub struct SlidePreview {
    kind: SlideKind,
    title: String,
    /// The body rendered from Markdown and sanitised, as the board receives it.
    html: String,
    media: Option<String>,
    seconds: Option<u32>,
    /// A question's answer, as the board shows it once revealed.
    answer: Option<String>,
    /// Left out for the kind's usual look.
    #[serde(skip_serializing_if = "Option::is_none")]
    layout: Option<SlideLayout>,
    /// An image slide's alternative text, left out when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    alt: Option<String>,
}

/// How a slide will look on the board, rendered as the board's is (the editor's preview).
/// Nothing is stored.
#[utoipa::path(post, path = "/api/slides/preview", tag = "lessons", security(("bearer" = [])),
    request_body = SlideInput,
    responses(
        (status = 200, description = "The slide as the board shows it", body = SlidePreview),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "What the slide has is not valid (what it still lacks, a file, an answer or a timer's seconds, is left out of the preview instead)", body = ErrorBody),
    ))]
async fn preview_slide(
    Auth(_): Auth,
    Json(slide): Json<SlideInput>,
) -> Result<axum::Json<SlidePreview>, ApiError> {
    let view = SlideView::of(&LessonContent::draft_slide(slide)?, true);
    Ok(axum::Json(SlidePreview {
        kind: view.kind,
        title: view.title,
        html: view.html,
        media: view.media,
        seconds: view.seconds,
        answer: view.answer,
        layout: view.layout,
        alt: view.alt,
    }))
}

/// One variant per slide kind, so that the document says which fields each kind needs.
/// Fields of other kinds are accepted and dropped, so every variant lists them all.
impl utoipa::PartialSchema for SlideInput {
    fn schema() -> RefOr<Schema> {
        use crate::domain::lesson::{
            ALT_MAX, ANSWER_MAX, BODY_MAX, NOTES_MAX, TIMER_SECONDS_MAX, TITLE_MAX,
        };
        // Optional fields may also be sent as null, which means absent.
        let optional = |t: Type| SchemaType::from_iter([t, Type::Null]);
        let text = |max: usize| {
            ObjectBuilder::new()
                .schema_type(optional(Type::String))
                .max_length(Some(max))
        };
        let variant = |kind: &str, description: &str| {
            ObjectBuilder::new()
                .description(Some(description))
                .property(
                    "id",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::String))
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                        .description(Some("Omit for a new slide; the server assigns one.")),
                )
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind])),
                )
                .required("kind")
                .property("title", text(TITLE_MAX))
                .property(
                    "body",
                    text(BODY_MAX).description(Some("Markdown shown on the board.")),
                )
                .property(
                    "notes",
                    text(NOTES_MAX).description(Some("Speaker notes, never shown on the board.")),
                )
                .property(
                    "media",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::String))
                        .description(Some("Image and video slides only.")),
                )
                .property(
                    "answer",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::String))
                        .description(Some("Question slides only.")),
                )
                .property(
                    "seconds",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::Number))
                        .description(Some("Timer slides only.")),
                )
        };
        // Each kind lists the layouts it takes; the others have none.
        let layouts = |kind: SlideKind| {
            let names = SlideLayout::names_for(kind);
            if names.is_empty() {
                return ObjectBuilder::new()
                    .schema_type(Type::Null)
                    .description(Some("This kind has one layout: leave `layout` out."));
            }
            let values = names.into_iter().map(serde_json::Value::from);
            ObjectBuilder::new()
                .schema_type(optional(Type::String))
                .enum_values(Some(values.chain([serde_json::Value::Null])))
                .description(Some(
                    "How the slide is arranged; left out, the first listed (the kind's usual look).",
                ))
        };
        let media = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9a-fA-F]{64}$"))
                .description(Some("SHA-256 (hex) of the uploaded file."))
        };
        OneOfBuilder::new()
            .item(
                variant("text", "Text: a title and Markdown.")
                    .property("layout", layouts(SlideKind::Text)),
            )
            .item(
                variant("image", "An image.")
                    .property("media", media())
                    .property("layout", layouts(SlideKind::Image))
                    .property(
                        "alt",
                        text(ALT_MAX).description(Some(
                            "What the picture shows, one line, for screen readers; left out, its title.",
                        )),
                    )
                    .required("media"),
            )
            .item(
                variant("video", "A video.")
                    .property("media", media())
                    .property("layout", layouts(SlideKind::Video))
                    .required("media"),
            )
            .item(
                variant("question", "A question whose answer the teacher reveals.")
                    .property("layout", layouts(SlideKind::Question))
                    .property(
                        "answer",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .max_length(Some(ANSWER_MAX))
                            .pattern(Some("\\S")),
                    )
                    .required("answer"),
            )
            .item(
                variant("timer", "A countdown.")
                    .property("layout", layouts(SlideKind::Timer))
                    .property(
                        "seconds",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1))
                            .maximum(Some(TIMER_SECONDS_MAX)),
                    )
                    .required("seconds"),
            )
            .into()
    }
}

impl ToSchema for SlideInput {}
