//! Starting the server binary for a benchmark, shared by the examples that run one.

use tokio::io::AsyncBufReadExt;

/// Starts `command` (a `classcast serve` on an ephemeral port, prepared by the caller): its
/// output is drained so it never blocks, and it is killed when dropped. Returns it and the
/// base URL it announced.
pub async fn spawn(mut command: tokio::process::Command) -> (tokio::process::Child, String) {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary runs (cargo build --release)");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the server names its address")
        .trim_end_matches('/')
        .to_owned();
    (child, base)
}
