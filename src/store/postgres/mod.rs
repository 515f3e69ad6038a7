//! PostgreSQL, for cluster mode: several app nodes on databases that replicate both ways.
//!
//! The same tables and insert-only rules as SQLite's (`migrations/postgres`), with native
//! types. The queries are the store's (`store/queries`); this backend runs them
//! (`Backend`) on whichever of a node's databases answers (`Databases`), and adds what a
//! cluster must check before it answers a write (that a registration or a lesson save was
//! not overtaken through another database). Migrations keep local bookkeeping in
//! `_sqlx_migrations`, which does not replicate (nor does DDL); `cluster/` is the two-way
//! replication `classcast cluster init` sets up.

pub mod cluster;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use uuid::Uuid;

use super::backend::{Arg, Backend, On};
use super::queries::SqlStore;
use super::sql::OWNS_EMAIL;
use super::state_writer::NewState;
use super::{redact_url, schema, DatabaseStatus, OpenError, StoreResult};
use crate::domain::node::Node;

/// The migrations of `migrations/postgres`, in order (see `store::schema`).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_schema",
        include_str!("../migrations/postgres/0001_schema.sql"),
    ),
    (
        "0002_media",
        include_str!("../migrations/postgres/0002_media.sql"),
    ),
    (
        "0003_media_preview",
        include_str!("../migrations/postgres/0003_media_preview.sql"),
    ),
    (
        "0004_media_keyed_by_id",
        include_str!("../migrations/postgres/0004_media_keyed_by_id.sql"),
    ),
    (
        "0005_board_revocation",
        include_str!("../migrations/postgres/0005_board_revocation.sql"),
    ),
    (
        "0006_mail",
        include_str!("../migrations/postgres/0006_mail.sql"),
    ),
    (
        "0007_lesson_library",
        include_str!("../migrations/postgres/0007_lesson_library.sql"),
    ),
    (
        "0008_lesson_sharing",
        include_str!("../migrations/postgres/0008_lesson_sharing.sql"),
    ),
    (
        "0009_lesson_theme",
        include_str!("../migrations/postgres/0009_lesson_theme.sql"),
    ),
];

/// Every table the migrations create that replicates: all of them but [`LOCAL_TABLES`] (the
/// store suite checks this list against both backends' schemas).
pub const REPLICATED_TABLES: &[&str] = &[
    "account",
    "account_name",
    "account_access",
    "account_pending",
    "account_credential",
    "session",
    "session_revocation",
    "lesson",
    "lesson_revision",
    "lesson_share",
    "lesson_listing",
    "board",
    "board_code",
    "board_code_use",
    "board_pairing",
    "board_name",
    "board_state",
    "board_revocation",
    "node_heartbeat",
    "media",
    "media_chunk",
    "media_upload",
    "media_preview",
    "media_file",
    "media_file_chunk",
    "mail",
    "mail_attempt",
    "account_token",
    "account_token_use",
];

/// Tables of this database alone: never replicated.
pub const LOCAL_TABLES: &[&str] = &["_sqlx_migrations", "schema_migration"];

/// Applies pending migrations to the database `conn` is connected to; returns their names.
/// All in one transaction under an advisory lock: nodes starting at once take turns, and each
/// migration runs once.
pub async fn migrate(conn: &mut PgConnection) -> StoreResult<Vec<String>> {
    let migrator = Migrator::new(schema::Embedded(MIGRATIONS)).await?;
    let mut tx = conn.begin().await?;
    // sqlx creates its table with `IF NOT EXISTS`, which would log a notice on every start.
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('classcast migrations'))")
        .execute(&mut *tx)
        .await?;
    let (made, earlier_release): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('_sqlx_migrations') IS NOT NULL,
                to_regclass('schema_migration') IS NOT NULL",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !made {
        tx.ensure_migrations_table().await?;
    }
    if !made && earlier_release {
        let recorded: Vec<String> = sqlx::query_scalar("SELECT name FROM schema_migration")
            .fetch_all(&mut *tx)
            .await?;
        for (version, description, checksum) in schema::bridge(&migrator, &recorded) {
            sqlx::query(schema::RECORD)
                .bind(version)
                .bind(description)
                .bind(checksum)
                .execute(&mut *tx)
                .await?;
        }
    }
    let applied = schema::apply(&migrator, &mut *tx).await?;
    tx.commit().await?;
    Ok(applied)
}

/// The store on PostgreSQL.
pub(crate) type PgStore = SqlStore<Databases>;

/// The databases a node may use, in order of preference, and the one it uses now: the first
/// that answers. A watcher checks them every [`WATCH_EVERY`], so a node moves to the next
/// database within seconds of its database failing, and back when the preferred one
/// answers again.
pub(crate) struct Databases {
    members: Vec<Database>,
    /// The position of the database in use; a change wakes requests waiting for a
    /// connection to the one before.
    active: watch::Sender<usize>,
}

/// What a connection is for: each has a pool of its own on every database.
#[derive(Clone, Copy)]
enum Role {
    Read,
    Write,
    /// The board-state writer's single connection.
    States,
}

struct Database {
    /// Its URL without a password, for logs and `/readyz`.
    url: String,
    read: PgPool,
    write: PgPool,
    /// The board-state writer's own connection.
    states: PgPool,
    options: PgConnectOptions,
    /// The watcher's connection, made again after each failure: a server that stopped
    /// refuses it at once, where a pool would keep trying until its timeout.
    probe: tokio::sync::Mutex<Option<PgConnection>>,
    /// Why it can never catch up with another database (its provider dropped the WAL it
    /// missed): the node does not serve from it until it is rebuilt.
    cannot_catch_up: parking_lot::Mutex<Option<String>>,
    /// Its replication was looked at since it last answered: a database that comes back is
    /// used again only once it is known to be able to catch up.
    assessed: AtomicBool,
    /// It answered the watcher's last question.
    answered: AtomicBool,
}

impl Database {
    async fn answers(&self) -> bool {
        let mut probe = self.probe.lock().await;
        let ask = async {
            let conn = match probe.as_mut() {
                Some(conn) => conn,
                None => probe.insert(PgConnection::connect_with(&self.options).await?),
            };
            sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
        };
        let answered = matches!(tokio::time::timeout(ANSWER_WITHIN, ask).await, Ok(Ok(())));
        if !answered {
            *probe = None;
            self.assessed.store(false, Ordering::Relaxed);
        }
        self.answered.store(answered, Ordering::Relaxed);
        answered
    }

    /// Re-enables its subscriptions that are down while their provider could resume them,
    /// and finds whether it can catch up with the others.
    async fn assess(&self) {
        let found = match self.write.acquire().await {
            Ok(mut conn) => cluster::mend_subscriptions(&mut conn).await,
            Err(e) => Err(e),
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "cannot check replication");
                return;
            }
        };
        if !found.reenabled.is_empty() {
            tracing::warn!(url = %self.url, subscriptions = ?found.reenabled, "re-enabled replication that was down");
        }
        let mut stuck = self.cannot_catch_up.lock();
        if found.cannot_catch_up != *stuck {
            match &found.cannot_catch_up {
                Some(why) => tracing::error!(url = %self.url, why = %why,
                    "this database can never catch up with the others; not serving from it until it is rebuilt"),
                None => tracing::info!(url = %self.url, "this database can catch up again"),
            }
            *stuck = found.cannot_catch_up;
        }
        self.assessed.store(true, Ordering::Relaxed);
    }

    fn cannot_catch_up(&self) -> Option<String> {
        self.cannot_catch_up.lock().clone()
    }
}

/// How often the watcher asks each database whether it answers.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How often a node looks for replication left down after a database came back.
const MEND_EVERY: Duration = Duration::from_secs(5);
/// How long a database may take to answer the watcher (school networks are slow, a dead
/// server is silent).
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How long a request waits for a connection before it fails with 503, so that requests
/// during a failover end quickly and clients retry.
const ACQUIRE_WITHIN: Duration = Duration::from_secs(3);
/// The longest any statement may run before PostgreSQL cancels it.
const STATEMENT_TIMEOUT: &str = "10s";

impl Databases {
    /// A connection for `role` to the database in use. Waiting for one sends nothing, so when
    /// the node moves to another database meanwhile the wait moves with it: a request that
    /// arrives as its database fails is served by the next one rather than refused.
    async fn connection(&self, role: Role) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + ACQUIRE_WITHIN;
        let mut moved = self.active.subscribe();
        loop {
            let db = &self.members[*moved.borrow_and_update()];
            let pool = match role {
                Role::Read => &db.read,
                Role::Write => &db.write,
                Role::States => &db.states,
            };
            tokio::select! {
                acquired = tokio::time::timeout_at(deadline, pool.acquire()) => {
                    return acquired.unwrap_or(Err(sqlx::Error::PoolTimedOut));
                }
                Ok(()) = moved.changed() => {}
            }
        }
    }

    /// A read connection to each database but the one in use that answered the watcher
    /// last and can catch up: where a write that must not race one made elsewhere is looked
    /// for before it is answered.
    async fn others(&self) -> Vec<PoolConnection<Postgres>> {
        let active = *self.active.borrow();
        let mut others = Vec::new();
        for (i, db) in self.members.iter().enumerate() {
            if i == active || !db.answered.load(Ordering::Relaxed) || db.cannot_catch_up().is_some()
            {
                continue;
            }
            if let Ok(Ok(conn)) = tokio::time::timeout(ANSWER_WITHIN, db.read.acquire()).await {
                others.push(conn);
            }
        }
        others
    }

    /// Whether each database answers now, in order.
    async fn answering(&self) -> Vec<bool> {
        futures_util::future::join_all(self.members.iter().map(Database::answers)).await
    }

    /// Uses the first database that answers and can catch up with the others; keeps the
    /// current one when none does.
    async fn choose(&self) {
        let answering = self.answering().await;
        let mut first = None;
        for (i, (db, up)) in self.members.iter().zip(answering).enumerate() {
            if up && !db.assessed.load(Ordering::Relaxed) {
                db.assess().await;
            }
            if up && db.cannot_catch_up().is_none() {
                first = Some(i);
                break;
            }
        }
        let Some(first) = first else {
            return;
        };
        let before = self.active.send_replace(first);
        if before != first {
            metrics::counter!("classcast_database_failovers_total").increment(1);
            tracing::warn!(
                from = %self.members[before].url,
                to = %self.members[first].url,
                "moving to another database"
            );
        }
    }

    async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            self.choose().await;
        }
    }

    /// Keeps replication between the databases going without anyone's help: after a
    /// database was down, pglogical may leave the others' subscriptions to it down for
    /// minutes; every [`MEND_EVERY`] each answering database has those re-enabled once their
    /// provider answers (`cluster status --repair` does the same by hand). A database found
    /// unable to ever catch up is left for the others.
    async fn mend_replication(self: Arc<Self>) {
        let mut tick = tokio::time::interval(MEND_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.assess().await;
            self.choose().await;
        }
    }

    /// Looks at the replication of each database that answers: see [`Self::mend_replication`].
    async fn assess(&self) {
        for (db, up) in self.members.iter().zip(self.answering().await) {
            if up {
                db.assess().await;
            }
        }
    }
}

/// Makes `tx` count as in progress from now on (it takes its transaction id at once rather
/// than at its first write), so a node waiting on this database for what was in progress
/// when its own row arrived ([`Databases::where_arrived`]) waits for a check `tx` makes next.
async fn in_progress_from_now(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How long a write that must not race one made through another database (a registration,
/// a lesson save) waits for its row to reach the other databases before it is answered.
const SEEN_WITHIN: Duration = Duration::from_secs(2);

impl Databases {
    /// A connection to each other database that answers, once the row `id` of `table`,
    /// written here, has reached it and every transaction in progress there at that moment
    /// has ended: a write of the same thing made on that database, whose check ran before
    /// this row arrived, is committed by then, so both writers see both and can tell which
    /// won (one whose check ran after the arrival saw this row and refused itself).
    /// A database the row has not reached within [`SEEN_WITHIN`] (replication is cut or
    /// slow) is left out: nothing can be told there yet, and the rule of each table decides
    /// once the databases meet.
    async fn where_arrived(
        &self,
        table: &str,
        id: Uuid,
    ) -> StoreResult<Vec<PoolConnection<Postgres>>> {
        let deadline = tokio::time::Instant::now() + SEEN_WITHIN;
        let mut arrived = Vec::new();
        // `table` is one of this crate's table names, never outside input.
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)");
        for mut other in self.others().await {
            // Replication takes about a millisecond or two here: look again soon, then less
            // often.
            let mut wait = Duration::from_millis(1);
            loop {
                let there: bool = sqlx::query_scalar(&sql)
                    .bind(id)
                    .fetch_one(&mut *other)
                    .await?;
                if there {
                    if Self::until_settled(&mut other, deadline).await? {
                        arrived.push(other);
                    }
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(%table, %id, "not replicated yet; cannot check it on every database");
                    break;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(50));
            }
        }
        Ok(arrived)
    }

    /// Waits until every transaction in progress on `conn`'s database now has ended;
    /// false if some are still running at `deadline`.
    async fn until_settled(
        conn: &mut PoolConnection<Postgres>,
        deadline: tokio::time::Instant,
    ) -> StoreResult<bool> {
        let running: Vec<String> =
            sqlx::query_scalar("SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) x")
                .fetch_all(&mut **conn)
                .await?;
        let mut wait = Duration::from_millis(1);
        loop {
            let ended: bool = sqlx::query_scalar(
                "SELECT COALESCE(bool_and(pg_xact_status(x::xid8) IS DISTINCT FROM 'in progress'),
                                 TRUE)
                 FROM unnest($1::text[]) x",
            )
            .bind(&running)
            .fetch_one(&mut **conn)
            .await?;
            if ended {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(50));
        }
    }
}

/// Connects to the databases at `urls` (in order of preference) for `node`; at least one
/// must answer now. The others are connected to when they answer.
pub(crate) async fn open(urls: &[String], node: &Node) -> Result<PgStore, OpenError> {
    let mut members = Vec::new();
    for url in urls {
        let unreachable = |reason: String| OpenError::Unreachable {
            url: redact_url(url),
            reason,
        };
        // An answered write is durable: each commit waits for the WAL's flush.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| unreachable(e.to_string()))?
            .options([
                ("statement_timeout", STATEMENT_TIMEOUT),
                ("synchronous_commit", "on"),
            ]);
        let pool = |connections: u32| {
            PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(ACQUIRE_WITHIN)
                .connect_lazy_with(options.clone())
        };
        members.push(Database {
            url: redact_url(url),
            read: pool(8),
            write: pool(4),
            states: pool(1),
            options,
            probe: Default::default(),
            cannot_catch_up: Default::default(),
            assessed: Default::default(),
            answered: Default::default(),
        });
    }
    let databases = Arc::new(Databases {
        members,
        active: watch::Sender::new(0),
    });
    let answering = databases.answering().await;
    let Some(first) = answering.iter().position(|a| *a) else {
        // Why the first one does not (a refused certificate, a wrong password, …).
        let why = match PgConnection::connect_with(&databases.members[0].options).await {
            Err(e) => format!("no database answers ({e})"),
            Ok(_) => "no database answers".to_owned(),
        };
        return Err(OpenError::Unreachable {
            url: urls
                .iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>()
                .join(", "),
            reason: why,
        });
    };
    databases.active.send_replace(first);
    databases.assess().await;
    databases.choose().await;
    tokio::spawn(databases.clone().watch());
    tokio::spawn(databases.clone().mend_replication());
    Ok(SqlStore::new(databases, node, |writer, queue| {
        tokio::spawn(writer.run(queue));
    }))
}

impl super::backend::Row for PgRow {
    fn id(&self, column: &str) -> StoreResult<Uuid> {
        Ok(self.try_get(column)?)
    }

    fn maybe_id(&self, column: &str) -> StoreResult<Option<Uuid>> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> StoreResult<i64> {
        Ok(self.try_get(column)?)
    }

    fn maybe_int(&self, column: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.try_get(column)?)
    }

    fn text(&self, column: &str) -> StoreResult<String> {
        Ok(self.try_get(column)?)
    }

    fn maybe_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn bytes(&self, column: &str) -> StoreResult<Vec<u8>> {
        Ok(self.try_get(column)?)
    }
}

/// The pool a statement `on` a connection takes one from, or its open transaction.
fn pool_of<'t>(
    on: On<'t, Transaction<'static, Postgres>>,
) -> Result<Role, &'t mut Transaction<'static, Postgres>> {
    match on {
        On::Read => Ok(Role::Read),
        On::Write => Ok(Role::Write),
        On::States => Ok(Role::States),
        On::Tx(tx) => Err(tx),
    }
}

/// `sql` with `args` bound, each as its native type.
fn query<'q>(sql: &'q str, args: &'q [Arg<'q>]) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    args.iter().fold(sqlx::query(sql), |query, arg| match *arg {
        Arg::Id(id) => query.bind(id),
        Arg::MaybeId(id) => query.bind(id),
        Arg::Ids(ids) => query.bind(ids),
        Arg::Int(n) => query.bind(n),
        Arg::MaybeInt(n) => query.bind(n),
        Arg::Flag(on) => query.bind(on),
        Arg::Text(text) => query.bind(text),
        Arg::MaybeText(text) => query.bind(text),
        Arg::Bytes(bytes) => query.bind(bytes),
    })
}

#[async_trait]
impl Backend for Databases {
    type Row = PgRow;
    type Tx = Transaction<'static, Postgres>;

    const ID_TYPE: &'static str = "uuid";

    fn in_ids(column: &str, param: &str) -> String {
        format!("{column} = ANY({param})")
    }

    fn contains(haystack: &str, needle: &str) -> String {
        format!("strpos({haystack}, {needle}) > 0")
    }

    async fn fetch(
        &self,
        on: On<'_, Self::Tx>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> StoreResult<Vec<PgRow>> {
        let query = query(sql, args);
        Ok(match pool_of(on) {
            Err(tx) => query.fetch_all(&mut **tx).await?,
            Ok(role) => query.fetch_all(&mut *self.connection(role).await?).await?,
        })
    }

    async fn execute(&self, on: On<'_, Self::Tx>, sql: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
        let query = query(sql, args);
        let done = match pool_of(on) {
            Err(tx) => query.execute(&mut **tx).await?,
            Ok(role) => query.execute(&mut *self.connection(role).await?).await?,
        };
        Ok(done.rows_affected())
    }

    async fn begin(&self) -> StoreResult<Self::Tx> {
        let conn = self.connection(Role::Write).await?;
        // sqlx's own `Pool::begin` makes a pool connection a transaction this way.
        Ok(Transaction::begin(conn, None).await?)
    }

    async fn commit(tx: Self::Tx) -> StoreResult<()> {
        Ok(tx.commit().await?)
    }

    /// One statement per batch, the rows passed as arrays and unnested.
    async fn insert_states(&self, node: Uuid, rows: &[NewState<'_>]) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let boards: Vec<Uuid> = rows.iter().map(|r| r.board).collect();
        let commands: Vec<Uuid> = rows.iter().map(|r| r.command).collect();
        let states: Vec<&str> = rows.iter().map(|r| r.json).collect();
        let versions: Vec<i64> = rows.iter().map(|r| r.version.0).collect();
        Ok(sqlx::query_scalar(
            "INSERT INTO board_state (id, board_id, command_id, state, version, node)
             SELECT j.id, j.board_id, j.command_id, j.state::jsonb, j.version, $6
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[])
                  AS j(id, board_id, command_id, state, version)
             WHERE NOT EXISTS (SELECT 1 FROM board_state b WHERE b.command_id = j.command_id)
             AND NOT EXISTS (SELECT 1 FROM board_state b
                             WHERE b.board_id = j.board_id AND b.version >= j.version)
             RETURNING command_id",
        )
        .bind(ids)
        .bind(boards)
        .bind(commands)
        .bind(states)
        .bind(versions)
        .bind(node)
        .fetch_all(&mut *self.connection(Role::States).await?)
        .await?)
    }

    async fn mark_in_progress(&self, tx: &mut Self::Tx) -> StoreResult<()> {
        in_progress_from_now(tx).await
    }

    /// A registration of the same address made on another database before this one arrived
    /// there is there by then: of the two, the earliest `(version, id)` owns the address on
    /// every database (docs/architecture.md section 3, rule 2), so exactly one of the two is
    /// answered "created".
    async fn owns_everywhere(&self, id: Uuid, email_norm: &str) -> StoreResult<bool> {
        let sql = format!("SELECT a.id FROM account a WHERE a.email_norm = $1 AND {OWNS_EMAIL}");
        for mut other in self.where_arrived("account", id).await? {
            let owner: Option<Uuid> = sqlx::query_scalar(&sql)
                .bind(email_norm)
                .fetch_optional(&mut *other)
                .await?;
            if owner != Some(id) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A save of the same lesson made on another database at the same moment, with the same
    /// base, came after this one when that database's current revision is another (the newest
    /// `(version, id)` is current everywhere).
    async fn overtaken(&self, lesson: Uuid, revision: Uuid) -> StoreResult<Option<Uuid>> {
        for mut other in self.where_arrived("lesson_revision", revision).await? {
            let current: Uuid = sqlx::query_scalar(
                "SELECT id FROM lesson_revision WHERE lesson_id = $1
                 ORDER BY version DESC, id DESC LIMIT 1",
            )
            .bind(lesson)
            .fetch_one(&mut *other)
            .await?;
            if current != revision {
                return Ok(Some(current));
            }
        }
        Ok(None)
    }

    /// Migrates every database that answers (schema changes do not replicate) and adds the
    /// tables a migration created to a cluster's replication set; a database that is down is
    /// migrated when the node next starts while it answers.
    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let answering = self.answering().await;
        let mut applied = Vec::new();
        for (db, up) in self.members.iter().zip(answering) {
            if !up {
                tracing::warn!(url = %db.url, "database not answering; not migrated now");
                continue;
            }
            let mut conn = db.write.acquire().await?;
            for name in migrate(&mut conn).await? {
                if !applied.contains(&name) {
                    applied.push(name);
                }
            }
            let added = cluster::replicate_new_tables(&mut conn).await?;
            if !added.is_empty() {
                applied.push(format!("replicating {} on {}", added.join(", "), db.url));
            }
        }
        Ok(applied)
    }

    async fn databases(&self) -> Vec<DatabaseStatus> {
        let active = *self.active.borrow();
        let answering = self.answering().await;
        self.members
            .iter()
            .zip(answering)
            .enumerate()
            .map(|(i, (db, answering))| DatabaseStatus {
                url: db.url.clone(),
                answering,
                active: i == active,
                cannot_catch_up: db.cannot_catch_up(),
            })
            .collect()
    }

    async fn replication(&self) -> Vec<super::Replication> {
        let mut subscriptions = Vec::new();
        let mut slots = std::collections::HashMap::new();
        for db in self
            .members
            .iter()
            .filter(|db| db.answered.load(Ordering::Relaxed))
        {
            let found = match tokio::time::timeout(ANSWER_WITHIN, db.read.acquire()).await {
                Ok(Ok(mut conn)) => cluster::replication(&mut conn).await,
                Ok(Err(e)) => Err(e),
                Err(_) => continue,
            };
            match found {
                Ok(found) => {
                    subscriptions.extend(found.subscriptions);
                    slots.extend(
                        found
                            .slots
                            .into_iter()
                            .map(|(slot, bytes, seconds)| (slot, (bytes, seconds))),
                    );
                }
                Err(e) => tracing::debug!(url = %db.url, error = %e, "cannot read replication"),
            }
        }
        subscriptions
            .into_iter()
            .map(|(name, replicating, slot)| {
                let lag = slots.get(&slot);
                super::Replication {
                    name,
                    replicating,
                    lag_bytes: lag.map(|(bytes, _)| *bytes),
                    lag_seconds: lag.and_then(|(_, seconds)| *seconds),
                }
            })
            .collect()
    }

    fn replicated(&self) -> bool {
        true
    }
}
