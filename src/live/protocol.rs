//! The live protocol's messages (docs/protocol.md), as Rust types.
//!
//! Client messages are parsed leniently into [`ClientMsg`]; server messages are built with
//! [`ServerMsg`] and serialised once per recipient set where it matters (board states are
//! serialised once per version, not once per subscriber).

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::domain::board::BoardState;
use crate::domain::MAX_SAFE_INTEGER;

/// The protocol version this node speaks; it also accepts the one before (rolling upgrades).
pub const PROTOCOL: u32 = 1;
pub const OLDEST_ACCEPTED: u32 = 1;
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The most boards one connection follows: more than any teacher steers, few enough that one
/// `hello` costs a bounded number of lookups.
pub const MAX_FOLLOWED: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Teacher,
    Board,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Followed {
    pub board: Uuid,
    #[serde(default, deserialize_with = "version")]
    pub version: i64,
}

/// A state version: a whole number from 0 to 2^53 - 1, which every JSON client holds
/// exactly. It may be written `5.0`; anything else is refused rather than rounded.
fn version<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = f64::deserialize(d)?;
    if n.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER as f64).contains(&n) {
        // Whole and within 0..=2^53, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        Ok(n as i64)
    } else {
        Err(serde::de::Error::custom(format!(
            "a version is a whole number from 0 to 2^53 - 1, not {n}"
        )))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMsg {
    Hello {
        protocol: u32,
        role: Role,
        token: String,
        #[serde(default)]
        boards: Vec<Followed>,
        #[serde(default, deserialize_with = "version")]
        version: i64,
    },
    Watch {
        boards: Vec<Followed>,
    },
    Command(Command),
    Rendered {
        #[serde(deserialize_with = "version")]
        version: i64,
        /// The board holds the media of the next slides.
        #[serde(default)]
        ready: bool,
        /// The board holds the media of every slide of the lesson.
        #[serde(default)]
        cached: bool,
        /// The board plays the slide's video without sound: its browser allows sound only
        /// after someone touched the page.
        #[serde(default)]
        muted: bool,
    },
    Ping {
        t0: f64,
    },
    Code,
}

/// A message that is not one of this protocol, and the `id` it carried, if any: a command
/// with a bad field is still answered under its id, so the client knows which one failed.
#[derive(Debug)]
pub struct Malformed {
    pub reason: String,
    pub id: Option<Uuid>,
    /// The `type` it named, if any.
    pub kind: Option<String>,
}

impl Malformed {
    pub fn refusal(&self) -> Refusal {
        Refusal::new(
            "malformed",
            format!("Not a message of protocol {PROTOCOL}: {}", self.reason),
        )
        .with_id(self.id)
    }
}

impl ClientMsg {
    /// Parses one message, refusing nesting deeper than any message needs.
    pub fn parse(text: &str) -> Result<Self, Malformed> {
        if !crate::domain::json_depth_within(text.as_bytes(), crate::domain::JSON_DEPTH_MAX) {
            return Err(Malformed {
                reason: format!("nests deeper than {} levels", crate::domain::JSON_DEPTH_MAX),
                id: None,
                kind: None,
            });
        }
        serde_json::from_str(text).map_err(|e| {
            #[derive(Deserialize, Default)]
            struct Named {
                #[serde(default)]
                id: Option<Uuid>,
                #[serde(default, rename = "type")]
                kind: Option<String>,
            }
            let named: Named = serde_json::from_str(text).unwrap_or_default();
            Malformed {
                reason: e.to_string(),
                id: named.id,
                kind: named.kind,
            }
        })
    }

    /// The id of a command, which every error it causes carries.
    pub fn command_id(&self) -> Option<Uuid> {
        match self {
            ClientMsg::Command(cmd) => Some(cmd.id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Command {
    pub id: Uuid,
    pub board: Uuid,
    pub op: String,
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
    /// The newest version of the board the client has seen or was acknowledged (0: none): a
    /// node that has not received it yet must not apply the command to an older state.
    #[serde(default, deserialize_with = "version")]
    pub seen: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeacherInfo {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeInfo {
    pub code: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMsg<'a> {
    Welcome {
        protocol: u32,
        role: Role,
        server_time: i64,
        heartbeat_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<TeacherInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        board_id: Option<Uuid>,
    },
    State {
        board: Uuid,
        state: &'a BoardState,
    },
    Ack {
        id: Uuid,
        board: Uuid,
        version: i64,
    },
    Board {
        board: Uuid,
        online: bool,
        rendered_version: Option<i64>,
        ready: bool,
        cached: bool,
        muted: bool,
    },
    Pairing {
        /// Whether any teacher is paired with the board.
        paired: bool,
        /// Their names; empty while the board keeps names off (`name_hidden`).
        paired_with: Vec<String>,
        code: Option<CodeInfo>,
        /// The board's fingerprint, shown beside the code (see `domain::board::fingerprint`).
        fingerprint: String,
    },
    Pong {
        t0: f64,
        server_time: i64,
    },
    /// Teacher: the board's feed ended (`reason`: `unpaired`); no more states of it come.
    Unfollowed {
        board: Uuid,
        reason: &'static str,
    },
    Error(&'a Refusal),
    /// Event stream only (the WebSocket closes with [`close::SERVICE_RESTART`]): the server
    /// is restarting and ends the stream next; reconnect at once, to another host if there
    /// is one.
    Restart,
}

/// A refused message or request: the protocol's `error` message, the same on every
/// transport. `code` is one of [`codes`]; the fallback transport also derives its HTTP
/// status from it.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    /// The command the refusal answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The board a refused `hello`/`watch` entry named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<Uuid>,
    /// When to try again (`rate_limited`, `unavailable`); not sent on the WebSocket.
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id: None,
            board: None,
            retry_after: None,
        }
    }

    pub fn with_id(mut self, id: Option<Uuid>) -> Self {
        self.id = id;
        self
    }

    pub fn about_board(mut self, board: Uuid) -> Self {
        self.board = Some(board);
        self
    }

    pub fn to_json(&self) -> String {
        ServerMsg::Error(self).to_json()
    }
}

/// Every `error.code` (docs/protocol.md).
pub mod codes {
    pub const NOT_FOUND: &str = "not_found";
    pub const INVALID_COMMAND: &str = "invalid_command";
    pub const NOT_PRESENTING: &str = "not_presenting";
    pub const EMPTY_LESSON: &str = "empty_lesson";
    pub const WRONG_SLIDE: &str = "wrong_slide";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const MALFORMED: &str = "malformed";
    pub const TOO_LARGE: &str = "too_large";
    pub const FORBIDDEN: &str = "forbidden";
    pub const TOO_MANY_BOARDS: &str = "too_many_boards";
    pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    pub const SESSION_ENDED: &str = "session_ended";
}

impl ServerMsg<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"unavailable","message":"could not encode a message"}"#.into()
        })
    }
}

/// Close codes (docs/protocol.md).
pub mod close {
    /// A text message that is not UTF-8 (RFC 6455).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message over [`super::MAX_MESSAGE_BYTES`] (RFC 6455).
    pub const TOO_BIG: u16 = 1009;
    /// Not WebSocket framing (RFC 6455).
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const MALFORMED: u16 = 4400;
    pub const UNAUTHENTICATED: u16 = 4401;
    /// The teacher's session ended while connected: signed out, password changed, account
    /// disabled, or expired.
    pub const SESSION_ENDED: u16 = 4403;
    pub const TIMEOUT: u16 = 4408;
    pub const PROTOCOL_VERSION: u16 = 4409;
    pub const RATE_LIMITED: u16 = 4429;
    /// The account or board already has as many live connections open as it may.
    pub const TOO_MANY_CONNECTIONS: u16 = 4430;
    /// The server is restarting (RFC 6455's "service restart"): reconnect at once, to
    /// another host if there is one. Browsers treat 1001, which servers before it sent,
    /// the same way.
    pub const SERVICE_RESTART: u16 = 1012;
}
