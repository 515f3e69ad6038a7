//! Where teachers are told to go: `public_url` when set, the machine's network addresses when
//! the server listens on every interface, and a warning when it listens on loopback only,
//! which no phone can open.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::harness::{spawn_app, spawn_with, BIN};

#[tokio::test]
async fn the_public_url_reaches_the_boards_through_the_client_configuration() {
    let app = spawn_with(|c| c.public_url = Some("https://classcast.school.org/".into())).await;
    let config: Value = app.public_json("/config.json").await;
    assert_eq!(config["public_url"], "https://classcast.school.org");
    // On loopback, without it, the boards say the address they were opened on.
    let app = spawn_app().await;
    let config: Value = app.public_json("/config.json").await;
    assert_eq!(config["public_url"], json!(null));
}

/// The first `lines` lines the server prints, and what it logs meanwhile; then it is stopped.
fn start_up_message(listen: &str, lines: usize) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(dir.path())
        .env_remove("CLASSCAST_CONFIG")
        .env("CLASSCAST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let printed: Vec<String> = stdout.lines().take(lines).map(Result::unwrap).collect();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut logged = String::new();
    if listen.starts_with("127.") {
        stderr.read_line(&mut logged).unwrap(); // the warning comes right after the message
    }
    child.kill().unwrap();
    child.wait().unwrap();
    (printed, logged)
}

#[test]
fn listening_on_loopback_warns_that_no_phone_can_open_it() {
    let (printed, logged) = start_up_message("127.0.0.1:0", 2);
    assert!(printed[1].contains("http://127.0.0.1:"), "{printed:?}");
    assert!(
        logged.contains("only this computer can reach") && logged.contains("public_url"),
        "{logged}"
    );
}

#[test]
fn listening_on_every_interface_names_the_machines_network_addresses() {
    let (printed, _) = start_up_message("0.0.0.0:0", 2);
    let console = printed[1]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap();
    let host = console
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap();
    let ip: std::net::IpAddr = host.parse().unwrap();
    // An address of this machine (only those can be bound), and not loopback unless the
    // machine has no other.
    assert!(std::net::UdpSocket::bind((ip, 0)).is_ok(), "{console}");
    assert!(!ip.is_unspecified(), "{console}");
    assert!(console.ends_with("/teach"), "{console}");
}
