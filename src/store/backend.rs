//! What a database engine must provide for the one store body in `queries/` to run on it: how
//! a statement runs (on a read connection, the write connection or a write transaction), how
//! values are bound and read back, and the few places where SQLite and PostgreSQL really
//! differ (how ids are stored, "is one of these ids", finding text in text, and what a
//! cluster checks before it answers a write). Every query lives in `queries/`, written once
//! with `$n` placeholders, which both drivers bind; nothing here holds a query of the store.
//!
//! Values travel as [`Arg`]s and come back through [`Row`]: sqlx's generic `Database` would
//! need a dozen higher-ranked bounds on every function, and a bind costs nothing beside the
//! round trip to the database.

use async_trait::async_trait;
use uuid::Uuid;

use super::{DatabaseStatus, StoreResult};
use crate::store::state_writer::NewState;

/// A value bound to a statement's next `$n`.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// A row's key or a reference to one: TEXT on SQLite, `uuid` on PostgreSQL.
    Id(Uuid),
    MaybeId(Option<Uuid>),
    /// Several ids, for [`Backend::in_ids`].
    Ids(&'a [Uuid]),
    Int(i64),
    MaybeInt(Option<i64>),
    Flag(bool),
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Bytes(&'a [u8]),
}

/// Where a statement runs.
pub(crate) enum On<'t, T> {
    /// A connection of the read pool.
    Read,
    /// The write connection, outside a transaction.
    Write,
    /// The board-state writer's own connection.
    States,
    /// An open write transaction.
    Tx(&'t mut T),
}

/// A row read back: columns by name (scalars are given one with `AS`), each as the type the
/// store uses, whatever the engine stores (flags are 0/1 on SQLite, ids are text there).
pub(crate) trait Row: Send + Sync {
    fn id(&self, column: &str) -> StoreResult<Uuid>;
    fn maybe_id(&self, column: &str) -> StoreResult<Option<Uuid>>;
    /// An integer column; PostgreSQL's must be `bigint` (cast sums and `integer`s).
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn maybe_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, column: &str) -> StoreResult<bool>;
    fn text(&self, column: &str) -> StoreResult<String>;
    fn maybe_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn bytes(&self, column: &str) -> StoreResult<Vec<u8>>;
}

/// A database engine under the store.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    type Row: Row;
    /// A write transaction; dropped without [`Backend::commit`], it rolls back.
    type Tx: Send;

    /// The SQL type ids are stored as, for `CAST(… AS …)`.
    const ID_TYPE: &'static str;
    /// SQL that is true when `column` is one of the ids bound as `param` (an [`Arg::Ids`]).
    fn in_ids(column: &str, param: &str) -> String;
    /// SQL that is true when the text `haystack` contains the text `needle`.
    fn contains(haystack: &str, needle: &str) -> String;

    /// Runs `sql` and returns its rows.
    async fn fetch(
        &self,
        on: On<'_, Self::Tx>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> StoreResult<Vec<Self::Row>>;
    /// Runs `sql` and returns how many rows it changed.
    async fn execute(&self, on: On<'_, Self::Tx>, sql: &str, args: &[Arg<'_>]) -> StoreResult<u64>;
    /// Opens a write transaction, which takes its turn among writers at once.
    async fn begin(&self) -> StoreResult<Self::Tx>;
    async fn commit(tx: Self::Tx) -> StoreResult<()>;

    /// Inserts the board-writer's batch in one statement: every row whose command id is new
    /// and whose version is above every stored state of its board; returns the command ids
    /// it stored.
    async fn insert_states(&self, node: Uuid, rows: &[NewState<'_>]) -> StoreResult<Vec<Uuid>>;

    /// Makes `tx` count as in progress from now on for a writer on another database that
    /// waits for what was in progress here (see [`Backend::owns_everywhere`]); nothing on a
    /// database of its own.
    async fn mark_in_progress(&self, _tx: &mut Self::Tx) -> StoreResult<()> {
        Ok(())
    }
    /// Whether account `id`, just registered, owns its address on every other database that
    /// answers once it has arrived there; on a database of its own, it does.
    async fn owns_everywhere(&self, _id: Uuid, _email_norm: &str) -> StoreResult<bool> {
        Ok(true)
    }
    /// The revision of `lesson` that is current on another database once `revision`, just
    /// saved here, has reached it, when that is not `revision`; on a database of its own,
    /// none.
    async fn overtaken(&self, _lesson: Uuid, _revision: Uuid) -> StoreResult<Option<Uuid>> {
        Ok(None)
    }

    /// Applies pending schema migrations; returns the names of those applied now.
    async fn migrate(&self) -> StoreResult<Vec<String>>;
    /// Each database this backend may use, whether it answers, and which one it uses.
    async fn databases(&self) -> Vec<DatabaseStatus>;
    /// Whether rows written elsewhere may still be on their way here.
    fn replicated(&self) -> bool {
        false
    }
}
