//! Connections as a resource: slow or idle clients are cut off, one address cannot hold
//! every connection, and a request dribbled too slowly is answered 408.

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::*;
use crate::live::PATIENCE;

/// A raw TCP connection to the app from `from` (any of 127.0.0.0/8).
async fn connect_from(app: &TestApp, from: &str) -> TcpStream {
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Everything the server sends until it closes the connection (within the deadline).
async fn until_closed(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn_with(|c| c.header_timeout_secs = Some(1)).await;
    let mut tcp = connect_from(&app, "127.0.0.1").await;
    tcp.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = until_closed(&mut tcp).await;
    assert!(!answer.contains("200"), "{answer}");
}

#[tokio::test]
async fn a_body_dribbled_too_slowly_is_answered_408() {
    let app = spawn_with(|c| c.request_deadline_secs = Some(1)).await;
    let mut tcp = connect_from(&app, "127.0.0.1").await;
    tcp.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .unwrap();
    let answer = until_closed(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let app = spawn_with(|c| c.max_connections_per_address = Some(5)).await;
    // Five connections from one address that never send a request...
    let mut idle = Vec::new();
    for _ in 0..5 {
        let mut tcp = connect_from(&app, "127.0.0.2").await;
        tcp.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        idle.push(tcp);
    }
    // ...and a sixth from it is closed before anything is read,
    let mut sixth = connect_from(&app, "127.0.0.2").await;
    let _ = sixth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(until_closed(&mut sixth).await, "");
    // while everyone else is served as usual.
    let res = TestApp::client_at("127.0.0.3")
        .get(format!("{}/api/me", app.base))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app.request(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_websocket_keeps_its_connections_place() {
    let app = spawn_with(|c| c.max_connections_per_address = Some(2)).await;
    let url = format!("{}/ws", app.base.replace("http://", "ws://"));
    let mut open = Vec::new();
    for _ in 0..2 {
        let tcp = connect_from(&app, "127.0.0.4").await;
        let (ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
            .await
            .unwrap();
        open.push(ws);
    }
    let mut third = connect_from(&app, "127.0.0.4").await;
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(
        until_closed(&mut third).await,
        "",
        "two WebSockets held no places"
    );
    drop(open);
}

#[tokio::test]
async fn slow_connections_from_many_addresses_give_way_to_a_real_request() {
    let app = spawn_with(|c| {
        c.max_connections = Some(6);
        c.max_connections_per_address = Some(6);
    })
    .await;
    // Every place taken by connections that never finish a request, from six addresses...
    let mut slow = Vec::new();
    for a in 0..6 {
        let mut tcp = connect_from(&app, &format!("127.0.3.{}", a + 1)).await;
        tcp.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }
    // ...and still a teacher's request is served: the oldest slow one gave way.
    let res = TestApp::client_at("127.0.0.7")
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        until_closed(&mut slow[0]).await,
        "",
        "the oldest slow connection was let go"
    );
}

#[tokio::test]
async fn answered_connections_keep_their_places() {
    let app = spawn_with(|c| {
        c.max_connections = Some(3);
        c.max_connections_per_address = Some(3);
    })
    .await;
    let url = format!("{}/ws", app.base.replace("http://", "ws://"));
    let mut live = Vec::new();
    for a in 0..3 {
        let tcp = connect_from(&app, &format!("127.0.4.{}", a + 1)).await;
        live.push(
            tokio_tungstenite::client_async(url.as_str(), tcp)
                .await
                .unwrap()
                .0,
        );
    }
    // Three open WebSockets (answered, in use): a newcomer is turned away, not them.
    let mut late = connect_from(&app, "127.0.4.9").await;
    let _ = late
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(until_closed(&mut late).await, "");
    // Each is still served: its first message is read and answered (here: refused, it is
    // not a hello).
    for ws in &mut live {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        ws.send(Message::Text("{}".into())).await.unwrap();
        let answer = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
        let Some(Ok(Message::Close(Some(frame)))) = answer else {
            panic!("no answer from the server: {answer:?}");
        };
        assert_eq!(u16::from(frame.code), 4401);
    }
}
