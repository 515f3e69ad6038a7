//! Two-way replication between the databases of a cluster, as `classcast cluster init` sets
//! it up with pglogical: every database gets the schema, a pglogical node, a replication set
//! with every replicated table, and a subscription to each other database that forwards
//! nothing it did not write itself (`forward_origins := '{}'`), so changes never loop.
//!
//! Every check runs on every database before anything changes, and each step looks before it
//! acts, so a second run changes nothing and says so. By design nothing conflicts (shared
//! design, section 3); pglogical's `last_update_wins` with commit timestamps is only a net.

use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};

use super::{migrate, LOCAL_TABLES, REPLICATED_TABLES};
use crate::store::redact_url;

/// The pglogical replication set holding every replicated table.
const SET: &str = "classcast";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("a cluster needs at least two databases: give --database once for each")]
    TooFew,
    #[error("{url}: cannot connect: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "{url}: {setting} is {found:?}; set `{line}` in postgresql.conf and restart PostgreSQL"
    )]
    Setting {
        url: String,
        setting: &'static str,
        found: String,
        line: &'static str,
    },
    #[error("{url}: pglogical is not installed on this server (Debian: apt-get install postgresql-15-pglogical)")]
    NoPglogical { url: String },
    #[error("{url}: max_slot_wal_keep_size is unlimited, so a database that stays down would fill this server's disk with WAL; set `max_slot_wal_keep_size = 10GB` (or what the disk allows) in postgresql.conf and reload")]
    UnboundedSlots { url: String },
    #[error("{url}: the database holds tables that are not classcast's ({tables}); give classcast a database of its own")]
    ForeignTables { url: String, tables: String },
    #[error("{url}: the database already belongs to another cluster (pglogical node {node}); rebuild it into a new, empty database to join this one")]
    OtherCluster { url: String, node: String },
    #[error("cannot add {new} while {holder} also holds classcast data or is in the cluster: a new database copies what one other database holds, so add it while exactly one other database is in the list (docs/deploy-cluster.md, \"Rebuild a database\")")]
    JoinWithData { new: String, holder: String },
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
}

/// One database of the cluster.
struct Member {
    url: String,
    /// Its pglogical node name: derived from where it is, so every run names it the same.
    node: String,
    conn: PgConnection,
}

impl Member {
    fn failed(&self) -> impl Fn(sqlx::Error) -> ClusterError + '_ {
        |e| ClusterError::Failed {
            url: redact_url(&self.url),
            reason: e.to_string(),
        }
    }
}

/// Sets up (or checks) replication between every two of `urls`; returns what it changed.
pub async fn init(urls: &[String]) -> Result<Vec<String>, ClusterError> {
    if urls.len() < 2 {
        return Err(ClusterError::TooFew);
    }
    let mut members = Vec::new();
    for url in urls {
        members.push(connect(url).await?);
    }
    let names: Vec<String> = members.iter().map(|m| m.node.clone()).collect();
    let mut found = Vec::new();
    for member in &mut members {
        found.push(check(member, &names).await?);
    }
    // Subscriptions carry what is written from now on; what a database holds already reaches
    // a new member only by a copy, and a copy from one database is complete only if no other
    // database holds rows (or took writes) it has not.
    let holders: Vec<usize> = (0..found.len()).filter(|&i| found[i].holds_rows).collect();
    let new = found.iter().position(|f| !f.joined);
    let conflict = match (new, holders.as_slice()) {
        (None, _) | (Some(_), []) => None,
        (Some(new), [_, second, ..]) => Some((new, *second)),
        // A holder new to the cluster would not reach the members already in it.
        (Some(_), [holder]) if !found[*holder].joined => (0..found.len())
            .find(|&i| i != *holder && found[i].joined)
            .map(|joined| (*holder, joined)),
        (Some(_), [_]) => None,
    };
    if let Some((new, other)) = conflict {
        return Err(ClusterError::JoinWithData {
            new: redact_url(&members[new].url),
            holder: redact_url(&members[other].url),
        });
    }
    let copy_from = match holders.as_slice() {
        [holder] => Some(members[*holder].node.clone()),
        _ => None,
    };
    let mut changes = Vec::new();
    for member in &mut members {
        prepare(member, &mut changes).await?;
    }
    let providers: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.node.clone(), m.url.clone()))
        .collect();
    let mut copying = Vec::new();
    for (i, member) in members.iter_mut().enumerate() {
        let own = member.node.clone();
        for (provider, dsn) in providers.iter().filter(|(node, _)| *node != own) {
            let copy = !found[i].joined && copy_from.as_ref() == Some(provider);
            if subscribe(member, provider, dsn, copy, &mut changes).await? && copy {
                copying.push(i);
            }
        }
    }
    for i in copying {
        let source = copy_from.as_deref().unwrap_or_default();
        let copied = until_copied(&mut members[i], source).await?;
        changes.push(format!(
            "{}: copied what {} holds ({copied})",
            redact_url(&members[i].url),
            source
        ));
    }
    for member in &mut members {
        until_replicating(member).await?;
    }
    Ok(changes)
}

/// How long `cluster init` waits for every subscription of a database to replicate.
const REPLICATING_WITHIN: Duration = Duration::from_secs(60);

/// Waits until every subscription of `member` replicates, re-enabling one that went down
/// meanwhile (a worker that started before its provider's slot was ready backs off for
/// minutes otherwise).
async fn until_replicating(member: &mut Member) -> Result<(), ClusterError> {
    let started = std::time::Instant::now();
    loop {
        let subscriptions = subscriptions_of(&mut member.conn)
            .await
            .map_err(member.failed())?;
        let waiting: Vec<(String, String)> = subscriptions
            .iter()
            .filter(|(_, status, _)| status != "replicating")
            .map(|(name, status, _)| (name.clone(), status.clone()))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > REPLICATING_WITHIN {
            return Err(ClusterError::Failed {
                url: redact_url(&member.url),
                reason: format!(
                    "subscriptions not replicating after {} s: {waiting:?}; see `cluster status` and the PostgreSQL logs",
                    REPLICATING_WITHIN.as_secs()
                ),
            });
        }
        for (name, status, provider) in &subscriptions {
            mend(&mut member.conn, name, status, provider)
                .await
                .map_err(member.failed())?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn connect(url: &str) -> Result<Member, ClusterError> {
    let unreachable = |reason: String| ClusterError::Unreachable {
        url: redact_url(url),
        reason,
    };
    let options = PgConnectOptions::from_str(url).map_err(|e| unreachable(e.to_string()))?;
    let place = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    );
    let conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let digest = Sha256::digest(place.as_bytes());
    Ok(Member {
        url: url.to_owned(),
        node: format!("classcast_{}", hex::encode(&digest[..6])),
        conn,
    })
}

/// What [`check`] found of one database.
struct Found {
    /// Its pglogical node is one of this cluster's: `cluster init` ran on it before.
    joined: bool,
    /// A replicated table holds a row.
    holds_rows: bool,
}

/// Everything that must hold before anything changes on any database.
async fn check(member: &mut Member, cluster: &[String]) -> Result<Found, ClusterError> {
    let url = redact_url(&member.url);
    let settings = [
        ("wal_level", "wal_level = logical", "logical"),
        (
            "shared_preload_libraries",
            "shared_preload_libraries = 'pglogical'",
            "pglogical",
        ),
        (
            "track_commit_timestamp",
            "track_commit_timestamp = on",
            "on",
        ),
    ];
    for (setting, line, wanted) in settings {
        let found: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(&mut member.conn)
            .await
            .map_err(member.failed())?;
        if !found.split(',').any(|v| v.trim() == wanted) {
            return Err(ClusterError::Setting {
                url,
                setting,
                found,
                line,
            });
        }
    }
    let keep: String = sqlx::query_scalar("SHOW max_slot_wal_keep_size")
        .fetch_one(&mut member.conn)
        .await
        .map_err(member.failed())?;
    if keep == "-1" {
        return Err(ClusterError::UnboundedSlots { url });
    }
    let available: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pglogical')",
    )
    .fetch_one(&mut member.conn)
    .await
    .map_err(member.failed())?;
    if !available {
        return Err(ClusterError::NoPglogical { url });
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut member.conn)
    .await
    .map_err(member.failed())?;
    let foreign: Vec<&str> = tables
        .iter()
        .map(String::as_str)
        .filter(|t| !REPLICATED_TABLES.contains(t) && !LOCAL_TABLES.contains(t))
        .collect();
    if !foreign.is_empty() {
        return Err(ClusterError::ForeignTables {
            url,
            tables: foreign.join(", "),
        });
    }
    let installed = has_pglogical(&mut member.conn)
        .await
        .map_err(member.failed())?;
    if installed {
        let nodes: Vec<String> = sqlx::query_scalar(
            "SELECT n.node_name::text FROM pglogical.node n
             WHERE n.node_id IN (SELECT node_id FROM pglogical.local_node)
             UNION SELECT p.node_name::text FROM pglogical.subscription s
             JOIN pglogical.node p ON p.node_id = s.sub_origin",
        )
        .fetch_all(&mut member.conn)
        .await
        .map_err(member.failed())?;
        if let Some(node) = nodes.into_iter().find(|n| !cluster.contains(n)) {
            return Err(ClusterError::OtherCluster { url, node });
        }
    }
    let joined = installed
        && sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pglogical.local_node)")
            .fetch_one(&mut member.conn)
            .await
            .map_err(member.failed())?;
    let ours: Vec<String> = tables
        .iter()
        .filter(|t| REPLICATED_TABLES.contains(&t.as_str()))
        .map(|t| format!("EXISTS (SELECT 1 FROM {t})"))
        .collect();
    let holds_rows = !ours.is_empty()
        && sqlx::query_scalar(&format!("SELECT {}", ours.join(" OR ")))
            .fetch_one(&mut member.conn)
            .await
            .map_err(member.failed())?;
    Ok(Found { joined, holds_rows })
}

/// The schema, the pglogical node and the replication set of one database.
async fn prepare(member: &mut Member, changes: &mut Vec<String>) -> Result<(), ClusterError> {
    let url = redact_url(&member.url);
    let applied = migrate(&mut member.conn).await.map_err(member.failed())?;
    if !applied.is_empty() {
        changes.push(format!("{url}: applied {}", applied.join(", ")));
    }
    let installed = has_pglogical(&mut member.conn)
        .await
        .map_err(member.failed())?;
    if !installed {
        sqlx::query("CREATE EXTENSION pglogical")
            .execute(&mut member.conn)
            .await
            .map_err(member.failed())?;
        changes.push(format!("{url}: installed pglogical"));
    }
    let has_node: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pglogical.local_node)")
        .fetch_one(&mut member.conn)
        .await
        .map_err(member.failed())?;
    if !has_node {
        sqlx::query("SELECT pglogical.create_node(node_name := $1, dsn := $2)")
            .bind(&member.node)
            .bind(&member.url)
            .execute(&mut member.conn)
            .await
            .map_err(member.failed())?;
        changes.push(format!("{url}: created pglogical node {}", member.node));
    }
    let has_set: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pglogical.replication_set WHERE set_name = $1)",
    )
    .bind(SET)
    .fetch_one(&mut member.conn)
    .await
    .map_err(member.failed())?;
    if !has_set {
        sqlx::query("SELECT pglogical.create_replication_set(set_name := $1)")
            .bind(SET)
            .execute(&mut member.conn)
            .await
            .map_err(member.failed())?;
        changes.push(format!("{url}: created replication set {SET}"));
    }
    let missing = replicate_new_tables(&mut member.conn)
        .await
        .map_err(member.failed())?;
    if !missing.is_empty() {
        changes.push(format!("{url}: replicating {}", missing.join(", ")));
    }
    Ok(())
}

/// Whether pglogical is installed in the database `conn` is connected to (its catalog must
/// exist before a statement may name it).
async fn has_pglogical(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pglogical')")
        .fetch_one(conn)
        .await
}

/// Adds every replicated table that the replication set of this database lacks (a table a
/// migration created since `cluster init`); returns their names. A database without the
/// set (not in a cluster) is left alone.
pub(super) async fn replicate_new_tables(
    conn: &mut PgConnection,
) -> Result<Vec<&'static str>, sqlx::Error> {
    if !has_pglogical(conn).await? {
        return Ok(Vec::new());
    }
    let clustered: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pglogical.replication_set WHERE set_name = $1)",
    )
    .bind(SET)
    .fetch_one(&mut *conn)
    .await?;
    if !clustered {
        return Ok(Vec::new());
    }
    let in_set: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pglogical.replication_set_table r
         JOIN pglogical.replication_set s ON s.set_id = r.set_id
         JOIN pg_class c ON c.oid = r.set_reloid WHERE s.set_name = $1",
    )
    .bind(SET)
    .fetch_all(&mut *conn)
    .await?;
    let missing: Vec<&str> = REPLICATED_TABLES
        .iter()
        .copied()
        .filter(|t| !in_set.iter().any(|s| s == t))
        .collect();
    for table in &missing {
        sqlx::query("SELECT pglogical.replication_set_add_table($1, $2::regclass)")
            .bind(SET)
            .bind(format!("public.{table}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(missing)
}

/// `member` follows what `provider` (at `dsn`) writes itself.
/// `member` follows what `provider` (at `dsn`) writes itself, first copying what the provider
/// holds when `copy`; returns whether it subscribed now.
async fn subscribe(
    member: &mut Member,
    provider: &str,
    dsn: &str,
    copy: bool,
    changes: &mut Vec<String>,
) -> Result<bool, ClusterError> {
    // pglogical names the provider's replication slot after the subscription: with three
    // databases or more, two subscribers to one provider need different names.
    let name = subscription_name(provider, &member.node);
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pglogical.subscription s
                        JOIN pglogical.node p ON p.node_id = s.sub_origin
                        WHERE p.node_name = $1)",
    )
    .bind(provider)
    .fetch_one(&mut member.conn)
    .await
    .map_err(member.failed())?;
    if exists {
        return Ok(false);
    }
    sqlx::query(
        "SELECT pglogical.create_subscription(subscription_name := $1, provider_dsn := $2,
             replication_sets := ARRAY[$3], synchronize_structure := false,
             synchronize_data := $4, forward_origins := '{}')",
    )
    .bind(&name)
    .bind(dsn)
    .bind(SET)
    .bind(copy)
    .execute(&mut member.conn)
    .await
    .map_err(member.failed())?;
    changes.push(format!(
        "{}: subscribed to {}",
        redact_url(&member.url),
        redact_url(dsn)
    ));
    Ok(true)
}

fn subscription_name(provider: &str, subscriber: &str) -> String {
    format!("{provider}_to_{subscriber}")
}

/// The longest `cluster init` waits for a new member's copy of the data.
const COPY_WITHIN: Duration = Duration::from_secs(30 * 60);

/// Waits until `member` has copied what `provider` holds and follows it; returns how long
/// that took, for the report.
async fn until_copied(member: &mut Member, provider: &str) -> Result<String, ClusterError> {
    let name = subscription_name(provider, &member.node);
    let started = std::time::Instant::now();
    loop {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status::text FROM pglogical.show_subscription_status($1)")
                .bind(&name)
                .fetch_optional(&mut member.conn)
                .await
                .map_err(member.failed())?;
        if status.as_deref() == Some("replicating") {
            return Ok(format!("{:.1} s", started.elapsed().as_secs_f64()));
        }
        if started.elapsed() > COPY_WITHIN {
            return Err(ClusterError::Failed {
                url: redact_url(&member.url),
                reason: format!(
                    "still copying from {provider} after {} minutes (subscription {name} is {}); \
                     see `cluster status`, and the PostgreSQL logs of both servers",
                    COPY_WITHIN.as_secs() / 60,
                    status.unwrap_or_else(|| "missing".into())
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What `classcast cluster status` reports of one database.
#[derive(Debug)]
pub struct MemberStatus {
    pub url: String,
    /// `None` when it does not answer.
    pub report: Option<MemberReport>,
}

#[derive(Debug)]
pub struct MemberReport {
    pub node: String,
    /// This database's clock minus the local one, in milliseconds (± half a round trip).
    pub clock_skew_ms: i64,
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

/// The state of replication on each of `urls`. With `repair`, a subscription that is down
/// while its provider answers is re-enabled at once (pglogical would otherwise retry after a
/// back-off of up to 3 minutes).
pub async fn status(urls: &[String], repair: bool) -> Vec<MemberStatus> {
    let mut out = Vec::new();
    for url in urls {
        let report = match connect(url).await {
            Ok(mut member) => report(&mut member, repair).await.ok(),
            Err(_) => None,
        };
        out.push(MemberStatus {
            url: redact_url(url),
            report,
        });
    }
    out
}

/// Each subscription of the database `conn` is connected to: (name, status, provider DSN).
async fn subscriptions_of(
    conn: &mut PgConnection,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT subscription_name::text AS name, status::text AS status,
                provider_dsn::text AS provider
         FROM pglogical.show_subscription_status() ORDER BY 1",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("name"), row.get("status"), row.get("provider")))
        .collect())
}

/// How long a provider may take to accept a connection before it counts as still down.
const PROVIDER_ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// Re-enables the subscription `name` when it is down while its provider answers, so it
/// resumes now rather than after pglogical's back-off (up to 3 minutes); returns whether it
/// did. Disabling and enabling again from several places at once still ends enabled.
async fn mend(
    conn: &mut PgConnection,
    name: &str,
    status: &str,
    provider: &str,
) -> Result<bool, sqlx::Error> {
    if status != "down" {
        return Ok(false);
    }
    let answers = tokio::time::timeout(PROVIDER_ANSWERS_WITHIN, connect(provider)).await;
    if !matches!(answers, Ok(Ok(_))) {
        return Ok(false);
    }
    sqlx::query("SELECT pglogical.alter_subscription_disable($1, true)")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pglogical.alter_subscription_enable($1, true)")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// What a node does for the databases it uses: re-enables every subscription of the
/// database `conn` is connected to that is down while its provider answers (see [`mend`]);
/// returns their names. A database without pglogical (a single database) has none.
pub(super) async fn mend_subscriptions(
    conn: &mut PgConnection,
) -> Result<Vec<String>, sqlx::Error> {
    let mut mended = Vec::new();
    if !has_pglogical(conn).await? {
        return Ok(mended);
    }
    for (name, status, provider) in subscriptions_of(conn).await? {
        if mend(conn, &name, &status, &provider).await? {
            mended.push(name);
        }
    }
    Ok(mended)
}

async fn report(member: &mut Member, repair: bool) -> Result<MemberReport, sqlx::Error> {
    let asked = crate::domain::hlc::wall_millis();
    let theirs: f64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8")
            .fetch_one(&mut member.conn)
            .await?;
    let answered = crate::domain::hlc::wall_millis();
    let clock_skew_ms = theirs as i64 - (asked + answered) / 2;
    let mut subscriptions = Vec::new();
    for (name, status, provider) in subscriptions_of(&mut member.conn).await? {
        let repaired = repair && mend(&mut member.conn, &name, &status, &provider).await?;
        subscriptions.push(SubscriptionStatus {
            name,
            status,
            repaired,
        });
    }
    let slots = sqlx::query(
        "SELECT s.slot_name::text AS name, s.active,
                COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint AS lag,
                COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint AS retained,
                extract(epoch FROM r.replay_lag)::float8 AS lag_seconds
         FROM pg_replication_slots s
         LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
         WHERE s.plugin = 'pglogical_output' ORDER BY 1",
    )
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
        subscriptions,
        slots,
        slot_wal_limit,
    })
}
