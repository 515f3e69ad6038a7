//! The data check of `classcast cluster status`: every replicated table compared across
//! the databases, and the nodes seen by their heartbeats. It only reads.

use std::time::Duration;

use super::{connect, ClusterError, REPLICATED_TABLES};
use crate::store::redact_url;
use sqlx::PgConnection;

/// Rows younger than this may still be on their way between databases: the data check
/// leaves them out.
const SETTLING: Duration = Duration::from_secs(10);
/// How long the data check waits before looking again at a table that differed, so rows
/// and purges in flight arrive.
const SETTLE_AGAIN: Duration = Duration::from_secs(3);
/// The data check compares rows in windows of 2^36 versions: 2^26 ms, about 18.6 hours.
const WINDOW_BITS: u32 = 36;

/// The tables an earlier release keyed by content (schema 2; written no more since schema 4).
const KEYED_BY_CONTENT: &[&str] = &["media", "media_chunk"];

/// A replicated table whose rows differ between the databases.
#[derive(Debug)]
pub struct Difference {
    pub table: &'static str,
    /// The first and last minute (UTC) of the windows of time whose rows differ.
    pub from: String,
    pub to: String,
    /// Per database (redacted URL): how many rows of those windows it holds.
    pub rows: Vec<(String, i64)>,
}

/// Per window of versions: how many rows, and the sum of a hash of each one's
/// `(id, version, node)`.
type Windows = std::collections::BTreeMap<i64, (i64, String)>;

async fn digest(
    conn: &mut PgConnection,
    table: &str,
    before: crate::domain::hlc::Version,
) -> Result<Windows, sqlx::Error> {
    // Rows an earlier release stored keyed by their content are the same row wherever their
    // key is; two databases that stored one at once each kept the other's version and node
    // (the conflict that made those tables go), which says nothing about the data.
    let (window, row) = match KEYED_BY_CONTENT.contains(&table) {
        true => ("0".to_owned(), "id::text"),
        false => (
            format!("version >> {WINDOW_BITS}"),
            "id::text || '/' || version || '/' || node::text",
        ),
    };
    // `table` is one of REPLICATED_TABLES, never outside input. The hash sums are numeric,
    // so they never overflow.
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(&format!(
        "SELECT {window}, count(*),
                sum(('x' || left(md5({row}), 15))::bit(60)::bigint)::text
         FROM {table} WHERE version < $1 GROUP BY 1"
    ))
    .bind(before.0)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(w, n, sum)| (w, (n, sum))).collect())
}

/// Compares every replicated table across the databases of `urls` that answer: row counts
/// and a digest of each row's `(id, version, node)`, per window of time, leaving out the
/// last seconds' rows, which may still be on their way. A table that differs is looked at
/// again after a pause before it is reported. Databases without classcast's schema, or
/// that do not answer, are left out (`status` reports those).
pub async fn compare(urls: &[String]) -> Result<Vec<Difference>, ClusterError> {
    let mut members = Vec::new();
    for url in urls {
        if let Ok(member) = connect(url).await {
            members.push(member);
        }
    }
    if members.len() < 2 {
        return Ok(Vec::new());
    }
    let before = crate::domain::hlc::Version::at_millis(
        crate::domain::hlc::wall_millis() - crate::domain::hlc::millis_of(SETTLING),
    );
    let mut differences = Vec::new();
    for table in REPLICATED_TABLES {
        let mut again = false;
        loop {
            let mut digests = Vec::new();
            for member in &mut members {
                let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(format!("public.{table}"))
                    .fetch_one(&mut member.conn)
                    .await
                    .map_err(member.failed())?;
                if exists {
                    let found = digest(&mut member.conn, table, before)
                        .await
                        .map_err(member.failed())?;
                    digests.push((redact_url(&member.url), found));
                }
            }
            let differing: std::collections::BTreeSet<i64> = digests
                .iter()
                .flat_map(|(_, d)| d.keys().copied())
                .filter(|w| {
                    let first = digests[0].1.get(w);
                    digests.iter().any(|(_, d)| d.get(w) != first)
                })
                .collect();
            let (Some(first), Some(last)) = (differing.first(), differing.last()) else {
                break;
            };
            if !again {
                again = true;
                tokio::time::sleep(SETTLE_AGAIN).await;
                continue;
            }
            let (from, to): (String, String) = sqlx::query_as(
                "SELECT to_char(to_timestamp($1 / 1000.0) AT TIME ZONE 'UTC', $3),
                        to_char(to_timestamp($2 / 1000.0) AT TIME ZONE 'UTC', $3)",
            )
            .bind((*first << WINDOW_BITS) >> 10)
            .bind(((*last + 1) << WINDOW_BITS >> 10) - 1)
            .bind("YYYY-MM-DD HH24:MI")
            .fetch_one(&mut members[0].conn)
            .await
            .map_err(members[0].failed())?;
            differences.push(Difference {
                table,
                from,
                to,
                rows: digests
                    .iter()
                    .map(|(url, d)| {
                        let n = differing.iter().filter_map(|w| d.get(w)).map(|(n, _)| n);
                        (url.clone(), n.sum())
                    })
                    .collect(),
            });
            break;
        }
    }
    Ok(differences)
}

/// The classcast nodes that wrote a heartbeat to the database of `url` (every 5 minutes
/// while they run): each node's id and when it was last seen, in wall-clock milliseconds.
pub async fn nodes_seen(url: &str) -> Result<Vec<(String, i64)>, ClusterError> {
    let mut member = connect(url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public.node_heartbeat') IS NOT NULL")
            .fetch_one(&mut member.conn)
            .await
            .map_err(member.failed())?;
    if !exists {
        return Ok(Vec::new());
    }
    let seen: Vec<(String, i64)> = sqlx::query_as(
        "SELECT node::text, max(version) >> 10 FROM node_heartbeat GROUP BY 1 ORDER BY 2 DESC",
    )
    .fetch_all(&mut member.conn)
    .await
    .map_err(member.failed())?;
    Ok(seen)
}
