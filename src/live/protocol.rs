//! The live protocol's messages (docs/protocol.md), as Rust types.
//!
//! Client messages are parsed leniently into [`ClientMsg`]; server messages are built with
//! [`ServerMsg`] and serialised once per recipient set where it matters (board states are
//! serialised once per version, not once per subscriber).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::board::BoardState;

/// The protocol version this node speaks; it also accepts the one before (rolling upgrades).
pub const PROTOCOL: u32 = 1;
pub const OLDEST_ACCEPTED: u32 = 1;
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Teacher,
    Board,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Followed {
    pub board: Uuid,
    #[serde(default)]
    pub version: i64,
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
        #[serde(default)]
        version: i64,
    },
    Watch {
        boards: Vec<Followed>,
    },
    Command(Command),
    /// A number, not necessarily written as an integer (`5.0`): versions stay below 2^53,
    /// so every client's numbers hold them exactly.
    Rendered {
        version: f64,
    },
    Ping {
        t0: f64,
    },
    Code,
}

impl ClientMsg {
    /// Parses one message, refusing nesting deeper than any message needs.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !crate::domain::json_depth_within(text.as_bytes(), crate::domain::JSON_DEPTH_MAX) {
            return Err(format!(
                "nests deeper than {} levels",
                crate::domain::JSON_DEPTH_MAX
            ));
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
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
    },
    Pairing {
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
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<Uuid>,
    },
}

impl ServerMsg<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"could not encode a message"}"#.into()
        })
    }

    pub fn error(code: &'static str, message: impl Into<String>, id: Option<Uuid>) -> Self {
        ServerMsg::Error {
            code,
            message: message.into(),
            id,
        }
    }
}

/// Close codes (docs/protocol.md).
pub mod close {
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
    pub const GOING_AWAY: u16 = 1001;
}
