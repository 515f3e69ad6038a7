//! What an `ack` promises: the command's state is on disk, synced, before the teacher hears
//! of it. Watched from outside with `strace` on the real binary: the order of the WAL's
//! writes, its syncs and the acknowledgements sent on the sockets.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::harness::{Process, TestApp};
use crate::live::{classroom, Ws};
use crate::tools::{missing, Tool};

#[tokio::test]
async fn a_command_is_acknowledged_only_after_its_state_is_synced_to_disk() {
    if missing(&[Tool::Strace]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let app = TestApp::of_process(&server, dir);
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    let trace = tempfile::NamedTempFile::new().unwrap();
    let mut strace = Command::new("strace")
        .args(["-f", "-y", "-s", "512", "-e"])
        .arg("trace=pwrite64,pwritev,write,writev,fsync,fdatasync,sendto,sendmsg")
        .arg("-o")
        .arg(trace.path())
        .args(["-p", &server.pid().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace runs (scripts/test installs it)");
    // strace says when it holds every thread of the server.
    let mut said = BufReader::new(strace.stderr.take().unwrap());
    let mut line = String::new();
    while said.read_line(&mut line).unwrap() > 0 && !line.contains("attached") {
        line.clear();
    }
    assert!(line.contains("attached"), "strace attached: {line}");

    let mut acked = Vec::new();
    let present = ws
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(present["type"], "ack");
    acked.push(present["id"].as_str().unwrap().to_owned());
    for op in ["next", "prev", "next", "next", "prev"] {
        let ack = ws.command(&board.id, op, json!({})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        acked.push(ack["id"].as_str().unwrap().to_owned());
    }
    let stopped = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    strace.wait().unwrap();

    let trace = std::fs::read_to_string(trace.path()).unwrap();
    let order = order_of(&trace, &acked);
    assert_eq!(
        order.iter().filter(|e| matches!(e, Event::Ack(_))).count(),
        acked.len(),
        "every acknowledgement was seen leaving:\n{trace}"
    );
    // Each state is written to the WAL, and the WAL synced, before its ack leaves.
    let mut written = false;
    let mut synced = false;
    for event in &order {
        match event {
            Event::WalWrite => (written, synced) = (true, false),
            Event::WalSynced => synced = true,
            Event::Ack(id) => {
                assert!(
                    written && synced,
                    "ack {id} left before its state was synced: {order:?}"
                );
                written = false;
            }
        }
    }
}

#[derive(Debug)]
enum Event {
    WalWrite,
    /// A sync of the WAL returned.
    WalSynced,
    Ack(String),
}

/// The WAL's writes and completed syncs, and the acks of `ids`, in the order they happened.
/// strace splits a call another thread interrupts into `<unfinished ...>` and
/// `<... resumed>` lines; a sync counts once it has returned.
fn order_of(trace: &str, ids: &[String]) -> Vec<Event> {
    let mut syncing = std::collections::HashSet::new();
    let mut order = Vec::new();
    for line in trace.lines() {
        let pid = line.split_whitespace().next().unwrap_or_default();
        let sync = line.contains("fdatasync(") || line.contains("fsync(");
        if line.contains("-wal>") && line.contains("pwrite") {
            order.push(Event::WalWrite);
        } else if sync && line.contains("-wal>") {
            if line.contains("<unfinished ...>") {
                syncing.insert(pid.to_owned());
            } else if line.ends_with("= 0") {
                order.push(Event::WalSynced);
            }
        } else if line.contains("sync resumed>") && syncing.remove(pid) {
            if line.ends_with("= 0") {
                order.push(Event::WalSynced);
            }
        } else if let Some(id) = ids
            .iter()
            .find(|id| line.contains(id.as_str()) && line.contains("ack"))
        {
            order.push(Event::Ack(id.clone()));
        }
    }
    order
}
