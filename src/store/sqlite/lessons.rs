//! Lessons and their revisions on SQLite: a lesson's current revision is its newest row.

use super::*;

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
}

#[async_trait]
impl LessonStore for SqliteStore {
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
                    WINDOW newest_first AS (PARTITION BY r.lesson_id ORDER BY r.version DESC, r.id DESC))
                WHERE node IN (SELECT value FROM json_each(?)) AND age > 1
                AND (gone = 1 OR (age > ? AND version < ?))
                AND id NOT IN (
                    SELECT b.state->>'$.lesson.revision' FROM board_state b
                    WHERE b.state->>'$.lesson.revision' IS NOT NULL AND NOT EXISTS (
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
