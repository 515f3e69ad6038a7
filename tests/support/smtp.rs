//! A small SMTP server for tests: it records what it receives, can refuse recipients for
//! good (550) and can stall: while stalled, a new connection waits (up to 30 s) before the
//! server greets it, as a mail provider that hangs does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A mail as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    /// The message as sent (headers and body), lines joined with `\n`.
    pub data: String,
}

impl Received {
    /// The part of the text body after `marker`, up to the end of its line.
    pub fn after(&self, marker: &str) -> Option<String> {
        let text = self.data.replace("=\n", "").replace("=3D", "=");
        let start = text.find(marker)? + marker.len();
        let rest = &text[start..];
        let end = rest.find(['\n', '"', '<', ' ']).unwrap_or(rest.len());
        Some(rest[..end].trim_end().to_owned())
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    refused: Mutex<HashSet<String>>,
}

pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Shared>,
    stall: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

/// How long a stalled connection waits at most before the greeting.
const STALL: Duration = Duration::from_secs(30);

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let (stall, _) = watch::channel(false);
        let accept = {
            let shared = shared.clone();
            let stall = stall.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let shared = shared.clone();
                    let stall = stall.subscribe();
                    tokio::spawn(async move {
                        let _ = converse(stream, shared, stall).await;
                    });
                }
            })
        };
        Self {
            port,
            shared,
            stall,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stalls new connections (and those waiting) until called with `false`.
    pub fn stall(&self, on: bool) {
        self.stall.send_replace(on);
    }

    /// Refuses mail to `address` for good from now on.
    pub fn refuse(&self, address: &str) {
        self.shared
            .refused
            .lock()
            .unwrap()
            .insert(address.to_lowercase());
    }

    /// Accepts mail to `address` again.
    pub fn accept(&self, address: &str) {
        self.shared
            .refused
            .lock()
            .unwrap()
            .remove(&address.to_lowercase());
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The mails received for `address`.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn converse(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stall: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = tokio::time::timeout(STALL, stall.wait_for(|on| !on)).await;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-test\r\n250 8BITMIME\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                let address = command
                    .split(['<', '>'])
                    .nth(1)
                    .unwrap_or("")
                    .to_lowercase();
                if shared.refused.lock().unwrap().contains(&address) {
                    b"550 5.1.1 No such user here\r\n"
                } else {
                    to.push(address);
                    b"250 OK\r\n"
                }
            }
            "DATA" => {
                write.write_all(b"354 Go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.trim_end_matches(['\r', '\n']));
                    data.push('\n');
                }
                shared.received.lock().unwrap().push(Received {
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 OK queued\r\n"
            }
            "RSET" => {
                to.clear();
                b"250 OK\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
