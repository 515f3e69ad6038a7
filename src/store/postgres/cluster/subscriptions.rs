//! The subscriptions of a database: their state, why one does not replicate (as far as its
//! provider shows it), and re-enabling one that is down while its provider could resume it.
//! What `cluster init`, `cluster status` and the nodes' upkeep share.

use std::time::Duration;

use sqlx::{PgConnection, Row};

use super::{connect, has_pglogical, misset_settings};
use crate::store::redact_url;

/// One pglogical subscription of a database, as `show_subscription_status` tells it.
pub(super) struct Subscription {
    pub(super) name: String,
    /// pglogical's word: `replicating`, `initializing`, `down`, `disabled`.
    pub(super) status: String,
    provider_dsn: String,
    /// The replication slot on the provider that it reads.
    pub(super) slot: String,
}

/// Each subscription of the database `conn` is connected to; none where it is no pglogical
/// node (a single database, or one that a failed `cluster init` left without its node).
pub(super) async fn subscriptions_of(
    conn: &mut PgConnection,
) -> Result<Vec<Subscription>, sqlx::Error> {
    if !has_pglogical(conn).await?
        || !sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pglogical.local_node)")
            .fetch_one(&mut *conn)
            .await?
    {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT subscription_name::text AS name, status::text AS status,
                provider_dsn::text AS provider, slot_name::text AS slot
         FROM pglogical.show_subscription_status() ORDER BY 1",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| Subscription {
            name: row.get("name"),
            status: row.get("status"),
            provider_dsn: row.get("provider"),
            slot: row.get("slot"),
        })
        .collect())
}

/// How long a provider may take to accept a connection before it counts as still down.
const PROVIDER_ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// Why a subscription does not replicate, as far as its provider shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stalled {
    /// The provider does not answer (yet): pglogical resumes once it does.
    ProviderDown(String),
    /// The provider refuses what pglogical needs (a setting): named, with the fix.
    ProviderMisset(String),
    /// The provider no longer keeps the WAL this subscriber has not received (its slot
    /// passed `max_slot_wal_keep_size`) or has no slot for it: it can never catch up, and
    /// must be rebuilt.
    CannotCatchUp(String),
    /// The provider is ready: the subscriber's own apply worker stopped (its last error, from
    /// the subscriber's log where PostgreSQL lets us read it).
    Stopped(Option<String>),
}

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stalled::ProviderDown(why) => write!(f, "its provider does not answer ({why})"),
            Stalled::ProviderMisset(why) => write!(f, "its provider refuses: {why}"),
            Stalled::CannotCatchUp(why) => write!(
                f,
                "it can never catch up: {why}; rebuild this database (docs/deploy-cluster.md, \
                 \"Rebuild a database\")"
            ),
            Stalled::Stopped(Some(error)) => write!(f, "its last error: {error}"),
            Stalled::Stopped(None) => {
                write!(f, "the PostgreSQL log of this database says why")
            }
        }
    }
}

/// Why `subscription` (of the database `conn` is connected to) is not replicating.
/// `settled` as in [`lost_at_provider`]: `cluster init` passes false.
pub(super) async fn diagnose(
    conn: &mut PgConnection,
    subscription: &Subscription,
    settled: bool,
) -> Stalled {
    let provider =
        tokio::time::timeout(PROVIDER_ANSWERS_WITHIN, connect(&subscription.provider_dsn)).await;
    let mut provider = match provider {
        Ok(Ok(member)) => member,
        Ok(Err(e)) => return Stalled::ProviderDown(e.to_string()),
        Err(_) => {
            return Stalled::ProviderDown(format!(
                "no answer within {} s",
                PROVIDER_ANSWERS_WITHIN.as_secs()
            ))
        }
    };
    if let Ok(misset) = misset_settings(&mut provider.conn).await {
        if let Some(first) = misset.first() {
            return Stalled::ProviderMisset(format!(
                "{}: {first}",
                redact_url(&subscription.provider_dsn)
            ));
        }
    }
    // While `cluster init` runs, a new subscription's worker may go down before the slot it
    // reads exists; re-enabling it is what brings it up.
    let missing_counts = settled && subscription.status != "initializing";
    if let Some(why) = slot_lost(&mut provider.conn, subscription, missing_counts).await {
        return Stalled::CannotCatchUp(why);
    }
    Stalled::Stopped(last_logged_error(conn).await)
}

/// Why the provider of `subscription` can no longer give it what it missed, if it answers
/// and cannot. Asked of the provider whatever the subscription says: a subscriber that has
/// just started may call itself replicating until its first read from a lost slot fails.
/// `cluster init` passes `settled` false: a subscription it made reads a slot its worker
/// makes shortly after.
pub(super) async fn lost_at_provider(subscription: &Subscription, settled: bool) -> Option<String> {
    // A new subscription's slot is made while it first copies.
    let missing_counts = settled && subscription.status != "initializing";
    let provider =
        tokio::time::timeout(PROVIDER_ANSWERS_WITHIN, connect(&subscription.provider_dsn)).await;
    let mut provider = provider.ok()?.ok()?;
    slot_lost(&mut provider.conn, subscription, missing_counts).await
}

/// Why the provider of `subscription` (connected to by `provider`) can no longer give it
/// what it missed, if it cannot: the slot it reads is gone, or lost the WAL it needs.
async fn slot_lost(
    provider: &mut PgConnection,
    subscription: &Subscription,
    missing_counts: bool,
) -> Option<String> {
    let slot: Option<Option<String>> = sqlx::query_scalar(
        "SELECT wal_status::text FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(&subscription.slot)
    .fetch_optional(provider)
    .await
    .ok()?;
    let at = redact_url(&subscription.provider_dsn);
    match slot {
        None if missing_counts => Some(format!(
            "{at} has no replication slot {} for it",
            subscription.slot
        )),
        Some(Some(wal)) if wal == "lost" => Some(format!(
            "{at} dropped the WAL it had not received (slot {} passed max_slot_wal_keep_size)",
            subscription.slot
        )),
        _ => None,
    }
}

/// The last `ERROR` line of the server log of `conn`'s server, where PostgreSQL writes its
/// log to a file it can name (`logging_collector = on`) and lets this role read it.
async fn last_logged_error(conn: &mut PgConnection) -> Option<String> {
    const TAIL: i64 = 64 * 1024;
    let tail: Option<String> = sqlx::query_scalar(
        "SELECT pg_read_file(f, greatest(0, (pg_stat_file(f)).size - $1), $1)
         FROM pg_current_logfile() AS f WHERE f IS NOT NULL",
    )
    .bind(TAIL)
    .fetch_optional(conn)
    .await
    .ok()
    .flatten();
    let tail = tail?;
    let line = tail.lines().rev().find(|l| l.contains("ERROR:"))?;
    let message = line[line.find("ERROR:")? + "ERROR:".len()..].trim();
    Some(message.chars().take(300).collect())
}

/// For a subscription that does not replicate: why, and whether it was re-enabled now.
/// It is re-enabled when it is down while its provider could resume it, so it resumes now
/// rather than after pglogical's back-off (up to 3 minutes); one that can never catch up
/// is left down, since re-enabling it would only fail again. Disabling and enabling again
/// from several places at once still ends enabled.
pub(super) async fn mend(
    conn: &mut PgConnection,
    subscription: &Subscription,
    settled: bool,
) -> Result<Option<(Stalled, bool)>, sqlx::Error> {
    if subscription.status == "replicating" {
        return Ok(None);
    }
    let stalled = diagnose(conn, subscription, settled).await;
    if subscription.status != "down" || !matches!(stalled, Stalled::Stopped(_)) {
        return Ok(Some((stalled, false)));
    }
    sqlx::query("SELECT pglogical.alter_subscription_disable($1, true)")
        .bind(&subscription.name)
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pglogical.alter_subscription_enable($1, true)")
        .bind(&subscription.name)
        .execute(&mut *conn)
        .await?;
    Ok(Some((stalled, true)))
}

/// What a node learned of the replication of one database it uses.
#[derive(Debug, Default)]
pub(in crate::store::postgres) struct Replication {
    /// Subscriptions it re-enabled now (down while their provider could resume them).
    pub reenabled: Vec<String>,
    /// Why the database can never catch up with another, when it cannot: the node must not
    /// serve from it.
    pub cannot_catch_up: Option<String>,
}

/// What a node does for the databases it uses: re-enables every subscription of the
/// database `conn` is connected to that is down while its provider answers (see [`mend`]),
/// and finds whether one can never catch up. A database without pglogical (a single
/// database) has no subscriptions.
pub(in crate::store::postgres) async fn mend_subscriptions(
    conn: &mut PgConnection,
) -> Result<Replication, sqlx::Error> {
    let mut found = Replication::default();
    for subscription in subscriptions_of(conn).await? {
        if let Some(why) = lost_at_provider(&subscription, true).await {
            found.cannot_catch_up = Some(format!(
                "subscription {}: {}",
                subscription.name,
                Stalled::CannotCatchUp(why)
            ));
            continue;
        }
        if let Some((_, true)) = mend(conn, &subscription, true).await? {
            found.reenabled.push(subscription.name);
        }
    }
    Ok(found)
}
