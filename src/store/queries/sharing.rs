//! Who besides its owner may read a lesson: shares with colleagues (`lesson_share`, one fact
//! per lesson and account) and the school library (`lesson_listing`, one fact per lesson).
//! Like an account's facts, each change is a new row versioned after every earlier row of
//! its fact, and the newest row is current, whatever order replication brought them in.

use super::lessons::LessonList;
use super::*;
use crate::store::sql::*;

/// The owner's columns a list of other teachers' lessons adds (see [`LessonList`]).
const OWNER_COLUMNS: &str = ", l.owner_id, p.name AS owner_name";

/// Joins lesson `l`'s owner as `a` with their name `p`.
const OWNER: &str = "JOIN account a ON a.id = l.owner_id";

#[async_trait]
impl<B: Backend> ShareStore for SqlStore<B> {
    async fn set_sharing(&self, owner: Uuid, id: Uuid, fact: Sharing) -> StoreResult<()> {
        measured!("set_sharing", async move {
            let mut tx = self.db.begin().await?;
            self.current_lesson(On::Tx(&mut tx), owner, id).await?;
            let (table, keys, columns, values) = match fact {
                Sharing::With { account, shared } => (
                    "lesson_share",
                    vec![("lesson_id", id), ("account_id", account)],
                    "lesson_id, account_id, shared",
                    vec![Arg::Id(id), Arg::Id(account), Arg::Flag(shared)],
                ),
                Sharing::Library(listed) => (
                    "lesson_listing",
                    vec![("lesson_id", id)],
                    "lesson_id, listed",
                    vec![Arg::Id(id), Arg::Flag(listed)],
                ),
            };
            let version = self.version_after(&mut tx, table, &keys).await?;
            self.insert(
                On::Tx(&mut tx),
                table,
                Uuid::now_v7(),
                columns,
                &values,
                version,
            )
            .await?;
            B::commit(tx).await
        })
        .await
    }

    async fn lesson_shares(&self, owner: Uuid, id: Uuid) -> StoreResult<LessonShares> {
        measured!("lesson_shares", async move {
            self.current_lesson(On::Read, owner, id).await?;
            let sql = format!(
                "SELECT a.id, a.email, p.name FROM lesson_share s
                 JOIN account a ON a.id = s.account_id {CURRENT_PROFILE}
                 WHERE s.lesson_id = $1 AND s.shared AND {NEWEST_SHARE}"
            );
            let rows = self.db.fetch(On::Read, &sql, &[Arg::Id(id)]).await?;
            let mut colleagues = rows
                .iter()
                .map(|row| {
                    Ok(Colleague {
                        id: row.id("id")?,
                        name: row.text("name")?,
                        email: row.text("email")?,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            // Sorted here, not by the engine: the two collations differ (as for folders).
            colleagues.sort_by_cached_key(|c| (c.name.to_lowercase(), c.email.clone()));
            let sql = "SELECT listed FROM lesson_listing WHERE lesson_id = $1
                       ORDER BY version DESC, id DESC LIMIT 1";
            let listed = match self.one(On::Read, sql, &[Arg::Id(id)]).await? {
                Some(row) => row.flag("listed")?,
                None => false,
            };
            Ok(LessonShares { colleagues, listed })
        })
        .await
    }

    async fn shared_lesson(&self, reader: Uuid, id: Uuid) -> StoreResult<SharedLesson> {
        measured!("shared_lesson", async move {
            let sql = format!(
                "SELECT {LESSON_COLUMNS}{OWNER_COLUMNS}
                 FROM lesson l JOIN lesson_revision r ON r.lesson_id = l.id
                 {OWNER} {CURRENT_PROFILE}
                 WHERE l.id = $2 AND (
                    EXISTS (SELECT 1 FROM lesson_share s WHERE s.lesson_id = l.id
                            AND s.account_id = $1 AND s.shared AND {NEWEST_SHARE})
                    OR EXISTS (SELECT 1 FROM lesson_listing s WHERE s.lesson_id = l.id
                               AND s.listed AND {NEWEST_LISTING}))
                 ORDER BY r.version DESC, r.id DESC LIMIT 1"
            );
            let args = [Arg::Id(reader), Arg::Id(id)];
            let row = self.one(On::Read, &sql, &args).await?;
            let row = row.ok_or(StoreError::NotFound)?;
            if row.flag("deleted")? {
                return Err(StoreError::NotFound);
            }
            Ok(SharedLesson {
                record: LessonRecord {
                    id,
                    revision: row.id("revision")?,
                    created: Version(row.int("created")?),
                    updated: self.observed(row.int("version")?),
                    content: super::lessons::content_from(&row)?,
                },
                owner: row.id("owner_id")?,
                owner_name: row.text("owner_name")?,
            })
        })
        .await
    }

    async fn shared_lessons(
        &self,
        shelf: Shelf,
        filter: &LessonFilter,
        order: LessonOrder,
        cursor: Option<&LessonCursor>,
        limit: u32,
    ) -> StoreResult<Vec<SharedSummary>> {
        measured!("shared_lessons", async move {
            // From the facts' rows, by their index, rather than from every lesson.
            let share_from = format!(
                "lesson_share s JOIN lesson l ON l.id = s.lesson_id {OWNER} {CURRENT_PROFILE}"
            );
            let listing_from = format!(
                "lesson_listing s JOIN lesson l ON l.id = s.lesson_id {OWNER} {CURRENT_PROFILE}"
            );
            let list = match shelf {
                Shelf::SharedWith(reader) => LessonList {
                    from: &share_from,
                    columns: OWNER_COLUMNS,
                    wheres: vec![format!("s.account_id = $1 AND s.shared AND {NEWEST_SHARE}")],
                    args: vec![Arg::Id(reader)],
                },
                Shelf::Library => LessonList {
                    from: &listing_from,
                    columns: OWNER_COLUMNS,
                    wheres: vec![format!("s.listed AND {NEWEST_LISTING}")],
                    args: Vec::new(),
                },
            };
            let rows = self.summaries(list, filter, order, cursor, limit).await?;
            rows.iter()
                .map(|row| {
                    Ok(SharedSummary {
                        lesson: self.summary_from(row)?,
                        owner: row.id("owner_id")?,
                        owner_name: row.text("owner_name")?,
                    })
                })
                .collect()
        })
        .await
    }
}
