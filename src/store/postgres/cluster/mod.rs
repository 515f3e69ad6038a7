//! Two-way replication between the databases of a cluster, as `classcast cluster init` sets
//! it up with pglogical: every database gets the schema, a pglogical node, a replication set
//! with every replicated table, and a subscription to each other database that forwards
//! nothing it did not write itself (`forward_origins := '{}'`), so changes never loop.
//!
//! Every check runs on every database before anything changes, and each step looks before it
//! acts, so a second run changes nothing and says so. By design nothing conflicts
//! (docs/architecture.md, section 3): pglogical's conflict handling never has a say.

use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::{migrate, LOCAL_TABLES, REPLICATED_TABLES};
use crate::store::redact_url;

mod compare;
mod status;
mod subscriptions;

pub use compare::{compare, nodes_seen, Difference};
pub(super) use status::replication;
pub use status::{status, MemberReport, MemberStatus, SlotStatus, SubscriptionStatus};
pub(super) use subscriptions::mend_subscriptions;
pub use subscriptions::Stalled;
use subscriptions::{lost_at_provider, mend, subscriptions_of};

/// The pglogical replication set holding every replicated table.
const SET: &str = "classcast";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("a cluster needs at least two databases: give --database once for each")]
    TooFew,
    #[error("{url}: cannot connect: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: {problem}")]
    Setting { url: String, problem: String },
    #[error("{url}: pglogical is not installed on this server (Debian: apt-get install postgresql-15-pglogical)")]
    NoPglogical { url: String },
    #[error("{url}: the database holds tables that are not classcast's ({tables}); give classcast a database of its own")]
    ForeignTables { url: String, tables: String },
    #[error("{url}: the database already belongs to another cluster (pglogical node {node}); rebuild it into a new, empty database to join this one")]
    OtherCluster { url: String, node: String },
    #[error("cannot add {new} while {holder} also holds classcast data or is in the cluster: a new database copies what one other database holds, so add it while exactly one other database is in the list (docs/deploy-cluster.md, \"Rebuild a database\")")]
    JoinWithData { new: String, holder: String },
    #[error("{url}: a `cluster init` that failed half-way left this database in the cluster without finishing its copy, and it holds rows of its own since: rebuild it into a new, empty database (docs/deploy-cluster.md, \"Rebuild a database\")")]
    HalfMade { url: String },
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
        if let Some(half) = [new, other]
            .into_iter()
            .find(|&i| found[i].half_made && found[i].holds_rows)
        {
            return Err(ClusterError::HalfMade {
                url: redact_url(&members[half].url),
            });
        }
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
        let mut waiting = Vec::new();
        for subscription in &subscriptions {
            if let Some(why) = lost_at_provider(subscription, false).await {
                return Err(ClusterError::Failed {
                    url: redact_url(&member.url),
                    reason: format!(
                        "subscription {}: {}",
                        subscription.name,
                        Stalled::CannotCatchUp(why)
                    ),
                });
            }
            if let Some((stalled, _)) = mend(&mut member.conn, subscription, false)
                .await
                .map_err(member.failed())?
            {
                if matches!(
                    stalled,
                    Stalled::CannotCatchUp(_) | Stalled::ProviderMisset(_)
                ) {
                    return Err(ClusterError::Failed {
                        url: redact_url(&member.url),
                        reason: format!("subscription {}: {stalled}", subscription.name),
                    });
                }
                waiting.push(format!(
                    "{} is {}: {stalled}",
                    subscription.name, subscription.status
                ));
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > REPLICATING_WITHIN {
            return Err(ClusterError::Failed {
                url: redact_url(&member.url),
                reason: format!(
                    "not replicating after {} s: {}",
                    REPLICATING_WITHIN.as_secs(),
                    waiting.join("; ")
                ),
            });
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
    /// It has a pglogical node but never finished joining: a `cluster init` failed half-way.
    half_made: bool,
}

/// Everything that must hold before anything changes on any database.
async fn check(member: &mut Member, cluster: &[String]) -> Result<Found, ClusterError> {
    let url = redact_url(&member.url);
    let misset = misset_settings(&mut member.conn)
        .await
        .map_err(member.failed())?;
    if let Some(first) = misset.first() {
        return Err(ClusterError::Setting {
            url,
            problem: first.to_string(),
        });
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
    let has_node = installed
        && sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pglogical.local_node)")
            .fetch_one(&mut member.conn)
            .await
            .map_err(member.failed())?;
    // A member joined once one subscription finished its start (its copy, if it made one).
    // A pglogical node without one is what a `cluster init` that failed half-way leaves: it
    // joins again, copy included.
    let joined = has_node
        && sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pglogical.local_sync_status
                            WHERE sync_nspname IS NULL AND sync_relname IS NULL
                            AND sync_status = 'r')",
        )
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
    Ok(Found {
        joined,
        half_made: has_node && !joined,
        holds_rows,
    })
}

/// pglogical's logical-decoding output plugin: every provider must allow it.
const OUTPUT_PLUGIN: &str = "pglogical_output";

/// A server setting that cluster mode needs and that is not as it must be.
#[derive(Debug)]
pub struct Misset {
    setting: &'static str,
    found: String,
    /// The `postgresql.conf` line that fixes it.
    line: &'static str,
    /// `restart` or `reload`: what makes PostgreSQL take the line.
    then: &'static str,
    why: &'static str,
}

impl std::fmt::Display for Misset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {:?}; set `{}` in postgresql.conf and {} PostgreSQL{}",
            self.setting, self.found, self.line, self.then, self.why
        )
    }
}

/// Every setting of the server `conn` is connected to that cluster mode needs and finds
/// otherwise, in the order `postgresql.conf` lists them in docs/deploy-cluster.md.
async fn misset_settings(conn: &mut PgConnection) -> Result<Vec<Misset>, sqlx::Error> {
    let found: Vec<(String, String)> =
        sqlx::query_as("SELECT name::text, setting::text FROM pg_settings WHERE name = ANY($1)")
            .bind(
                [
                    "wal_level",
                    "shared_preload_libraries",
                    "track_commit_timestamp",
                    "max_slot_wal_keep_size",
                    "output_plugin_libraries",
                ]
                .as_slice(),
            )
            .fetch_all(conn)
            .await?;
    let value = |name: &str| {
        found
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut misset = Vec::new();
    let mut want = |setting: &'static str,
                    ok: fn(&str) -> bool,
                    line: &'static str,
                    then: &'static str,
                    why: &'static str| {
        // A setting this server does not know (output_plugin_libraries before 15.19)
        // restricts nothing.
        if let Some(found) = value(setting).filter(|v| !ok(v)) {
            misset.push(Misset {
                setting,
                found,
                line,
                then,
                why,
            });
        }
    };
    want(
        "wal_level",
        |v| v == "logical",
        "wal_level = logical",
        "restart",
        "",
    );
    want(
        "shared_preload_libraries",
        |v| in_list(v, "pglogical"),
        "shared_preload_libraries = 'pglogical'",
        "restart",
        "",
    );
    want(
        "track_commit_timestamp",
        |v| v == "on",
        "track_commit_timestamp = on",
        "restart",
        "",
    );
    want(
        "max_slot_wal_keep_size",
        |v| v != "-1",
        "max_slot_wal_keep_size = 10GB",
        "reload",
        " (unlimited, a database that stays down would fill this server's disk with WAL; \
         10GB or what the disk allows)",
    );
    want(
        "output_plugin_libraries",
        |v| in_list(v, OUTPUT_PLUGIN),
        "output_plugin_libraries = 'pgoutput, test_decoding, pglogical_output'",
        "reload",
        " (since PostgreSQL 15.19 a server only lets replication use the output plugins \
         listed there, and pglogical's is pglogical_output)",
    );
    Ok(misset)
}

/// Whether the list setting `value` names `item`, read as PostgreSQL reads such lists: items
/// between commas, trimmed, a double-quoted item taken whole (`ALTER SYSTEM SET x = 'a, b'`
/// makes one quoted item of both, which PostgreSQL does not take as a list).
fn in_list(value: &str, item: &str) -> bool {
    let mut items = Vec::new();
    let mut rest = value.trim_start();
    while !rest.is_empty() {
        let taken;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            taken = quoted[..end].to_owned();
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            taken = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        items.push(taken);
        rest = rest
            .trim_start()
            .strip_prefix(',')
            .unwrap_or(rest)
            .trim_start();
    }
    items.iter().any(|i| i == item)
}

/// The schema, the pglogical node and the replication set of one database.
async fn prepare(member: &mut Member, changes: &mut Vec<String>) -> Result<(), ClusterError> {
    let url = redact_url(&member.url);
    let applied = migrate(&mut member.conn)
        .await
        .map_err(|e| ClusterError::Failed {
            url: url.clone(),
            reason: crate::error_chain(&e),
        })?;
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
    // Whether it exists, and whether it finished its start.
    let exists: Option<bool> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pglogical.local_sync_status
                        WHERE sync_subid = s.sub_id AND sync_nspname IS NULL
                        AND sync_relname IS NULL AND sync_status = 'r')
         FROM pglogical.subscription s
         JOIN pglogical.node p ON p.node_id = s.sub_origin WHERE p.node_name = $1",
    )
    .bind(provider)
    .fetch_optional(&mut member.conn)
    .await
    .map_err(member.failed())?;
    match exists {
        Some(true) => return Ok(false),
        // Left by a run that failed before its copy was done: made again, copying.
        Some(false) if copy => {
            sqlx::query(
                "SELECT pglogical.drop_subscription(s.sub_name) FROM pglogical.subscription s
                 JOIN pglogical.node p ON p.node_id = s.sub_origin WHERE p.node_name = $1",
            )
            .bind(provider)
            .execute(&mut member.conn)
            .await
            .map_err(member.failed())?;
        }
        Some(false) => return Ok(false),
        None => {}
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

#[cfg(test)]
mod tests {
    use super::in_list;

    #[test]
    fn list_settings_are_read_as_postgresql_reads_them() {
        assert!(in_list(
            "pgoutput, test_decoding, pglogical_output",
            "pglogical_output"
        ));
        assert!(in_list("pglogical", "pglogical"));
        assert!(in_list(
            r#"pgoutput,"pglogical_output""#,
            "pglogical_output"
        ));
        assert!(!in_list("pgoutput, test_decoding", "pglogical_output"));
        assert!(!in_list("pglogical_output_x", "pglogical_output"));
        assert!(!in_list("", "pglogical"));
        // One quoted name holding commas is one library, as ALTER SYSTEM writes a quoted
        // value: PostgreSQL does not find pglogical_output in it.
        assert!(!in_list(
            r#""pgoutput, test_decoding, pglogical_output""#,
            "pglogical_output"
        ));
    }
}
