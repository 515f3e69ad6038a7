//! Lessons and their revisions on PostgreSQL: a lesson's current revision is its newest row.

use super::*;

fn slides_from(row: &PgRow) -> StoreResult<Vec<crate::domain::lesson::Slide>> {
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

impl PgStore {
    async fn current_lesson<'e, E>(&self, db: E, owner: Uuid, id: Uuid) -> StoreResult<LessonRecord>
    where
        E: sqlx::Executor<'e, Database = Postgres>,
    {
        let sql = format!(
            "SELECT {LESSON_COLUMNS} FROM lesson l {CURRENT_REVISION} WHERE l.id = ? AND l.owner_id = ?"
        );
        let row = sqlx::query(&q(sql))
            .bind(id)
            .bind(owner)
            .fetch_optional(db)
            .await?
            .ok_or(StoreError::NotFound)?;
        if row.try_get::<bool, _>("deleted")? {
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
        tx: &mut Transaction<'_, Postgres>,
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
        sqlx::query(&q("INSERT INTO lesson_revision (id, lesson_id, version, node, author_id, title, title_key,
             slide_count, slides, deleted, restored_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",))
        .bind(id)
        .bind(lesson)
        .bind(version.0)
        .bind(self.node)
        .bind(author)
        .bind(&content.title)
        .bind(content.title_key())
        .bind(content.slides.len() as i64)
        .bind(slides)
        .bind(deleted)
        .bind(restored_from)
        .execute(&mut **tx)
        .await?;
        Ok((id, version))
    }

    /// A revision's content, and whether it is a tombstone.
    async fn revision_content(
        &self,
        lesson: Uuid,
        revision: Uuid,
    ) -> StoreResult<(LessonContent, bool)> {
        let row = sqlx::query(&q(
            "SELECT title, slides, deleted FROM lesson_revision WHERE id = ? AND lesson_id = ?",
        ))
        .bind(revision)
        .bind(lesson)
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        let content = LessonContent {
            title: row.try_get("title")?,
            slides: slides_from(&row)?,
        };
        Ok((content, row.try_get::<bool, _>("deleted")?))
    }
}

impl PgStore {
    /// The revision of lesson `id` that is current on another database once `revision`,
    /// just saved here, has reached it, when that is not `revision`: a save of the same
    /// lesson made there at the same moment, with the same base, came after it (the newest
    /// `(version, id)` is current everywhere). See [`PgStore::where_arrived`].
    async fn overtaken(&self, id: Uuid, revision: Uuid) -> StoreResult<Option<Uuid>> {
        for mut other in self.where_arrived("lesson_revision", revision).await? {
            let current: Uuid = sqlx::query_scalar(
                "SELECT id FROM lesson_revision WHERE lesson_id = $1
                 ORDER BY version DESC, id DESC LIMIT 1",
            )
            .bind(id)
            .fetch_one(&mut *other)
            .await?;
            if current != revision {
                return Ok(Some(current));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl LessonStore for PgStore {
    async fn create_lesson(
        &self,
        owner: Uuid,
        content: &LessonContent,
    ) -> StoreResult<LessonRecord> {
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await?;
        let id = Uuid::now_v7();
        let created = self.hlc.next();
        sqlx::query(&q(
            "INSERT INTO lesson (id, owner_id, version, node) VALUES (?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(owner)
        .bind(created.0)
        .bind(self.node)
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
        self.current_lesson(&mut *self.read().await?, owner, id)
            .await
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
             WHERE l.owner_id = ? AND NOT r.deleted {}
             ORDER BY {order_by} LIMIT ?",
            if cursor.is_some() {
                format!("AND {after}")
            } else {
                String::new()
            }
        );
        let sql = q(sql);
        let mut query = sqlx::query(&sql).bind(owner);
        match cursor {
            Some(LessonCursor::Updated { version, id }) => query = query.bind(version.0).bind(id),
            Some(LessonCursor::Title { title_key, id }) => {
                query = query.bind(title_key.clone()).bind(id)
            }
            None => {}
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&mut *self.read().await?)
            .await?;
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
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await?;
        in_progress_from_now(&mut tx).await?;
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
        if let Some(current) = self.overtaken(id, revision).await? {
            return Err(StoreError::Overtaken { current });
        }
        Ok(LessonRecord {
            id,
            revision,
            created: current.created,
            updated,
            content: edit.content,
        })
    }

    async fn delete_lesson(&self, owner: Uuid, id: Uuid) -> StoreResult<()> {
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await?;
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
        self.current_lesson(&mut *self.read().await?, owner, id)
            .await?;
        let sql = format!(
            "SELECT r.id, r.version, r.title, r.slide_count, r.restored_from, p.name
             FROM lesson_revision r
             JOIN account a ON a.id = r.author_id {CURRENT_PROFILE}
             WHERE r.lesson_id = ? AND NOT r.deleted
             ORDER BY r.version DESC, r.id DESC LIMIT {REVISIONS_LISTED}"
        );
        let rows = sqlx::query(&q(sql))
            .bind(id)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter()
            .map(|row| {
                let restored_from: Option<Uuid> = row.try_get("restored_from")?;
                Ok(RevisionSummary {
                    revision: uuid(row, "id")?,
                    created: Version(row.try_get("version")?),
                    title: row.try_get("title")?,
                    slide_count: row.try_get("slide_count")?,
                    author_name: row.try_get("name")?,
                    restored_from,
                })
            })
            .collect()
    }

    async fn revision(&self, owner: Uuid, id: Uuid, revision: Uuid) -> StoreResult<LessonContent> {
        self.current_lesson(&mut *self.read().await?, owner, id)
            .await?;
        match self.revision_content(id, revision).await? {
            (_, true) => Err(StoreError::NotFound),
            (content, false) => Ok(content),
        }
    }

    async fn lesson_bytes(&self, owner: Uuid) -> StoreResult<u64> {
        let bytes: i64 = sqlx::query_scalar(&q(
            "SELECT COALESCE(SUM(octet_length(r.title) + octet_length(r.slides)), 0)::bigint
             FROM lesson l JOIN lesson_revision r ON r.lesson_id = l.id WHERE l.owner_id = ?",
        ))
        .bind(owner)
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(bytes.max(0) as u64)
    }

    async fn purge_revisions(
        &self,
        nodes: &NodeIds,
        before: Version,
        keep: u32,
    ) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM lesson_revision WHERE id IN (
                SELECT id FROM (
                    SELECT r.id, r.node, r.version,
                        ROW_NUMBER() OVER newest_first AS age,
                        FIRST_VALUE(r.deleted) OVER newest_first AS gone
                    FROM lesson_revision r
                    WINDOW newest_first AS (PARTITION BY r.lesson_id ORDER BY r.version DESC, r.id DESC)
                ) AS ranked
                WHERE node = ANY(?) AND age > 1
                AND (gone OR (age > ? AND version < ?))
                AND id NOT IN (
                    SELECT (b.state->'lesson'->>'revision')::uuid FROM board_state b
                    WHERE b.state->'lesson'->>'revision' IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM board_state n WHERE n.board_id = b.board_id
                        AND (n.version, n.id) > (b.version, b.id)))
                LIMIT ?)",
            purge_args(nodes, &[i64::from(keep), before.0])?,
        )
        .await
    }

    async fn presented_revision(&self, lesson: Uuid, revision: Uuid) -> StoreResult<LessonContent> {
        Ok(self.revision_content(lesson, revision).await?.0)
    }
}
