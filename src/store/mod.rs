//! Storage: the [`Store`] trait, the records it returns and [`StoreError`]. The store is
//! written once (`queries/`) over a `Backend` (`backend.rs`) per engine: `sqlite/` for one
//! machine, `postgres/` for a cluster.
//!
//! All SQL lives below this module. Every backend follows the multi-master rules of the
//! design (section 3) even when it runs alone: replicated rows are only ever inserted, keys
//! are random UUIDv7, a change is a new row with a hybrid-logical-clock version, the current
//! row is the one with the highest `(version, id)`, deletions are tombstones, and natural
//! uniqueness (an e-mail address) is decided when reading. Nothing here decides *whether* a
//! caller may do something; that is for the layer above, which passes the owner of every
//! object it asks for.

mod backend;
pub mod caches;
pub mod postgres;
mod queries;
mod schema;
mod sharing;
pub mod snapshot;
mod sql;
pub mod sqlite;
mod state_writer;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::account::Email;
use crate::domain::board::BoardState;
use crate::domain::hlc::Version;
use crate::domain::lesson::LessonContent;
pub use crate::domain::node::NodeIds;
pub use sharing::{
    Colleague, LessonShares, ShareStore, SharedLesson, SharedSummary, Sharing, Shelf,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist, or belongs to someone else (the caller cannot tell which).
    #[error("not found")]
    NotFound,
    /// Another registration already owns this e-mail address.
    #[error("the e-mail address is already registered")]
    EmailTaken,
    /// The lesson changed since the version the caller based its edit on.
    #[error("the lesson has changed since version {current}")]
    VersionConflict { current: Uuid },
    /// The edit was stored, as a revision in the history, but a save of the same lesson made
    /// at the same moment through another database came after it and is current.
    #[error("another save came after this one; {current} is current")]
    Overtaken { current: Uuid },
    /// The database could not be reached or failed; the cause is logged, never shown.
    #[error("the database failed")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back (a bug or a foreign write).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

/// A migration that cannot be applied, or an applied one whose file changed since.
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// Cannot sign in: disabled by an administrator, or still pending.
    pub disabled: bool,
    /// Registered where registration needs approval, and not approved yet (also `disabled`).
    pub pending: bool,
    pub created: Version,
}

/// What logging in needs: the account that owns an address and its current password hash.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub account: Account,
    pub password_hash: String,
}

/// A live session, found by the hash of its bearer token.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: Uuid,
    /// The login this session renews, or itself: logging out ends the whole family.
    pub family: Uuid,
    pub account: Account,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    /// A fresh UUIDv7: its time is when the session began.
    pub id: Uuid,
    pub token_hash: String,
    pub account_id: Uuid,
    pub expires_at_ms: i64,
    /// The family of the session this one renews; `None` starts a family (a login).
    pub family: Option<Uuid>,
}

/// The current revision of a lesson.
#[derive(Debug, Clone)]
pub struct LessonRecord {
    pub id: Uuid,
    /// The id of the current revision: the version clients see in `ETag` and `If-Match`.
    pub revision: Uuid,
    pub created: Version,
    pub updated: Version,
    pub content: LessonContent,
}

#[derive(Debug, Clone)]
pub struct LessonSummary {
    pub id: Uuid,
    pub revision: Uuid,
    pub title: String,
    pub title_key: String,
    pub slide_count: i64,
    pub updated: Version,
    pub folder: Option<String>,
}

/// Which of a teacher's lessons a list holds; the default holds them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LessonFilter {
    /// Lowercased words (`domain::library::parse_query`), every one of which the lesson's
    /// title or slide text must contain.
    pub words: Vec<String>,
    /// Only the lessons filed in this folder.
    pub folder: Option<String>,
}

/// A folder of a teacher's and how many of their lessons it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderCount {
    pub name: String,
    pub lessons: i64,
}

#[derive(Debug, Clone)]
pub struct RevisionSummary {
    pub revision: Uuid,
    pub created: Version,
    pub title: String,
    pub slide_count: i64,
    pub author_name: String,
    pub restored_from: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LessonOrder {
    /// Most recently changed first.
    Updated,
    /// By title, A to Z, case-insensitively.
    Title,
}

/// Where a page of lessons starts: just after this position in the chosen order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LessonCursor {
    Updated { version: Version, id: Uuid },
    Title { title_key: String, id: Uuid },
}

/// What a lesson edit is based on and what it writes.
#[derive(Debug, Clone)]
pub struct LessonEdit {
    /// `Some(revision)`: refuse the edit unless this is still the current revision.
    pub expected: Option<Uuid>,
    pub content: LessonContent,
    /// Set when the edit restores an earlier revision.
    pub restored_from: Option<Uuid>,
    /// The new revision stays in the current revision's folder, whatever `content` says:
    /// an edit that does not name a folder (an older editor, a restore) does not move the
    /// lesson.
    pub keep_folder: bool,
    /// The new revision keeps the current revision's theme, whatever `content` says: a save
    /// that does not name one (an older editor) does not change the lesson's look.
    pub keep_theme: bool,
}

/// A teacher's pairing with a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardPairing {
    pub board: Uuid,
    /// The name this teacher gave the board.
    pub name: String,
    pub paired: Version,
}

/// A board's pairing code that is still usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveCode {
    pub id: Uuid,
    pub board: Uuid,
    pub code: String,
    pub expires_at_ms: i64,
}

/// One database of a node, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStatus {
    /// Without its password.
    pub url: String,
    pub answering: bool,
    /// The node uses this one now.
    pub active: bool,
    /// Why it can never catch up with the other databases of a cluster (it must be
    /// rebuilt), when it cannot; the node does not use it meanwhile.
    pub cannot_catch_up: Option<String>,
}

/// A pglogical subscription of one database to another, as the metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replication {
    pub name: String,
    pub replicating: bool,
    /// WAL its provider wrote that it has not confirmed, when the provider answers.
    pub lag_bytes: Option<i64>,
    /// How old the last change it applied was, when PostgreSQL reports it.
    pub lag_seconds: Option<f64>,
}

/// What storing a command's state did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Stored now, with this version (newer than every stored state of the board).
    New(Version),
    /// The command id was stored before, for this board and version; nothing was written.
    Before { board: Uuid, version: Version },
}

/// Everything classcast keeps, on either engine; both pass one suite. The methods come in
/// six parts, one file each in `queries/`: [`AccountStore`], [`LessonStore`],
/// [`ShareStore`] (`sharing.rs`), [`BoardStore`], [`MediaStore`] and [`MailStore`].
#[async_trait]
pub trait Store:
    AccountStore
    + LessonStore
    + ShareStore
    + BoardStore
    + MediaStore
    + MailStore
    + Send
    + Sync
    + 'static
{
    /// Applies pending schema migrations; returns the names of those applied now.
    async fn migrate(&self) -> StoreResult<Vec<String>>;
    /// Each database the node may use, whether it answers now, and which one it uses.
    async fn databases(&self) -> Vec<DatabaseStatus>;
    /// Whether rows written elsewhere may still be on their way here (a replicated
    /// database): only then is it worth waiting for one that is missing.
    fn replicated(&self) -> bool {
        false
    }
    /// Each replication subscription between the databases and its lag; none on a database
    /// of its own.
    async fn replication(&self) -> Vec<Replication>;
    /// Records that this node is alive now (every few minutes; see [`upkeep_nodes`]).
    ///
    /// [`upkeep_nodes`]: Store::upkeep_nodes
    async fn heartbeat(&self) -> StoreResult<()>;
    /// How many nodes recorded a heartbeat within `within` (this one included once it did).
    async fn live_nodes(&self, within: std::time::Duration) -> StoreResult<u32>;
    /// The nodes whose upkeep (purges) this node does: itself; and, when it is the live node
    /// with the lowest id, every node with rows whose newest heartbeat is older than `lease`
    /// (replaced or removed), so that its rows are purged by exactly one node in normal
    /// operation (docs/architecture.md section 3, rule 6).
    async fn upkeep_nodes(&self, lease: std::time::Duration) -> StoreResult<NodeIds>;
    /// Deletes the superseded heartbeats of `nodes`.
    async fn purge_heartbeats(&self, nodes: &NodeIds) -> StoreResult<u64>;
}

/// A mail to send, written whole: whichever node sends it sends these bytes.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
}

/// What a link sent by mail lets its holder do once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Set a new password.
    Reset,
    /// Confirm the account's address.
    Confirm,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Reset => "reset",
            TokenPurpose::Confirm => "confirm",
        }
    }
}

/// The link a mail carries, kept as the hash of its token.
#[derive(Debug, Clone)]
pub struct NewAccountToken {
    pub account: Uuid,
    pub purpose: TokenPurpose,
    pub token_hash: String,
    pub expires_at_ms: i64,
}

/// What using a link does, with the link's use, in one transaction.
#[derive(Debug, Clone, Copy)]
pub enum TokenUse<'a> {
    /// Sets this password (every session of the account ends with it).
    Reset { password_hash: &'a str },
    /// The address is confirmed: the account may sign in.
    Confirm,
}

/// A mail due to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// Failed attempts since it was written or last retried by an administrator.
    pub failures: u32,
}

/// What an attempt to send a mail came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome<'a> {
    Sent,
    /// Failed for now; tried again from `retry_at_ms` (milliseconds since the Unix epoch).
    Failed {
        reason: &'a str,
        retry_at_ms: i64,
    },
    /// Given up: refused for good, or failed too often.
    Dead {
        reason: &'a str,
    },
}

/// Where a mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    Pending,
    Sent,
    Dead,
}

/// A mail of the outbox, for `classcast mail status`.
#[derive(Debug, Clone)]
pub struct MailRecord {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub written: Version,
    pub state: MailState,
    /// Attempts that failed since it was written or last retried.
    pub failures: u32,
    /// Why the newest failed or dead attempt failed.
    pub reason: Option<String>,
    /// When a pending mail is tried next (milliseconds since the Unix epoch; 0: at once).
    pub due_at_ms: i64,
}

/// The outbox and the links mail carries. A mail is sent by the node that wrote it, or, once
/// that node has been silent past a lease, by the live node with the lowest id (design
/// rule: work belongs to the node that created it).
#[async_trait]
pub trait MailStore: Send + Sync {
    /// Writes a mail to the outbox, with the link it carries if any, in one transaction.
    async fn queue_mail(
        &self,
        mail: NewMail<'_>,
        token: Option<NewAccountToken>,
    ) -> StoreResult<Uuid>;
    /// The account a link's token opens (id of the link, and the account), if the link is
    /// for `purpose`, unused, unexpired at `now_ms`, and its account owns its address and
    /// is not disabled.
    async fn account_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> StoreResult<Option<(Uuid, Account)>>;
    /// Uses link `token` of `account`: does what `how` says and records the use, at once;
    /// `false` (and nothing written) when it was used already.
    async fn use_account_token(
        &self,
        token: Uuid,
        account: Uuid,
        how: TokenUse<'_>,
    ) -> StoreResult<bool>;
    /// Up to `limit` mails this node is to send now, oldest first: its own, and when it is
    /// the live node with the lowest id, those of nodes silent longer than `lease`.
    async fn due_mail(
        &self,
        lease: std::time::Duration,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutgoingMail>>;
    async fn record_mail_attempt(&self, mail: Uuid, outcome: MailOutcome<'_>) -> StoreResult<()>;
    /// Every mail of the outbox, newest first.
    async fn mail_records(&self) -> StoreResult<Vec<MailRecord>>;
    /// How many mails of the whole outbox are pending, and how many dead.
    async fn mail_counts(&self) -> StoreResult<(u64, u64)>;
    /// Sends a mail that is not sent again from now (a dead one comes back to life); its
    /// state before. [`StoreError::NotFound`] when there is no such mail.
    async fn retry_mail(&self, id: Uuid) -> StoreResult<MailState>;
    /// Deletes the mail of `nodes` sent or given up before `before`, and their links that
    /// expired before `tokens_before_ms`.
    async fn purge_mail(
        &self,
        nodes: &NodeIds,
        before: Version,
        tokens_before_ms: i64,
    ) -> StoreResult<u64>;
}

/// Accounts, their passwords and sessions.
/// An uploaded picture or video: its content address (the SHA-256 of its bytes, lower-case
/// hex), its type as detected from the bytes, and how it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub id: String,
    pub media_type: String,
    pub size: u64,
    /// Its bytes are chunks `0..chunks` of [`MEDIA_CHUNK`] bytes (the last may be shorter).
    pub chunks: u32,
}

/// A small picture standing for a larger one, for thumbnails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// Bytes per stored chunk of media: small enough for any database row and any read, large
/// enough that a video is a few hundred rows.
pub const MEDIA_CHUNK: usize = 1 << 20;

/// What a stored file costs its uploaders beyond its bytes: its rows and their indexes (a
/// file of 84 bytes took 1,126 on disk), so many tiny files cannot outgrow the quota.
pub const MEDIA_FILE_OVERHEAD: u64 = 2048;

/// Media: immutable and content-addressed, so two nodes storing the same bytes write the
/// same rows. Chunks are written first, the media row last: a media that can be read has
/// all its chunks.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Stores chunk `n` of the media with this id (under a random key: the caller stores the
    /// chunks of a media only when no media with this id is stored).
    async fn insert_media_chunk(&self, media: &str, n: u32, bytes: &[u8]) -> StoreResult<()>;
    /// Records that `account` uploaded `media`, whose chunks are all stored; the media row
    /// is written unless it exists.
    async fn insert_media(&self, media: &Media, account: Uuid) -> StoreResult<()>;
    async fn media(&self, id: &str) -> StoreResult<Option<Media>>;
    /// Chunk `n` of a stored media.
    async fn media_chunk(&self, id: &str, n: u32) -> StoreResult<Vec<u8>>;
    /// Bytes of the media `account` uploaded, each counted once, with
    /// [`MEDIA_FILE_OVERHEAD`] for each.
    async fn media_bytes(&self, account: Uuid) -> StoreResult<u64>;
    /// Whether `account` uploaded the media with this id before.
    async fn uploaded(&self, account: Uuid, media: &str) -> StoreResult<bool>;
    /// Stores the downscaled preview of a picture.
    async fn insert_media_preview(&self, media: &str, preview: &Preview) -> StoreResult<()>;
    /// The preview of a picture, if one was made (the first stored, if two nodes made one).
    async fn media_preview(&self, media: &str) -> StoreResult<Option<Preview>>;
    /// Deletes media `nodes` stored before `before` that no lesson revision names and nobody
    /// uploaded again since, then the chunks, previews and upload records of media that are
    /// gone (chunks of an upload cut off while it was being stored, too), older than `before`.
    /// Returns how many media went.
    async fn purge_media(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64>;
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Registers an account with its first password, `pending` approval or active.
    /// `EmailTaken` when the address has an owner already.
    async fn create_account(
        &self,
        email: &Email,
        name: &str,
        password_hash: &str,
        pending: bool,
    ) -> StoreResult<Account>;
    async fn account(&self, id: Uuid) -> StoreResult<Account>;
    /// The account owning this (normalised) address, with its current password hash.
    async fn login_record(&self, email_normalized: &str) -> StoreResult<Option<LoginRecord>>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Whether any account exists.
    async fn any_account(&self) -> StoreResult<bool>;
    /// Disables or enables an account; enabling a pending account approves it.
    async fn set_account_disabled(&self, id: Uuid, disabled: bool) -> StoreResult<Account>;
    /// Stores a new password; every session created before it stops working.
    async fn set_password(&self, id: Uuid, password_hash: &str) -> StoreResult<()>;

    async fn create_session(&self, session: NewSession) -> StoreResult<Uuid>;
    /// The live session with this token hash: not expired at `now_ms`, not revoked, not older
    /// than the account's password, and its account enabled and owning its address.
    async fn session(&self, token_hash: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>>;
    /// Ends a session family: the login and every renewal of it.
    async fn revoke_session(&self, family: Uuid) -> StoreResult<()>;
    /// Deletes sessions `nodes` began that expired before `before_ms`; returns how many.
    async fn purge_sessions(&self, nodes: &NodeIds, before_ms: i64) -> StoreResult<u64>;
    /// Deletes accounts `nodes` registered before `before` that still wait for approval, with
    /// every fact of theirs; returns how many accounts.
    async fn purge_pending_accounts(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64>;
    /// A number that changes whenever a write may have ended a session (a revocation, a new
    /// password, a disabled account), wherever it was written: cheap enough to ask often.
    /// When it moved since the last call, the sessions the store kept in memory are forgotten
    /// (`store/caches.rs`): the node's session poll asks it every 250 ms.
    async fn session_change_mark(&self) -> StoreResult<i64>;
    /// Those of these session families that have a member still live at `now_ms` (as
    /// [`AccountStore::session`] decides).
    async fn live_sessions(
        &self,
        families: &[Uuid],
        now_ms: i64,
    ) -> StoreResult<std::collections::HashSet<Uuid>>;
}

/// Lessons and their revisions.
#[async_trait]
pub trait LessonStore: Send + Sync {
    async fn create_lesson(
        &self,
        owner: Uuid,
        content: &LessonContent,
    ) -> StoreResult<LessonRecord>;
    /// The lesson's current revision; kept in memory for a few seconds (`store/caches.rs`).
    async fn lesson(&self, owner: Uuid, id: Uuid) -> StoreResult<Arc<LessonRecord>>;
    /// Up to `limit` of the owner's lessons that `filter` holds, in `order`, after `cursor`.
    async fn list_lessons(
        &self,
        owner: Uuid,
        filter: &LessonFilter,
        order: LessonOrder,
        cursor: Option<&LessonCursor>,
        limit: u32,
    ) -> StoreResult<Vec<LessonSummary>>;
    /// The owner's folders, by name (case aside), with how many of their lessons each holds.
    async fn lesson_folders(&self, owner: Uuid) -> StoreResult<Vec<FolderCount>>;
    /// Writes a new revision. `VersionConflict` when `edit.expected` is no longer current.
    async fn save_lesson(
        &self,
        owner: Uuid,
        id: Uuid,
        edit: LessonEdit,
    ) -> StoreResult<LessonRecord>;
    /// Writes a tombstone revision, of the version returned: the lesson disappears, its
    /// history stays until purged.
    async fn delete_lesson(&self, owner: Uuid, id: Uuid) -> StoreResult<Version>;
    /// The lesson's revisions, newest first.
    async fn revisions(&self, owner: Uuid, id: Uuid) -> StoreResult<Vec<RevisionSummary>>;
    async fn revision(&self, owner: Uuid, id: Uuid, revision: Uuid) -> StoreResult<LessonContent>;
    /// Bytes of every stored revision of the owner's lessons (title and slides), as
    /// [`LessonContent::stored_bytes`] counts them.
    async fn lesson_bytes(&self, owner: Uuid) -> StoreResult<u64>;
    /// Deletes revisions `nodes` wrote (see [`Store::upkeep_nodes`]) that no one can reach: of a deleted lesson, all but
    /// its tombstone; of the others, those past the newest `keep` and older than `before`.
    /// A revision a board presents now is kept. Returns how many.
    async fn purge_revisions(
        &self,
        nodes: &NodeIds,
        before: Version,
        keep: u32,
    ) -> StoreResult<u64>;
    /// A revision's content by its id alone: for a board already presenting it, whoever
    /// steers the board may read on.
    async fn presented_revision(&self, lesson: Uuid, revision: Uuid) -> StoreResult<LessonContent>;
    /// Another node said it stored revision `version` of lesson `id`: what this node kept of
    /// the lesson is forgotten, and no older revision is kept in its place.
    fn lesson_announced(&self, id: Uuid, version: Version);
    /// Announcements may have been lost: nothing kept of lessons is trusted.
    fn announcements_missed(&self);
}

/// Boards: identities, pairing codes, pairings and states.
#[async_trait]
pub trait BoardStore: Send + Sync {
    /// Creates a board identity with the hash of its secret token.
    async fn create_board(&self, token_hash: &str) -> StoreResult<Uuid>;
    async fn board_by_token(&self, token_hash: &str) -> StoreResult<Option<Uuid>>;
    /// Gives a board a new pairing code; its previous code stops working.
    async fn issue_code(
        &self,
        board: Uuid,
        code: &str,
        expires_at_ms: i64,
    ) -> StoreResult<ActiveCode>;
    /// The board's code, if it is unexpired at `now_ms`, unused, and not taken over by a newer
    /// board that drew the same digits.
    async fn current_code(&self, board: Uuid, now_ms: i64) -> StoreResult<Option<ActiveCode>>;
    /// The usable code with these digits, if any.
    async fn resolve_code(&self, code: &str, now_ms: i64) -> StoreResult<Option<ActiveCode>>;
    /// Spends `code` and pairs its board to `account` under `name`. `NotFound` when the code
    /// was spent meanwhile.
    async fn pair_board(
        &self,
        account: Uuid,
        code: &ActiveCode,
        name: &str,
    ) -> StoreResult<BoardPairing>;
    async fn boards_of(&self, account: Uuid) -> StoreResult<Vec<BoardPairing>>;
    async fn board_pairing(&self, account: Uuid, board: Uuid) -> StoreResult<BoardPairing>;
    async fn rename_board(
        &self,
        account: Uuid,
        board: Uuid,
        name: &str,
    ) -> StoreResult<BoardPairing>;
    async fn unpair_board(&self, account: Uuid, board: Uuid) -> StoreResult<()>;
    /// Ends the board's identity for good, by a teacher paired with it: its token opens
    /// nothing any more and every pairing of it ends.
    async fn revoke_board(&self, account: Uuid, board: Uuid) -> StoreResult<()>;
    /// Whether the board's identity was revoked.
    async fn board_revoked(&self, board: Uuid) -> StoreResult<bool>;
    /// Names of the teachers currently paired with a board.
    async fn board_teachers(&self, board: Uuid) -> StoreResult<Vec<String>>;
    /// The board's newest state, with its version. Its slide view is not stored
    /// ([`BoardState::stored_json`]): the caller restores it from the presented revision.
    async fn board_state(&self, board: Uuid) -> StoreResult<Option<BoardState>>;
    /// The newest state of each of these boards that has one (in no particular order): how
    /// a node follows many boards changed elsewhere with one read.
    async fn board_states(&self, boards: &[Uuid]) -> StoreResult<Vec<BoardState>>;
    /// The newest stored version of each of these boards that has a state, whichever node
    /// stored it: how a node catches up with boards steered elsewhere.
    async fn board_state_versions(
        &self,
        boards: &[Uuid],
    ) -> StoreResult<std::collections::HashMap<Uuid, i64>>;
    /// The board and version a command id stored, if it stored a state (the lowest
    /// `(version, id)` if it was stored twice).
    async fn command_outcome(&self, command: Uuid) -> StoreResult<Option<(Uuid, Version)>>;
    /// Whether the board had a stored state of this version (and it is not purged yet).
    async fn had_board_state(&self, board: Uuid, version: i64) -> StoreResult<bool>;
    /// Stores the state `command` produced, unless that command id was stored before (a
    /// resend): then nothing is written and the earlier outcome is returned.
    ///
    /// Under multi-master replication: the new state's version is above every state of the
    /// board this node's database holds when the state is stored, whichever node wrote them
    /// (a state that arrives later from another node may still be newer: the newest version
    /// wins everywhere). A command id stored on two nodes (a resend that reached both)
    /// answers its lowest `(version, id)` outcome, the same on every node.
    async fn save_board_state(&self, command: Uuid, state: &BoardState) -> StoreResult<Saved>;
    /// Deletes board states `nodes` wrote that are superseded (a newer state of the same
    /// board exists) and older than `before`; returns how many. Resends of their commands
    /// are then no longer recognised, so `before` must lie well past any resend window.
    async fn purge_board_states(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64>;
    /// Deletes pairing codes `nodes` issued that expired before `before_ms`, and their
    /// records of those codes' use; returns how many codes.
    async fn purge_codes(&self, nodes: &NodeIds, before_ms: i64) -> StoreResult<u64>;
    /// Deletes boards `nodes` claimed before `before` that were never paired and hold no
    /// pairing code (not even an expired one not yet purged); returns how many.
    async fn purge_unpaired_boards(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64>;
}

/// Opens the store on the databases named by `urls` for `node`: one SQLite database
/// (created if needed), or PostgreSQL databases in order of preference (the node uses the
/// first that answers and moves on when it fails).
pub async fn open(
    urls: &[String],
    node: &crate::domain::node::Node,
) -> Result<std::sync::Arc<dyn Store>, OpenError> {
    let postgres = |url: &String| is_postgres(url);
    match urls {
        [url] if url.starts_with("sqlite:") => Ok(std::sync::Arc::new(
            sqlite::open(url, node).await?,
        )),
        [_, ..] if urls.iter().all(postgres) => Ok(std::sync::Arc::new(
            postgres::open(urls, node).await?,
        )),
        [] => Err(OpenError::Unsupported("no database is configured".into())),
        _ if urls.iter().any(|u| u.starts_with("sqlite:")) => Err(OpenError::Unsupported(
            "an embedded sqlite: database stands alone; several databases must all be postgres: URLs".into(),
        )),
        _ => Err(OpenError::Unsupported(format!(
            "unknown database URL {:?}: it must start with sqlite: or postgres:",
            redact_url(urls.iter().find(|u| !postgres(u)).map_or("", |u| u.as_str()))
        ))),
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot open the database {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// A database URL with any password (of the user, or a `password` in the query) replaced,
/// fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{}:***{}", &base[..scheme_end + 3], user, &base[at..])
                }
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("pass") => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        redacted = format!("{redacted}?{}", pairs.join("&"));
    }
    redacted
}

/// Where a database is, and nothing of who connects or how (no user, no query, a file's
/// name without its folders): for pages anyone may read.
pub fn database_place(url: &str) -> String {
    let base = url.split('?').next().unwrap_or_default();
    let Some((scheme, rest)) = base.split_once("://") else {
        return "database".into();
    };
    if scheme == "sqlite" {
        let file = rest.rsplit('/').next().unwrap_or_default();
        return format!("sqlite://…/{file}");
    }
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{rest}")
}

/// How many revisions of a lesson the history lists, newest first.
pub const REVISIONS_LISTED: u32 = 100;

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn passwords_never_show_and_anonymous_pages_see_only_the_place() {
        let url = "postgres://node:s3cret@db1.school.org:5432/classcast?sslmode=verify-full&password=qu3ry&sslrootcert=/etc/ca.pem";
        let logged = redact_url(url);
        assert_eq!(
            logged,
            "postgres://node:***@db1.school.org:5432/classcast?sslmode=verify-full&password=***&sslrootcert=/etc/ca.pem"
        );
        assert_eq!(
            database_place(url),
            "postgres://db1.school.org:5432/classcast"
        );
        assert_eq!(
            database_place("sqlite:///var/lib/classcast/classcast.db"),
            "sqlite://…/classcast.db"
        );
    }
}
