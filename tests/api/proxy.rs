//! A proxy like those in many schools: it passes plain HTTP through (streaming answers, so
//! Server-Sent Events work) but refuses every WebSocket upgrade. Loopback only.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

pub struct BlockingProxy {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BlockingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(upstream: &str) -> BlockingProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.to_owned();
    let client = reqwest::Client::new();
    let app = axum::Router::new()
        .fallback(move |req: Request| forward(client.clone(), upstream.clone(), req));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    BlockingProxy { base, task }
}

async fn forward(client: reqwest::Client, upstream: String, req: Request) -> Response {
    if req.headers().contains_key(header::UPGRADE) {
        return (
            StatusCode::FORBIDDEN,
            "WebSockets are blocked by the school proxy",
        )
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = client
        .request(parts.method, format!("{upstream}{path}"))
        .body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONNECTION && name != header::CONTENT_LENGTH {
            out = out.header(name, value);
        }
    }
    let Ok(res) = out.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::builder().status(res.status());
    for (name, value) in res.headers() {
        if name != header::CONNECTION
            && name != header::TRANSFER_ENCODING
            && name != header::CONTENT_LENGTH
        {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(res.bytes_stream()))
        .unwrap()
}
