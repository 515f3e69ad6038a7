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

/// Sends one request on `tcp` and reads its whole answer, leaving the connection open.
async fn answered(tcp: &mut TcpStream, path: &str) -> String {
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_answer(tcp).await
}

/// Reads one whole answer (head and `Content-Length` body) from `tcp`.
async fn read_answer(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a length");
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the answer ended");
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_give_way_longest_idle_first() {
    // Five places, each taken below by a connection of the test's own.
    let app = spawn_with(|c| {
        c.max_connections = Some(5);
        c.max_connections_per_address = Some(5);
    })
    .await;
    let mut claiming = connect_from(&app, "127.0.5.7").await;
    claiming
        .write_all(b"POST /api/boards/claim HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let claimed = read_answer(&mut claiming).await;
    let token = claimed
        .split("\"board_token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a board token")
        .to_owned();
    // A board's event stream, answering for as long as it lives...
    let mut stream = connect_from(&app, "127.0.5.8").await;
    stream
        .write_all(
            format!(
                "GET /api/live/events?role=board HTTP/1.1\r\nHost: x\r\n\
                 Authorization: Bearer {token}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // ...and every other place held by keep-alive connections from three addresses, each
    // answered and then idle (as when each sends one cheap request every 15 s).
    let mut idle = Vec::new();
    let keep_alive = |a: u8| {
        let app = &app;
        async move {
            let mut tcp = connect_from(app, &format!("127.0.5.{a}")).await;
            assert!(answered(&mut tcp, "/healthz")
                .await
                .starts_with("HTTP/1.1 200"));
            tcp
        }
    };
    idle.push(keep_alive(1).await);
    idle.push(keep_alive(2).await);
    // The rule's 2 s apart, so which has been idle longer does not hang on how fast the
    // server marks an answer sent: the second idle about twice as long as the third.
    let rule = std::time::Duration::from_millis(2_100);
    tokio::time::sleep(rule).await;
    idle.push(keep_alive(3).await);
    tokio::time::sleep(rule).await;
    // The first (and the test's own client) are used again: idle that briefly, they keep
    // their places; the second and third may give way, the second has been idle longest.
    assert!(answered(&mut idle[0], "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(answered(&mut claiming, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    // A teacher's request is served, and the longest idle connection (not the event
    // stream, older but in use) gave way for it.
    let res = TestApp::client_at("127.0.5.9")
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        until_closed(&mut idle[1]).await,
        "",
        "the longest idle let go"
    );
    // Only it: the stream in use kept its place, the others still answer on theirs.
    for i in [0, 2] {
        assert!(answered(&mut idle[i], "/healthz")
            .await
            .starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn a_refused_websocket_waiting_to_close_gives_way_at_once() {
    let app = spawn_with(|c| {
        c.max_connections = Some(1);
        c.max_connections_per_address = Some(1);
    })
    .await;
    // The only place: a WebSocket refused for a wrong token, whose client never answers the
    // close (the server waits up to 3 s for that)...
    let url = format!("{}/ws", app.base.replace("http://", "ws://"));
    let tcp = connect_from(&app, "127.0.6.1").await;
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .unwrap();
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let hello = r#"{"type":"hello","protocol":1,"role":"board","token":"wrong","version":0}"#;
    ws.send(Message::Text(hello.into())).await.unwrap();
    let Some(Ok(Message::Close(Some(frame)))) = ws.next().await else {
        panic!("no close frame");
    };
    assert_eq!(u16::from(frame.code), 4401);
    // ...gives way to the next connection rather than keeping it out for those 3 s.
    let mut next = connect_from(&app, "127.0.6.2").await;
    assert!(answered(&mut next, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    drop(ws);
}
