//! A benchmark's cluster: three nodes of the server binary over two PostgreSQL databases
//! replicating both ways, shared by the examples that stop and start nodes.

use super::server;

/// A node: its process, address and data directory.
pub struct Node {
    pub child: tokio::process::Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub databases: Vec<String>,
}

/// Starts a node of `bin` on `listen` (open registration, warnings only in its log) over
/// `databases`, in order of preference, keeping its data in `dir`.
pub async fn start_node(
    bin: &str,
    listen: &str,
    dir: tempfile::TempDir,
    databases: &[String],
) -> Node {
    let mut command = tokio::process::Command::new(bin);
    command
        .args([
            "serve",
            "--registration",
            "open",
            "--listen",
            listen,
            "--data-dir",
        ])
        .arg(dir.path())
        .args(
            databases
                .iter()
                .flat_map(|url| ["--database", url.as_str()]),
        )
        .env("CLASSCAST_LOG", "warn")
        .stderr(std::process::Stdio::null());
    let (child, base) = server::spawn(command).await;
    Node {
        child,
        base,
        dir,
        databases: databases.to_vec(),
    }
}

/// Sets up replication between `url_a` and `url_b` with `bin`'s `cluster init`, then starts
/// three nodes on loopback preferring A, B and A.
pub async fn three_nodes(bin: &str, url_a: &str, url_b: &str) -> Vec<Node> {
    let init = std::process::Command::new(bin)
        .args(["--database", url_a, "--database", url_b, "cluster", "init"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let (a, b) = (url_a.to_owned(), url_b.to_owned());
    let mut nodes = Vec::new();
    for databases in [[&a, &b], [&b, &a], [&a, &b]] {
        let databases: Vec<String> = databases.into_iter().cloned().collect();
        let dir = tempfile::tempdir().unwrap();
        nodes.push(start_node(bin, "127.0.0.1:0", dir, &databases).await);
    }
    nodes
}
