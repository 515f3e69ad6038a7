//! `classcast cluster status`: what each database says of itself and of its replication,
//! and `--repair`, which re-enables a subscription that is down while its provider answers.

use sqlx::{PgConnection, Row};

use super::subscriptions::{diagnose, lost_at_provider, mend, subscriptions_of, Stalled};
use super::{connect, misset_settings, Member};
use crate::store::redact_url;

/// What `classcast cluster status` reports of one database.
#[derive(Debug)]
pub struct MemberStatus {
    pub url: String,
    /// Why not, when it does not answer.
    pub report: Result<MemberReport, String>,
}

#[derive(Debug)]
pub struct MemberReport {
    pub node: String,
    /// This database's clock minus the local one, in milliseconds (± half a round trip).
    pub clock_skew_ms: i64,
    /// Each setting cluster mode needs that this server has otherwise, with the fix.
    pub settings: Vec<String>,
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Each replication slot that other databases read from this one.
    pub slots: Vec<SlotStatus>,
    /// The largest WAL a slot may keep (`max_slot_wal_keep_size`), in bytes.
    pub slot_wal_limit: i64,
}

#[derive(Debug)]
pub struct SubscriptionStatus {
    pub name: String,
    /// pglogical's word: `replicating`, `initializing`, `down`, `disabled`.
    pub status: String,
    /// Why it does not replicate, when it does not.
    pub stalled: Option<Stalled>,
    /// Set when `--repair` re-enabled it.
    pub repaired: bool,
}

#[derive(Debug)]
pub struct SlotStatus {
    pub name: String,
    pub active: bool,
    /// WAL written here and not yet confirmed by the reader.
    pub lag_bytes: i64,
    /// How long ago the reader's last applied change was written here, if it reports it.
    pub lag_seconds: Option<f64>,
    /// WAL this server keeps for the reader.
    pub retained_bytes: i64,
}

/// What the metrics show of a database's replication: its subscriptions (with the slot each
/// reads on its provider) and the slots other databases read from it, with their lag.
pub(crate) struct Replication {
    /// (name, replicating, slot on the provider)
    pub subscriptions: Vec<(String, bool, String)>,
    /// (slot, WAL not confirmed by its reader in bytes, the reader's replay lag in seconds)
    pub slots: Vec<(String, i64, Option<f64>)>,
}

/// What `conn`'s database says of its replication, for the metrics: the queries of
/// `cluster status`, without asking the providers why a subscription is down.
pub(crate) async fn replication(conn: &mut PgConnection) -> Result<Replication, sqlx::Error> {
    let subscriptions = subscriptions_of(conn)
        .await?
        .into_iter()
        .map(|s| {
            let replicating = s.status == "replicating";
            (s.name, replicating, s.slot)
        })
        .collect();
    let slots = sqlx::query(SLOTS)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| (row.get("name"), row.get("lag"), row.get("lag_seconds")))
        .collect();
    Ok(Replication {
        subscriptions,
        slots,
    })
}

/// Each pglogical slot of a database: who reads it, how far behind, how much WAL it keeps.
const SLOTS: &str = "SELECT s.slot_name::text AS name, s.active,
        COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint AS lag,
        COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint AS retained,
        extract(epoch FROM r.replay_lag)::float8 AS lag_seconds
    FROM pg_replication_slots s
    LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
    WHERE s.plugin = 'pglogical_output' ORDER BY 1";

/// The state of replication on each of `urls`. With `repair`, a subscription that is down
/// while its provider answers is re-enabled at once (pglogical would otherwise retry after a
/// back-off of up to 3 minutes).
pub async fn status(urls: &[String], repair: bool) -> Vec<MemberStatus> {
    let mut out = Vec::new();
    for url in urls {
        let report = match connect(url).await {
            Ok(mut member) => report(&mut member, repair).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push(MemberStatus {
            url: redact_url(url),
            report,
        });
    }
    out
}

async fn report(member: &mut Member, repair: bool) -> Result<MemberReport, sqlx::Error> {
    let asked = crate::domain::hlc::wall_millis();
    let theirs: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(&mut member.conn)
            .await?;
    let answered = crate::domain::hlc::wall_millis();
    let clock_skew_ms = theirs - (asked + answered) / 2;
    let mut subscriptions = Vec::new();
    for subscription in subscriptions_of(&mut member.conn).await? {
        let (stalled, repaired) = if let Some(why) = lost_at_provider(&subscription, true).await {
            (Some(Stalled::CannotCatchUp(why)), None)
        } else if repair {
            mend(&mut member.conn, &subscription, true).await?.unzip()
        } else if subscription.status == "replicating" {
            (None, None)
        } else {
            (
                Some(diagnose(&mut member.conn, &subscription, true).await),
                None,
            )
        };
        subscriptions.push(SubscriptionStatus {
            name: subscription.name,
            status: subscription.status,
            stalled,
            repaired: repaired.unwrap_or(false),
        });
    }
    let settings = misset_settings(&mut member.conn)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    let slots = sqlx::query(SLOTS)
        .fetch_all(&mut member.conn)
        .await?
        .iter()
        .map(|row| SlotStatus {
            name: row.get("name"),
            active: row.get("active"),
            lag_bytes: row.get("lag"),
            lag_seconds: row.get("lag_seconds"),
            retained_bytes: row.get("retained"),
        })
        .collect();
    let slot_wal_limit: i64 = sqlx::query_scalar(
        "SELECT setting::bigint * CASE unit WHEN 'MB' THEN 1048576 WHEN 'kB' THEN 1024 ELSE 1 END
         FROM pg_settings WHERE name = 'max_slot_wal_keep_size'",
    )
    .fetch_one(&mut member.conn)
    .await?;
    Ok(MemberReport {
        node: member.node.clone(),
        clock_skew_ms,
        settings,
        subscriptions,
        slots,
        slot_wal_limit,
    })
}
