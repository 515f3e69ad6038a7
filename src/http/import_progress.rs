//! Following a PDF import page by page over HTTP: with `Accept: application/x-ndjson` an
//! import route answers `200` once the PDF has passed every check made before drawing, then
//! streams one JSON line per page (`{"page":3,"pages":40}`) and a last line with the result or
//! the error in the API's error shape. Without it the route answers as any other. A client
//! that goes away drops the stream, which stops the import before its next page
//! (`pdf_import::Progress`).

use std::convert::Infallible;
use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::watch;

use super::error::ApiError;
use crate::pdf_import::{Pages, PdfImportError, Progress};

/// The media type of the page-by-page answer.
pub const NDJSON: &str = "application/x-ndjson";

/// The largest error body turned into a line: error bodies are a few hundred bytes.
const ERROR_LINE_MAX: usize = 64 << 10;

/// Whether the client asked to follow the import page by page.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(NDJSON))
        })
}

/// What a finished import answers: its plain response and, for a follower, its last line.
pub struct Done {
    pub response: Response,
    pub line: Bytes,
}

/// Runs `import` on its own task and answers it: followed page by page when `follow`, else
/// (or when it ends before drawing starts, refused say) as `done` makes of its result.
pub async fn answer<T, F>(
    follow: bool,
    import: impl FnOnce(Option<Progress>) -> F,
    done: impl FnOnce(T) -> Result<Done, ApiError> + Send + 'static,
) -> Result<Response, ApiError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, PdfImportError>> + Send + 'static,
{
    if !follow {
        let result = import(None).await;
        return Ok(done(result?)?.response);
    }
    let (progress, mut pages) = watch::channel(None);
    let mut task = tokio::spawn(import(Some(progress)));
    // Until the first page is told the import may still be refused: answered as usual.
    // A page told wins over an end at the same moment: a follower then always gets lines.
    let first = tokio::select! {
        biased;
        first = first_page(&mut pages) => first,
        result = &mut task => return Ok(done(joined(result)?)?.response),
    };
    let Some(first) = first else {
        return Ok(done(joined(task.await)?)?.response);
    };
    let lines = stream::unfold(
        Some((pages, task, Some(first), Some(done))),
        |state| async move {
            let (mut pages, mut task, told, done) = state?;
            if let Some(page) = told {
                return Some((Ok(page_line(page)), Some((pages, task, None, done))));
            }
            // Pages first, so that the last page told is sent before the result.
            let next = tokio::select! {
                biased;
                changed = pages.changed() => Ok(changed.ok().and_then(|()| *pages.borrow_and_update())),
                result = &mut task => Err(result),
            };
            let line = match next {
                Ok(Some(page)) => {
                    return Some((Ok(page_line(page)), Some((pages, task, None, done))))
                }
                // The import dropped its end: its result is next.
                Ok(None) => last_line(joined(task.await), done?).await,
                Err(result) => last_line(joined(result), done?).await,
            };
            Some((Ok::<_, Infallible>(line), None))
        },
    );
    let mut response = (StatusCode::OK, Body::from_stream(lines)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    // A proxy that buffers would hold every line until the end.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The first page told, or `None` when the import ended without telling any.
async fn first_page(pages: &mut watch::Receiver<Option<Pages>>) -> Option<Pages> {
    loop {
        pages.changed().await.ok()?;
        if let Some(page) = *pages.borrow_and_update() {
            return Some(page);
        }
    }
}

fn joined<T>(
    result: Result<Result<T, PdfImportError>, tokio::task::JoinError>,
) -> Result<T, ApiError> {
    match result {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::Internal(format!("PDF import task: {e}"))),
    }
}

fn page_line(Pages { page, pages }: Pages) -> Bytes {
    Bytes::from(format!("{{\"page\":{page},\"pages\":{pages}}}\n"))
}

/// The result's line, or the error's body as the line.
async fn last_line<T>(
    result: Result<T, ApiError>,
    done: impl FnOnce(T) -> Result<Done, ApiError>,
) -> Bytes {
    let error = match result.and_then(done) {
        Ok(done) => return [done.line.as_ref(), b"\n"].concat().into(),
        Err(e) => e,
    };
    if let ApiError::Internal(cause) = &error {
        // The stream's status is sent: the request log cannot name the cause.
        tracing::error!(cause, "PDF import failed while followed");
    }
    let body = axum::body::to_bytes(error.into_response().into_body(), ERROR_LINE_MAX)
        .await
        .unwrap_or_default();
    [body.as_ref(), b"\n"].concat().into()
}
