//! The embedded store: SQLite in WAL mode under the data directory.
//!
//! Reads go through a small pool; every write goes through a single connection, so writes in
//! this process are serialised without SQLite busy-retries, and `BEGIN IMMEDIATE` makes a
//! second process (the `classcast user` command next to a running server) wait its turn
//! instead of failing half-way. The schema obeys the same insert-only rules as the replicated
//! PostgreSQL one so the two never drift apart.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::*;
use crate::domain::board::BoardState;
use crate::domain::hlc::{Hlc, Version};
use crate::domain::node::Node;

/// Embedded migrations, applied in order; a name once applied is never applied again.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("migrations/sqlite/0001_initial.sql"),
    ),
    (
        "0002_boards",
        include_str!("migrations/sqlite/0002_boards.sql"),
    ),
    (
        "0003_session_marks",
        include_str!("migrations/sqlite/0003_session_marks.sql"),
    ),
    (
        "0004_code_expiry",
        include_str!("migrations/sqlite/0004_code_expiry.sql"),
    ),
    (
        "0005_session_family",
        include_str!("migrations/sqlite/0005_session_family.sql"),
    ),
    (
        "0006_pending_accounts",
        include_str!("migrations/sqlite/0006_pending_accounts.sql"),
    ),
    (
        "0007_independent_facts",
        include_str!("migrations/sqlite/0007_independent_facts.sql"),
    ),
];

/// Local bookkeeping that is never replicated: which migrations ran. (Databases made before
/// node ids came from the process also hold `local_node`, read once by [`recorded_node_id`].)
const BOOTSTRAP: &str = "
CREATE TABLE IF NOT EXISTS schema_migration (name TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL);
";

/// The newest name row of account `a` joined as `p`.
const CURRENT_PROFILE: &str = "JOIN account_name p ON p.account_id = a.id AND NOT EXISTS (
    SELECT 1 FROM account_name n WHERE n.account_id = p.account_id
    AND (n.version, n.id) > (p.version, p.id))";

/// Whether an administrator disabled account `a` (its newest `account_access` row; 0 if none).
macro_rules! disabled {
    () => {
        "COALESCE((SELECT x.disabled FROM account_access x WHERE x.account_id = a.id
                   ORDER BY x.version DESC, x.id DESC LIMIT 1), 0)"
    };
}

/// Whether account `a` waits for approval (its newest `account_pending` row; 0 if none).
macro_rules! pending {
    () => {
        "COALESCE((SELECT x.pending FROM account_pending x WHERE x.account_id = a.id
                   ORDER BY x.version DESC, x.id DESC LIMIT 1), 0)"
    };
}

/// The columns [`account_from`] reads, for account `a` joined with [`CURRENT_PROFILE`].
const ACCOUNT_COLUMNS: &str = concat!(
    "a.id, a.email, a.version, p.name, ",
    disabled!(),
    " AS disabled, ",
    pending!(),
    " AS pending"
);

/// `a` is the earliest registration of its address, and so owns it.
const OWNS_EMAIL: &str = "NOT EXISTS (SELECT 1 FROM account o WHERE o.email_norm = a.email_norm
    AND (o.version, o.id) < (a.version, a.id))";

/// Session `s` (of account `a`) is live at the bound time: unexpired, not revoked, not older
/// than the account's newest password, the account enabled and approved. (Add
/// [`OWNS_EMAIL`]: the account must also own its address.)
const LIVE_SESSION: &str = concat!(
    "s.expires_at > ? AND ",
    disabled!(),
    " = 0 AND ",
    pending!(),
    " = 0
    AND NOT EXISTS (SELECT 1 FROM session_revocation x
                    WHERE x.session_id = COALESCE(s.family_id, s.id))
    AND NOT EXISTS (SELECT 1 FROM account_credential c
                    WHERE c.account_id = s.account_id AND c.version > s.version)"
);

/// The newest revision of lesson `l` joined as `r`.
const CURRENT_REVISION: &str = "JOIN lesson_revision r ON r.lesson_id = l.id AND NOT EXISTS (
    SELECT 1 FROM lesson_revision n WHERE n.lesson_id = r.lesson_id
    AND (n.version, n.id) > (r.version, r.id))";

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    hlc: Arc<Hlc>,
    node: String,
    /// Board states go through one group-committing writer (see `StateWriter`).
    states: mpsc::Sender<StateWrite>,
}

/// One board state waiting to be stored, and where to say it is durable.
struct StateWrite {
    command: Uuid,
    board: Uuid,
    json: String,
    done: oneshot::Sender<Result<Saved, String>>,
}

/// Stores board states in batches: when a thousand teachers press "next" at 8:30, each press
/// waits for one shared commit instead of a thousand commits in a row. A state is still
/// acknowledged only after the transaction holding it has committed.
///
/// It runs on a thread of its own: on the server's runtime, each of its statements waited
/// behind thousands of connection tasks made ready by the same burst.
struct StateWriter {
    write: SqlitePool,
    hlc: Arc<Hlc>,
    node: String,
    /// The newest stored version of each board seen so far. Only this writer adds board
    /// states (purging removes superseded rows only), so the database is asked once per board.
    newest: HashMap<Uuid, Version>,
}

const STATE_BATCH: usize = 1024;
/// How often a batch's rows are tried again when states of their boards arrived from
/// elsewhere meanwhile (each try reads the boards' newest versions again).
const WRITE_ATTEMPTS: usize = 3;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The writer checkpoints on commit only past this many WAL pages (about 80 MiB): a safety
/// net should [`checkpoints`] fall behind, not the routine.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";
/// Boards whose newest version the writer remembers; past this it forgets them all and asks
/// the database again, which is correct, only slower.
const NEWEST_REMEMBERED: usize = 100_000;

impl StateWriter {
    /// Runs the writer, and the checkpoints that keep its commits short, on a thread of
    /// their own until the store is dropped.
    fn spawn(
        self,
        queue: mpsc::Receiver<StateWrite>,
        options: SqliteConnectOptions,
    ) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("board-states".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        () = self.run(queue) => {}
                        () = checkpoints(options) => {}
                    }
                })
            })?;
        Ok(())
    }

    async fn run(mut self, mut queue: mpsc::Receiver<StateWrite>) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < STATE_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            match self.store(&batch).await {
                Ok(outcomes) => {
                    for (write, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = write.done.send(outcome);
                    }
                }
                Err(e) => {
                    let reason = crate::error_chain(&e);
                    for write in batch {
                        let _ = write.done.send(Err(reason.clone()));
                    }
                }
            }
        }
    }

    /// The batch is one `INSERT` whatever its size (the states go in as one JSON parameter):
    /// in a burst, each round trip to SQLite's thread waits for a core, so a batch makes as
    /// few as it can.
    ///
    /// A row is inserted only if its command id is new and no state of its board has a
    /// version as high: the remembered newest versions may be stale once rows arrive by
    /// replication. Rows the `INSERT` leaves out are either repeated commands (answered with
    /// their earlier outcome) or stale guesses (their boards' newest versions are read
    /// again and they are tried once more). Should a read fail, only the rows it concerned
    /// get the error (retrying them is safe); the others are stored and say so.
    async fn store(
        &mut self,
        batch: &[StateWrite],
    ) -> Result<Vec<Result<Saved, String>>, sqlx::Error> {
        let mut conn = self.write.acquire().await?;
        // Each command once: a resend inside the same batch gets the first one's outcome.
        let mut first_of: HashMap<Uuid, usize> = HashMap::new();
        let unique: Vec<usize> = (0..batch.len())
            .filter(|&i| *first_of.entry(batch[i].command).or_insert(i) == i)
            .collect();
        let mut outcomes: HashMap<usize, Result<Saved, String>> = HashMap::new();
        let mut pending = unique;
        for _attempt in 0..WRITE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let mut newest = self
                .newest_of(&mut conn, pending.iter().map(|&i| &batch[i]))
                .await?;
            let mut rows = Vec::with_capacity(pending.len());
            for &i in &pending {
                let write = &batch[i];
                let after = newest.get(&write.board).copied().unwrap_or(Version(0));
                let version = self.hlc.next_after(after);
                newest.insert(write.board, version);
                rows.push((
                    Uuid::now_v7(),
                    write.board,
                    write.command,
                    write.json.as_str(),
                    version.0,
                ));
            }
            let json = serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(e.into()))?;
            let stored: Vec<String> = sqlx::query_scalar(
                "INSERT INTO board_state (id, board_id, command_id, state, version, node)
                 SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, ?
                 FROM json_each(?) AS j
                 WHERE NOT EXISTS (SELECT 1 FROM board_state b WHERE b.command_id = j.value->>2)
                 AND NOT EXISTS (SELECT 1 FROM board_state b
                                 WHERE b.board_id = j.value->>1 AND b.version >= j.value->>4)
                 RETURNING command_id",
            )
            .bind(&self.node)
            .bind(json)
            .fetch_all(&mut *conn)
            .await?;
            let stored: HashSet<Uuid> = stored.iter().filter_map(|c| c.parse().ok()).collect();
            let mut left = Vec::new();
            for (&i, row) in pending.iter().zip(&rows) {
                if stored.contains(&row.2) {
                    self.newest.insert(row.1, Version(row.4));
                    outcomes.insert(i, Ok(Saved::New(Version(row.4))));
                } else {
                    left.push(i);
                }
            }
            if left.is_empty() {
                pending = left;
                break;
            }
            let commands: Vec<Uuid> = left.iter().map(|&i| batch[i].command).collect();
            match Self::earlier(&mut conn, &commands).await {
                Ok(earlier) => {
                    pending = Vec::new();
                    for i in left {
                        match earlier.get(&batch[i].command) {
                            Some(saved) => {
                                outcomes.insert(i, Ok(*saved));
                            }
                            None => {
                                // A newer state of this board arrived from elsewhere.
                                self.newest.remove(&batch[i].board);
                                pending.push(i);
                            }
                        }
                    }
                }
                Err(e) => {
                    let reason = crate::error_chain(&e);
                    for i in left {
                        outcomes.insert(i, Err(reason.clone()));
                    }
                    pending = Vec::new();
                }
            }
        }
        for i in pending {
            let busy = "the board kept changing under this write; try again".to_owned();
            outcomes.insert(i, Err(busy));
        }
        if self.newest.len() > NEWEST_REMEMBERED {
            self.newest.clear();
        }
        Ok((0..batch.len())
            .map(|i| {
                let first = first_of[&batch[i].command];
                let outcome = outcomes
                    .get(&first)
                    .cloned()
                    .unwrap_or_else(|| Err("a command of this batch was not answered".to_owned()));
                match outcome {
                    // The repeat of a command stored by this batch finds it stored before.
                    Ok(Saved::New(version)) if first != i => Ok(Saved::Before {
                        board: batch[first].board,
                        version,
                    }),
                    other => other,
                }
            })
            .collect())
    }

    /// The stored outcome of each of these commands. A command stored twice (a resend that
    /// reached two nodes) answers its lowest `(version, id)`, the same on every node.
    async fn earlier(
        conn: &mut SqliteConnection,
        commands: &[Uuid],
    ) -> Result<HashMap<Uuid, Saved>, sqlx::Error> {
        let stored = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT b.command_id, b.board_id, b.version FROM board_state b
             WHERE b.command_id IN (SELECT value FROM json_each(?))
             AND NOT EXISTS (SELECT 1 FROM board_state o WHERE o.command_id = b.command_id
                             AND (o.version, o.id) < (b.version, b.id))",
        )
        .bind(json_array(commands.iter().copied()))
        .fetch_all(&mut *conn)
        .await?;
        let mut earlier = HashMap::new();
        for (command, board, version) in stored {
            if let (Ok(command), Ok(board)) = (Uuid::parse_str(&command), Uuid::parse_str(&board)) {
                let version = Version(version);
                earlier.insert(command, Saved::Before { board, version });
            }
        }
        Ok(earlier)
    }

    /// The newest stored version of each board these writes are for: remembered, or read.
    async fn newest_of<'a>(
        &self,
        conn: &mut SqliteConnection,
        writes: impl Iterator<Item = &'a StateWrite>,
    ) -> Result<HashMap<Uuid, Version>, sqlx::Error> {
        let mut newest = HashMap::new();
        let mut unknown = Vec::new();
        for write in writes {
            match self.newest.get(&write.board) {
                Some(v) => {
                    newest.insert(write.board, *v);
                }
                None => unknown.push(write.board),
            }
        }
        if unknown.is_empty() {
            return Ok(newest);
        }
        let stored = sqlx::query_as::<_, (String, Option<i64>)>(
            "SELECT board_id, MAX(version) FROM board_state
             WHERE board_id IN (SELECT value FROM json_each(?)) GROUP BY board_id",
        )
        .bind(json_array(unknown))
        .fetch_all(&mut *conn)
        .await?;
        for (board, version) in stored {
            if let Ok(board) = Uuid::parse_str(&board) {
                newest.insert(board, Version(version.unwrap_or(0)));
            }
        }
        Ok(newest)
    }
}

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`] on a connection
/// of its own. Left to SQLite, the commit that crosses the WAL's size limit does it, and a
/// burst of board states waited for that commit. Never returns.
async fn checkpoints(options: SqliteConnectOptions) {
    let mut conn = match options.connect().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "no checkpoint connection; SQLite checkpoints on commit");
            return std::future::pending().await;
        }
    };
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// Ids as a JSON array, for `json_each`.
fn json_array(ids: impl IntoIterator<Item = Uuid>) -> String {
    serde_json::Value::from_iter(ids.into_iter().map(|id| id.to_string())).to_string()
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `url` for `node`.
    pub async fn open(url: &str, node: &Node) -> Result<Self, OpenError> {
        let unreachable = |reason: String| OpenError::Unreachable {
            url: redact_url(url),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| unreachable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // With sqlx's default of 50, a query returning more rows than that makes SQLite's
            // thread and ours wake each other once per further row; a batch of board states
            // reads up to `STATE_BATCH` rows.
            .row_buffer_size(STATE_BATCH);
        // Every write that is answered (a command's `ack`, a saved lesson) is on disk, not
        // just in the page cache: `FULL` makes each commit wait for `fdatasync` of the WAL.
        // Group commit keeps that to one sync per batch of board states.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .synchronous(SqliteSynchronous::Full)
                    .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES),
            )
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        sqlx::raw_sql(BOOTSTRAP)
            .execute(&write)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (hlc, node) = (node.clock.clone(), node.id.to_string());
        let (states, queue) = mpsc::channel(4 * STATE_BATCH);
        let writer = StateWriter {
            write: write.clone(),
            hlc: hlc.clone(),
            node: node.clone(),
            newest: HashMap::new(),
        };
        writer
            .spawn(queue, options.clone())
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self {
            read,
            write,
            hlc,
            node,
            states,
        })
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    fn observed(&self, version: i64) -> Version {
        let v = Version(version);
        self.hlc.observe(v);
        v
    }
}

/// The node id a database made before node ids came from the process recorded for itself,
/// if `url` names such a database: a node adopting it keeps its rows its own.
pub async fn recorded_node_id(url: &str) -> Option<Uuid> {
    let options = SqliteConnectOptions::from_str(url).ok()?.read_only(true);
    let mut conn = options.connect().await.ok()?;
    let id: String = sqlx::query_scalar("SELECT node_id FROM local_node LIMIT 1")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    Uuid::parse_str(&id).ok()
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

fn uuid(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn account_from(row: &SqliteRow) -> StoreResult<Account> {
    Ok(Account {
        id: uuid(row, "id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        // A pending account cannot sign in either.
        disabled: row.try_get::<i64, _>("disabled")? != 0 || row.try_get::<i64, _>("pending")? != 0,
        pending: row.try_get::<i64, _>("pending")? != 0,
        created: Version(row.try_get("version")?),
    })
}

fn slides_from(row: &SqliteRow) -> StoreResult<Vec<crate::domain::lesson::Slide>> {
    let json: String = row.try_get("slides")?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("slides: {e}")))
}

/// What a new `lesson_revision` row holds besides its keys.
struct RevisionRow<'a> {
    content: &'a LessonContent,
    /// A tombstone: the lesson is deleted from this version on.
    deleted: bool,
    restored_from: Option<Uuid>,
}

/// Columns of a lesson with its current revision, as read by `current_lesson`.
const LESSON_COLUMNS: &str = "l.id, l.version AS created, r.id AS revision, r.version, r.title,
    r.slides, r.deleted";

impl SqliteStore {
    async fn current_lesson<'e, E>(&self, db: E, owner: Uuid, id: Uuid) -> StoreResult<LessonRecord>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let sql = format!(
            "SELECT {LESSON_COLUMNS} FROM lesson l {CURRENT_REVISION} WHERE l.id = ? AND l.owner_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_optional(db)
            .await?
            .ok_or(StoreError::NotFound)?;
        if row.try_get::<i64, _>("deleted")? != 0 {
            return Err(StoreError::NotFound);
        }
        Ok(LessonRecord {
            id,
            revision: uuid(&row, "revision")?,
            created: Version(row.try_get("created")?),
            updated: self.observed(row.try_get("version")?),
            content: LessonContent {
                title: row.try_get("title")?,
                slides: slides_from(&row)?,
            },
        })
    }

    async fn insert_revision(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        lesson: Uuid,
        author: Uuid,
        after: Option<Version>,
        row: RevisionRow<'_>,
    ) -> StoreResult<(Uuid, Version)> {
        let RevisionRow {
            content,
            deleted,
            restored_from,
        } = row;
        let id = Uuid::now_v7();
        let version = match after {
            Some(v) => self.hlc.next_after(v),
            None => self.hlc.next(),
        };
        let slides = serde_json::to_string(&content.slides)
            .map_err(|e| StoreError::Corrupt(format!("slides: {e}")))?;
        sqlx::query(
            "INSERT INTO lesson_revision (id, lesson_id, version, node, author_id, title, title_key,
             slide_count, slides, deleted, restored_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(lesson.to_string())
        .bind(version.0)
        .bind(&self.node)
        .bind(author.to_string())
        .bind(&content.title)
        .bind(content.title_key())
        .bind(content.slides.len() as i64)
        .bind(slides)
        .bind(deleted as i64)
        .bind(restored_from.map(|r| r.to_string()))
        .execute(&mut **tx)
        .await?;
        Ok((id, version))
    }

    /// Inserts the newest row of one fact of an account (`account_name`, `account_access`,
    /// `account_pending`), its version after every earlier row of that fact, whichever node
    /// wrote them. Each fact is its own row, so changing one never undoes another.
    async fn insert_account_fact<T>(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        fact: AccountFact,
        account: Uuid,
        value: T,
    ) -> StoreResult<()>
    where
        T: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send,
    {
        let (table, column) = match fact {
            AccountFact::Name => ("account_name", "name"),
            AccountFact::Disabled => ("account_access", "disabled"),
            AccountFact::Pending => ("account_pending", "pending"),
        };
        let newest: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MAX(version) FROM {table} WHERE account_id = ?"
        ))
        .bind(account.to_string())
        .fetch_one(&mut **tx)
        .await?;
        let version = self.hlc.next_after(Version(newest.unwrap_or(0)));
        sqlx::query(&format!(
            "INSERT INTO {table} (id, account_id, {column}, version, node) VALUES (?, ?, ?, ?, ?)"
        ))
        .bind(Uuid::now_v7().to_string())
        .bind(account.to_string())
        .bind(value)
        .bind(version.0)
        .bind(&self.node)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert_credential(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        account: Uuid,
        password_hash: &str,
    ) -> StoreResult<()> {
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM account_credential WHERE account_id = ?")
                .bind(account.to_string())
                .fetch_one(&mut **tx)
                .await?;
        let version = self.hlc.next_after(Version(newest.unwrap_or(0)));
        sqlx::query(
            "INSERT INTO account_credential (id, account_id, version, node, password_hash)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(account.to_string())
        .bind(version.0)
        .bind(&self.node)
        .bind(password_hash)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut applied = Vec::new();
        for (name, sql) in MIGRATIONS {
            let mut tx = self.begin().await?;
            let done = sqlx::query("SELECT 1 FROM schema_migration WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if done {
                continue;
            }
            sqlx::Executor::execute(&mut *tx, *sql).await?;
            sqlx::query("INSERT INTO schema_migration (name, applied_at) VALUES (?, ?)")
                .bind(name)
                .bind(self.hlc.next().millis())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push((*name).to_owned());
        }
        Ok(applied)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1 FROM schema_migration LIMIT 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(())
    }

    async fn create_account(
        &self,
        email: &Email,
        name: &str,
        password_hash: &str,
        pending: bool,
    ) -> StoreResult<Account> {
        let mut tx = self.begin().await?;
        let taken = sqlx::query("SELECT 1 FROM account WHERE email_norm = ? LIMIT 1")
            .bind(email.normalized())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if taken {
            return Err(StoreError::EmailTaken);
        }
        let id = Uuid::now_v7();
        let created = self.hlc.next();
        sqlx::query(
            "INSERT INTO account (id, email, email_norm, version, node) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(email.as_str())
        .bind(email.normalized())
        .bind(created.0)
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        self.insert_account_fact(&mut tx, AccountFact::Name, id, name.to_owned())
            .await?;
        if pending {
            self.insert_account_fact(&mut tx, AccountFact::Pending, id, 1_i64)
                .await?;
        }
        self.insert_credential(&mut tx, id, password_hash).await?;
        tx.commit().await?;
        Ok(Account {
            id,
            email: email.as_str().to_owned(),
            name: name.to_owned(),
            disabled: pending,
            pending,
            created,
        })
    }

    async fn account(&self, id: Uuid) -> StoreResult<Account> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE}
             WHERE a.id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        account_from(&row)
    }

    async fn login_record(&self, email_normalized: &str) -> StoreResult<Option<LoginRecord>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, c.password_hash
             FROM account a {CURRENT_PROFILE}
             JOIN account_credential c ON c.account_id = a.id AND NOT EXISTS (
                SELECT 1 FROM account_credential m WHERE m.account_id = c.account_id
                AND (m.version, m.id) > (c.version, c.id))
             WHERE a.email_norm = ? ORDER BY a.version, a.id LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(email_normalized)
            .fetch_optional(&self.read)
            .await?;
        row.map(|row| {
            Ok(LoginRecord {
                account: account_from(&row)?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    async fn any_account(&self) -> StoreResult<bool> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM account)")
            .fetch_one(&self.read)
            .await?)
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE}
             WHERE {OWNS_EMAIL} ORDER BY a.email_norm"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(account_from).collect()
    }

    async fn set_account_disabled(&self, id: Uuid, disabled: bool) -> StoreResult<Account> {
        let mut tx = self.begin().await?;
        let sql =
            format!("SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE} WHERE a.id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut account = account_from(&row)?;
        self.insert_account_fact(&mut tx, AccountFact::Disabled, id, disabled as i64)
            .await?;
        if !disabled && account.pending {
            self.insert_account_fact(&mut tx, AccountFact::Pending, id, 0_i64)
                .await?;
            account.pending = false;
        }
        tx.commit().await?;
        account.disabled = disabled || account.pending;
        Ok(account)
    }

    async fn set_password(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM account WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        self.insert_credential(&mut tx, id, password_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<Uuid> {
        let mut tx = self.begin().await?;
        // A session must sort after the password it was opened with, even if that password
        // was written by a node whose clock runs ahead of ours.
        let credential: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM account_credential WHERE account_id = ?")
                .bind(session.account_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        let version = self.hlc.next_after(Version(credential.unwrap_or(0)));
        let id = session.id;
        sqlx::query(
            "INSERT INTO session (id, token_hash, account_id, version, node, expires_at, family_id)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&session.token_hash)
        .bind(session.account_id.to_string())
        .bind(version.0)
        .bind(&self.node)
        .bind(session.expires_at_ms)
        .bind(session.family.unwrap_or(id).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn session(&self, token_hash: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        let sql = format!(
            "SELECT s.id AS session_id, COALESCE(s.family_id, s.id) AS family, s.expires_at,
                    {ACCOUNT_COLUMNS}
             FROM session s JOIN account a ON a.id = s.account_id {CURRENT_PROFILE}
             WHERE s.token_hash = ? AND {LIVE_SESSION} AND {OWNS_EMAIL}"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            id: uuid(&row, "session_id")?,
            family: uuid(&row, "family")?,
            account: account_from(&row)?,
            expires_at_ms: row.try_get("expires_at")?,
        }))
    }

    async fn session_change_mark(&self) -> StoreResult<i64> {
        // Versions only grow, so the sum of the newest ones changes with every such write.
        Ok(sqlx::query_scalar(
            "SELECT COALESCE((SELECT MAX(version) FROM session_revocation), 0)
                  + COALESCE((SELECT MAX(version) FROM account_credential), 0)
                  + COALESCE((SELECT MAX(version) FROM account_access), 0)
                  + COALESCE((SELECT MAX(version) FROM account_pending), 0)",
        )
        .fetch_one(&self.read)
        .await?)
    }

    async fn live_sessions(&self, families: &[Uuid], now_ms: i64) -> StoreResult<HashSet<Uuid>> {
        let sql = format!(
            "WITH wanted(id) AS (SELECT value FROM json_each(?))
             SELECT DISTINCT COALESCE(s.family_id, s.id)
             FROM session s JOIN account a ON a.id = s.account_id {CURRENT_PROFILE}
             WHERE (s.family_id IN wanted OR (s.family_id IS NULL AND s.id IN wanted))
             AND {LIVE_SESSION} AND {OWNS_EMAIL}"
        );
        let live: Vec<String> = sqlx::query_scalar(&sql)
            .bind(json_array(families.iter().copied()))
            .bind(now_ms)
            .fetch_all(&self.read)
            .await?;
        Ok(live.iter().filter_map(|id| id.parse().ok()).collect())
    }

    async fn revoke_session(&self, family: Uuid) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO session_revocation (id, session_id, version, node) VALUES (?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(family.to_string())
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn create_lesson(
        &self,
        owner: Uuid,
        content: &LessonContent,
    ) -> StoreResult<LessonRecord> {
        let mut tx = self.begin().await?;
        let id = Uuid::now_v7();
        let created = self.hlc.next();
        sqlx::query("INSERT INTO lesson (id, owner_id, version, node) VALUES (?, ?, ?, ?)")
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(created.0)
            .bind(&self.node)
            .execute(&mut *tx)
            .await?;
        let (revision, updated) = self
            .insert_revision(
                &mut tx,
                id,
                owner,
                Some(created),
                RevisionRow {
                    content,
                    deleted: false,
                    restored_from: None,
                },
            )
            .await?;
        tx.commit().await?;
        Ok(LessonRecord {
            id,
            revision,
            created,
            updated,
            content: content.clone(),
        })
    }

    async fn lesson(&self, owner: Uuid, id: Uuid) -> StoreResult<LessonRecord> {
        self.current_lesson(&self.read, owner, id).await
    }

    async fn list_lessons(
        &self,
        owner: Uuid,
        order: LessonOrder,
        cursor: Option<&LessonCursor>,
        limit: u32,
    ) -> StoreResult<Vec<LessonSummary>> {
        let (after, order_by) = match order {
            LessonOrder::Updated => ("(r.version, l.id) < (?, ?)", "r.version DESC, l.id DESC"),
            LessonOrder::Title => ("(r.title_key, l.id) > (?, ?)", "r.title_key, l.id"),
        };
        let sql = format!(
            "SELECT l.id, r.id AS revision, r.version, r.title, r.title_key, r.slide_count
             FROM lesson l {CURRENT_REVISION}
             WHERE l.owner_id = ? AND r.deleted = 0 {}
             ORDER BY {order_by} LIMIT ?",
            if cursor.is_some() {
                format!("AND {after}")
            } else {
                String::new()
            }
        );
        let mut query = sqlx::query(&sql).bind(owner.to_string());
        match cursor {
            Some(LessonCursor::Updated { version, id }) => {
                query = query.bind(version.0).bind(id.to_string())
            }
            Some(LessonCursor::Title { title_key, id }) => {
                query = query.bind(title_key.clone()).bind(id.to_string())
            }
            None => {}
        }
        let rows = query.bind(i64::from(limit)).fetch_all(&self.read).await?;
        rows.iter()
            .map(|row| {
                Ok(LessonSummary {
                    id: uuid(row, "id")?,
                    revision: uuid(row, "revision")?,
                    title: row.try_get("title")?,
                    title_key: row.try_get("title_key")?,
                    slide_count: row.try_get("slide_count")?,
                    updated: self.observed(row.try_get("version")?),
                })
            })
            .collect()
    }

    async fn save_lesson(
        &self,
        owner: Uuid,
        id: Uuid,
        edit: LessonEdit,
    ) -> StoreResult<LessonRecord> {
        let mut tx = self.begin().await?;
        let current = self.current_lesson(&mut *tx, owner, id).await?;
        if edit
            .expected
            .is_some_and(|expected| expected != current.revision)
        {
            return Err(StoreError::VersionConflict {
                current: current.revision,
            });
        }
        let (revision, updated) = self
            .insert_revision(
                &mut tx,
                id,
                owner,
                Some(current.updated),
                RevisionRow {
                    content: &edit.content,
                    deleted: false,
                    restored_from: edit.restored_from,
                },
            )
            .await?;
        tx.commit().await?;
        Ok(LessonRecord {
            id,
            revision,
            created: current.created,
            updated,
            content: edit.content,
        })
    }

    async fn delete_lesson(&self, owner: Uuid, id: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let current = self.current_lesson(&mut *tx, owner, id).await?;
        let tombstone = LessonContent {
            title: current.content.title,
            slides: Vec::new(),
        };
        self.insert_revision(
            &mut tx,
            id,
            owner,
            Some(current.updated),
            RevisionRow {
                content: &tombstone,
                deleted: true,
                restored_from: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revisions(&self, owner: Uuid, id: Uuid) -> StoreResult<Vec<RevisionSummary>> {
        self.current_lesson(&self.read, owner, id).await?;
        let sql = format!(
            "SELECT r.id, r.version, r.title, r.slide_count, r.restored_from, p.name
             FROM lesson_revision r
             JOIN account a ON a.id = r.author_id {CURRENT_PROFILE}
             WHERE r.lesson_id = ? AND r.deleted = 0
             ORDER BY r.version DESC, r.id DESC LIMIT {REVISIONS_LISTED}"
        );
        let rows = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| {
                let restored_from: Option<String> = row.try_get("restored_from")?;
                Ok(RevisionSummary {
                    revision: uuid(row, "id")?,
                    created: Version(row.try_get("version")?),
                    title: row.try_get("title")?,
                    slide_count: row.try_get("slide_count")?,
                    author_name: row.try_get("name")?,
                    restored_from: restored_from
                        .map(|r| Uuid::parse_str(&r))
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(format!("restored_from: {e}")))?,
                })
            })
            .collect()
    }

    async fn revision(&self, owner: Uuid, id: Uuid, revision: Uuid) -> StoreResult<LessonContent> {
        self.current_lesson(&self.read, owner, id).await?;
        match self.revision_content(id, revision).await? {
            (_, true) => Err(StoreError::NotFound),
            (content, false) => Ok(content),
        }
    }

    async fn lesson_bytes(&self, owner: Uuid) -> StoreResult<u64> {
        let bytes: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(length(CAST(r.title AS BLOB)) + length(CAST(r.slides AS BLOB))), 0)
             FROM lesson l JOIN lesson_revision r ON r.lesson_id = l.id WHERE l.owner_id = ?",
        )
        .bind(owner.to_string())
        .fetch_one(&self.read)
        .await?;
        Ok(bytes.max(0) as u64)
    }

    async fn purge_revisions(&self, before: Version, keep: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM lesson_revision WHERE id IN (
                SELECT id FROM (
                    SELECT r.id, r.node, r.version,
                        ROW_NUMBER() OVER newest_first AS age,
                        FIRST_VALUE(r.deleted) OVER newest_first AS gone
                    FROM lesson_revision r
                    WINDOW newest_first AS (PARTITION BY r.lesson_id ORDER BY r.version DESC, r.id DESC))
                WHERE node = ? AND age > 1 AND (gone = 1 OR (age > ? AND version < ?)))
             AND id NOT IN (
                SELECT b.state->>'$.lesson.revision' FROM board_state b
                WHERE b.state->>'$.lesson.revision' IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM board_state n WHERE n.board_id = b.board_id
                    AND (n.version, n.id) > (b.version, b.id)))",
        )
        .bind(&self.node)
        .bind(i64::from(keep))
        .bind(before.0)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    async fn presented_revision(&self, lesson: Uuid, revision: Uuid) -> StoreResult<LessonContent> {
        Ok(self.revision_content(lesson, revision).await?.0)
    }

    async fn create_board(&self, token_hash: &str) -> StoreResult<Uuid> {
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO board (id, token_hash, version, node) VALUES (?, ?, ?, ?)")
            .bind(id.to_string())
            .bind(token_hash)
            .bind(self.hlc.next().0)
            .bind(&self.node)
            .execute(&self.write)
            .await?;
        Ok(id)
    }

    async fn board_by_token(&self, token_hash: &str) -> StoreResult<Option<Uuid>> {
        let row =
            sqlx::query("SELECT id FROM board WHERE token_hash = ? ORDER BY version, id LIMIT 1")
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?;
        row.map(|r| uuid(&r, "id")).transpose()
    }

    async fn issue_code(
        &self,
        board: Uuid,
        code: &str,
        expires_at_ms: i64,
    ) -> StoreResult<ActiveCode> {
        let mut tx = self.begin().await?;
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM board_code WHERE code = ? OR board_id = ?",
        )
        .bind(code)
        .bind(board.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO board_code (id, board_id, code, expires_at, version, node) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(board.to_string())
        .bind(code)
        .bind(expires_at_ms)
        .bind(self.hlc.next_after(Version(newest.unwrap_or(0))).0)
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ActiveCode {
            id,
            board,
            code: code.to_owned(),
            expires_at_ms,
        })
    }

    async fn current_code(&self, board: Uuid, now_ms: i64) -> StoreResult<Option<ActiveCode>> {
        self.usable_code(&self.read, "board_id", board.to_string(), now_ms)
            .await
    }

    async fn resolve_code(&self, code: &str, now_ms: i64) -> StoreResult<Option<ActiveCode>> {
        self.usable_code(&self.read, "code", code.to_owned(), now_ms)
            .await
    }

    async fn pair_board(
        &self,
        account: Uuid,
        code: &ActiveCode,
        name: &str,
    ) -> StoreResult<BoardPairing> {
        let mut tx = self.begin().await?;
        let still = self
            .usable_code(&mut *tx, "id", code.id.to_string(), 0)
            .await?
            .is_some();
        if !still {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO board_code_use (id, code_id, account_id, version, node) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(code.id.to_string())
        .bind(account.to_string())
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        let paired = self
            .insert_pairing(&mut tx, account, code.board, false)
            .await?;
        self.insert_board_name(&mut tx, account, code.board, name)
            .await?;
        tx.commit().await?;
        Ok(BoardPairing {
            board: code.board,
            name: name.to_owned(),
            paired,
        })
    }

    async fn boards_of(&self, account: Uuid) -> StoreResult<Vec<BoardPairing>> {
        let sql = format!(
            "SELECT {PAIRING_COLUMNS} FROM board_pairing bp
             WHERE bp.account_id = ? AND {CURRENT_PAIRING} ORDER BY name, bp.board_id"
        );
        let rows = sqlx::query(&sql)
            .bind(account.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(pairing_from).collect()
    }

    async fn board_pairing(&self, account: Uuid, board: Uuid) -> StoreResult<BoardPairing> {
        self.current_pairing(&self.read, account, board).await
    }

    async fn rename_board(
        &self,
        account: Uuid,
        board: Uuid,
        name: &str,
    ) -> StoreResult<BoardPairing> {
        let mut tx = self.begin().await?;
        let current = self.current_pairing(&mut *tx, account, board).await?;
        self.insert_board_name(&mut tx, account, board, name)
            .await?;
        tx.commit().await?;
        Ok(BoardPairing {
            name: name.to_owned(),
            ..current
        })
    }

    async fn unpair_board(&self, account: Uuid, board: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        self.current_pairing(&mut *tx, account, board).await?;
        self.insert_pairing(&mut tx, account, board, true).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn board_teachers(&self, board: Uuid) -> StoreResult<Vec<String>> {
        let sql = format!(
            "SELECT p.name FROM board_pairing bp JOIN account a ON a.id = bp.account_id {CURRENT_PROFILE}
             WHERE bp.board_id = ? AND {CURRENT_PAIRING} ORDER BY bp.version"
        );
        let rows = sqlx::query(&sql)
            .bind(board.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    async fn board_state(&self, board: Uuid) -> StoreResult<Option<BoardState>> {
        let row = sqlx::query(
            "SELECT state, version FROM board_state WHERE board_id = ? ORDER BY version DESC, id DESC LIMIT 1",
        )
        .bind(board.to_string())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let json: String = row.try_get("state")?;
        let mut state: BoardState = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("board state: {e}")))?;
        state.version = self.observed(row.try_get("version")?).0;
        Ok(Some(state))
    }

    async fn command_outcome(&self, command: Uuid) -> StoreResult<Option<(Uuid, Version)>> {
        let mut conn = self.read.acquire().await?;
        let earlier = StateWriter::earlier(&mut conn, &[command]).await?;
        Ok(match earlier.get(&command) {
            Some(Saved::Before { board, version }) => Some((*board, *version)),
            Some(Saved::New(_)) | None => None,
        })
    }

    async fn had_board_state(&self, board: Uuid, version: i64) -> StoreResult<bool> {
        let found = sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM board_state WHERE board_id = ? AND version = ? LIMIT 1",
        )
        .bind(board.to_string())
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }

    async fn save_board_state(&self, command: Uuid, state: &BoardState) -> StoreResult<Saved> {
        let json = state.stored_json();
        let (done, durable) = oneshot::channel();
        let write = StateWrite {
            command,
            board: state.board,
            json,
            done,
        };
        let gone = || StoreError::Unavailable("the board state writer has stopped".into());
        self.states.send(write).await.map_err(|_| gone())?;
        durable
            .await
            .map_err(|_| gone())?
            .map_err(|reason| StoreError::Unavailable(reason.into()))
    }

    async fn purge_board_states(&self, before: Version) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM board_state WHERE node = ? AND version < ? AND EXISTS (
                SELECT 1 FROM board_state n WHERE n.board_id = board_state.board_id
                AND (n.version, n.id) > (board_state.version, board_state.id))",
        )
        .bind(&self.node)
        .bind(before.0)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    async fn purge_codes(&self, before_ms: i64) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let codes = sqlx::query("DELETE FROM board_code WHERE node = ? AND expires_at < ?")
            .bind(&self.node)
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM board_code_use WHERE node = ?
             AND NOT EXISTS (SELECT 1 FROM board_code c WHERE c.id = board_code_use.code_id)",
        )
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(codes.rows_affected())
    }
}

/// The facts of an account that change independently, each in a table of its own.
#[derive(Clone, Copy)]
enum AccountFact {
    Name,
    /// Disabled by an administrator.
    Disabled,
    /// Waiting for approval.
    Pending,
}

/// The newest pairing row of (board `b`, account) joined as `bp`, not removed.
const CURRENT_PAIRING: &str = "NOT EXISTS (SELECT 1 FROM board_pairing n
    WHERE n.board_id = bp.board_id AND n.account_id = bp.account_id
    AND (n.version, n.id) > (bp.version, bp.id)) AND bp.removed = 0";

/// The columns [`pairing_from`] reads, for `bp` of [`CURRENT_PAIRING`]: its board, the newest
/// name the teacher gave it, and when it was paired.
const PAIRING_COLUMNS: &str = "bp.board_id, bp.version,
    (SELECT bn.name FROM board_name bn WHERE bn.board_id = bp.board_id
     AND bn.account_id = bp.account_id ORDER BY bn.version DESC, bn.id DESC LIMIT 1) AS name";

/// Code row `c` is usable: unexpired, unused, its board's newest code, and no newer board
/// drew the same digits.
const USABLE_CODE: &str = "c.expires_at > ?
    AND NOT EXISTS (SELECT 1 FROM board_code_use u WHERE u.code_id = c.id)
    AND NOT EXISTS (SELECT 1 FROM board_code n WHERE n.board_id = c.board_id
        AND (n.version, n.id) > (c.version, c.id))
    AND NOT EXISTS (SELECT 1 FROM board_code o WHERE o.code = c.code
        AND (o.version, o.id) > (c.version, c.id))";

fn pairing_from(row: &SqliteRow) -> StoreResult<BoardPairing> {
    Ok(BoardPairing {
        board: uuid(row, "board_id")?,
        name: row.try_get("name")?,
        paired: Version(row.try_get("version")?),
    })
}

fn code_from(row: &SqliteRow) -> StoreResult<ActiveCode> {
    Ok(ActiveCode {
        id: uuid(row, "id")?,
        board: uuid(row, "board_id")?,
        code: row.try_get("code")?,
        expires_at_ms: row.try_get("expires_at")?,
    })
}

impl SqliteStore {
    /// A revision's content, and whether it is a tombstone.
    async fn revision_content(
        &self,
        lesson: Uuid,
        revision: Uuid,
    ) -> StoreResult<(LessonContent, bool)> {
        let row = sqlx::query(
            "SELECT title, slides, deleted FROM lesson_revision WHERE id = ? AND lesson_id = ?",
        )
        .bind(revision.to_string())
        .bind(lesson.to_string())
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound)?;
        let content = LessonContent {
            title: row.try_get("title")?,
            slides: slides_from(&row)?,
        };
        Ok((content, row.try_get::<i64, _>("deleted")? != 0))
    }

    /// Pairs (`removed` false) or unpairs the board and the teacher.
    async fn insert_pairing(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        account: Uuid,
        board: Uuid,
        removed: bool,
    ) -> StoreResult<Version> {
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM board_pairing WHERE board_id = ? AND account_id = ?",
        )
        .bind(board.to_string())
        .bind(account.to_string())
        .fetch_one(&mut **tx)
        .await?;
        let version = self.hlc.next_after(Version(newest.unwrap_or(0)));
        sqlx::query(
            "INSERT INTO board_pairing (id, board_id, account_id, removed, version, node)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(board.to_string())
        .bind(account.to_string())
        .bind(removed as i64)
        .bind(version.0)
        .bind(&self.node)
        .execute(&mut **tx)
        .await?;
        Ok(version)
    }

    /// Names the board for the teacher; a rename never touches whether they are paired.
    async fn insert_board_name(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        account: Uuid,
        board: Uuid,
        name: &str,
    ) -> StoreResult<()> {
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM board_name WHERE board_id = ? AND account_id = ?",
        )
        .bind(board.to_string())
        .bind(account.to_string())
        .fetch_one(&mut **tx)
        .await?;
        let version = self.hlc.next_after(Version(newest.unwrap_or(0)));
        sqlx::query(
            "INSERT INTO board_name (id, board_id, account_id, name, version, node)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(board.to_string())
        .bind(account.to_string())
        .bind(name)
        .bind(version.0)
        .bind(&self.node)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn current_pairing<'e, E>(
        &self,
        db: E,
        account: Uuid,
        board: Uuid,
    ) -> StoreResult<BoardPairing>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let sql = format!(
            "SELECT {PAIRING_COLUMNS} FROM board_pairing bp
             WHERE bp.board_id = ? AND bp.account_id = ? AND {CURRENT_PAIRING}"
        );
        let row = sqlx::query(&sql)
            .bind(board.to_string())
            .bind(account.to_string())
            .fetch_optional(db)
            .await?
            .ok_or(StoreError::NotFound)?;
        pairing_from(&row)
    }

    async fn usable_code<'e, E>(
        &self,
        db: E,
        filter: &str,
        value: String,
        now_ms: i64,
    ) -> StoreResult<Option<ActiveCode>>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let sql = format!(
            "SELECT c.id, c.board_id, c.code, c.expires_at FROM board_code c
             WHERE c.{filter} = ? AND {USABLE_CODE} ORDER BY c.version DESC, c.id DESC LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(value)
            .bind(now_ms)
            .fetch_optional(db)
            .await?
            .map(|row| code_from(&row))
            .transpose()
    }
}

/// How many revisions the history lists, newest first.
pub const REVISIONS_LISTED: u32 = 100;
