//! Lessons and their revisions: a lesson's current revision is its newest row.

use super::*;
use crate::store::sql::*;

pub(super) fn content_from(row: &impl Row) -> StoreResult<LessonContent> {
    Ok(LessonContent {
        title: row.text("title")?,
        slides: serde_json::from_str(&row.text("slides")?)
            .map_err(|e| StoreError::Corrupt(format!("slides: {e}")))?,
        folder: row.maybe_text("folder")?,
        theme: row
            .maybe_text("theme")?
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("theme: {e}")))?,
    })
}

/// What a search looks in for revision `r`: its `search_text`, or, for a revision saved
/// before there was one (schema 15 / PostgreSQL 7; rows are never updated to add it), its
/// title and slides as stored, where a word may also match the JSON's own names.
const SEARCHED: &str = "COALESCE(r.search_text, lower(r.title || ' ' || r.slides))";

/// Which lessons a list reads: `from` names `lesson l` (and may join more tables, whose
/// `columns` it adds, each after a comma), `wheres` narrow it, their values in `args` (`$1`
/// on).
pub(super) struct LessonList<'a> {
    pub from: &'a str,
    pub columns: &'a str,
    pub wheres: Vec<String>,
    pub args: Vec<Arg<'a>>,
}

/// What a new `lesson_revision` row holds besides its keys.
struct RevisionRow<'a> {
    content: &'a LessonContent,
    /// A tombstone: the lesson is deleted from this version on.
    deleted: bool,
    restored_from: Option<Uuid>,
}

impl<B: Backend> SqlStore<B> {
    pub(super) async fn current_lesson(
        &self,
        on: On<'_, B::Tx>,
        owner: Uuid,
        id: Uuid,
    ) -> StoreResult<LessonRecord> {
        // The newest row by the index, read backwards: `CURRENT_REVISION`'s "no newer row"
        // would test every kept revision of the lesson (up to 100), on each read and save.
        let sql = format!(
            "SELECT {LESSON_COLUMNS} FROM lesson l JOIN lesson_revision r ON r.lesson_id = l.id
             WHERE l.id = $1 AND l.owner_id = $2
             ORDER BY r.version DESC, r.id DESC LIMIT 1"
        );
        let row = self.one(on, &sql, &[Arg::Id(id), Arg::Id(owner)]).await?;
        let row = row.ok_or(StoreError::NotFound)?;
        if row.flag("deleted")? {
            return Err(StoreError::NotFound);
        }
        Ok(LessonRecord {
            id,
            revision: row.id("revision")?,
            created: Version(row.int("created")?),
            updated: self.observed(row.int("version")?),
            content: content_from(&row)?,
        })
    }

    /// The rows of `list` that `filter` holds, in `order`, after `cursor`, at most `limit`:
    /// current revisions only, deleted lessons left out. Each row is read by
    /// [`summary_from`](Self::summary_from), plus `list.columns`.
    pub(super) async fn summaries(
        &self,
        list: LessonList<'_>,
        filter: &LessonFilter,
        order: LessonOrder,
        cursor: Option<&LessonCursor>,
        limit: u32,
    ) -> StoreResult<Vec<B::Row>> {
        let LessonList {
            from,
            columns,
            mut wheres,
            mut args,
        } = list;
        wheres.push("NOT r.deleted".to_owned());
        // The `$n` of the value pushed last.
        let bind = |args: &Vec<Arg<'_>>| format!("${}", args.len());
        match cursor {
            Some(LessonCursor::Updated { version, id }) => {
                args.push(Arg::Int(version.0));
                let after = bind(&args);
                args.push(Arg::Id(*id));
                wheres.push(format!("(r.version, l.id) < ({after}, {})", bind(&args)));
            }
            Some(LessonCursor::Title { title_key, id }) => {
                args.push(Arg::Text(title_key));
                let after = bind(&args);
                args.push(Arg::Id(*id));
                wheres.push(format!("(r.title_key, l.id) > ({after}, {})", bind(&args)));
            }
            None => {}
        }
        if let Some(folder) = &filter.folder {
            args.push(Arg::Text(folder));
            wheres.push(format!("r.folder = {}", bind(&args)));
        }
        for word in &filter.words {
            args.push(Arg::Text(word));
            wheres.push(B::contains(SEARCHED, &bind(&args)));
        }
        let order_by = match order {
            LessonOrder::Updated => "r.version DESC, l.id DESC",
            LessonOrder::Title => "r.title_key, l.id",
        };
        args.push(Arg::Int(i64::from(limit)));
        let sql = format!(
            "SELECT l.id, r.id AS revision, r.version, r.title, r.title_key, r.slide_count,
                r.folder{columns}
             FROM {from} {CURRENT_REVISION}
             WHERE {}
             ORDER BY {order_by} LIMIT {}",
            wheres.join(" AND "),
            bind(&args),
        );
        self.db.fetch(On::Read, &sql, &args).await
    }

    /// A line of a lesson list from a row of [`summaries`](Self::summaries).
    pub(super) fn summary_from(&self, row: &B::Row) -> StoreResult<LessonSummary> {
        Ok(LessonSummary {
            id: row.id("id")?,
            revision: row.id("revision")?,
            title: row.text("title")?,
            title_key: row.text("title_key")?,
            slide_count: row.int("slide_count")?,
            updated: self.observed(row.int("version")?),
            folder: row.maybe_text("folder")?,
        })
    }

    async fn insert_revision(
        &self,
        tx: &mut B::Tx,
        lesson: Uuid,
        author: Uuid,
        after: Version,
        row: RevisionRow<'_>,
    ) -> StoreResult<(Uuid, Version)> {
        let RevisionRow {
            content,
            deleted,
            restored_from,
        } = row;
        let id = Uuid::now_v7();
        let version = self.hlc.next_after(after);
        let slides = serde_json::to_string(&content.slides)
            .map_err(|e| StoreError::Corrupt(format!("slides: {e}")))?;
        let slide_count = i64::try_from(content.slides.len()).unwrap_or(i64::MAX);
        let theme = content
            .theme
            .as_ref()
            .map(|theme| serde_json::to_string(theme).expect("a theme is plain data"));
        let values = [
            Arg::Id(lesson),
            Arg::Id(author),
            Arg::Text(&content.title),
            Arg::Text(&content.title_key()),
            Arg::Int(slide_count),
            Arg::Text(&slides),
            Arg::Flag(deleted),
            Arg::MaybeId(restored_from),
            Arg::MaybeText(content.folder.as_deref()),
            Arg::Text(&content.search_text()),
            Arg::MaybeText(theme.as_deref()),
        ];
        let columns = "lesson_id, author_id, title, title_key, slide_count, slides, deleted, \
                       restored_from, folder, search_text, theme";
        self.insert(On::Tx(tx), "lesson_revision", id, columns, &values, version)
            .await?;
        Ok((id, version))
    }

    /// A revision's content, and whether it is a tombstone.
    async fn revision_content(
        &self,
        lesson: Uuid,
        revision: Uuid,
    ) -> StoreResult<(LessonContent, bool)> {
        let sql =
            "SELECT title, slides, folder, theme, deleted FROM lesson_revision WHERE id = $1 AND lesson_id = $2";
        let row = self
            .one(On::Read, sql, &[Arg::Id(revision), Arg::Id(lesson)])
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((content_from(&row)?, row.flag("deleted")?))
    }
}

#[async_trait]
impl<B: Backend> LessonStore for SqlStore<B> {
    async fn create_lesson(
        &self,
        owner: Uuid,
        content: &LessonContent,
    ) -> StoreResult<LessonRecord> {
        measured!("create_lesson", async move {
            let mut tx = self.db.begin().await?;
            let id = Uuid::now_v7();
            let created = self.hlc.next();
            self.insert(
                On::Tx(&mut tx),
                "lesson",
                id,
                "owner_id",
                &[Arg::Id(owner)],
                created,
            )
            .await?;
            let first = RevisionRow {
                content,
                deleted: false,
                restored_from: None,
            };
            let (revision, updated) = self
                .insert_revision(&mut tx, id, owner, created, first)
                .await?;
            B::commit(tx).await?;
            Ok(LessonRecord {
                id,
                revision,
                created,
                updated,
                content: content.clone(),
            })
        })
        .await
    }

    async fn lesson(&self, owner: Uuid, id: Uuid) -> StoreResult<Arc<LessonRecord>> {
        if let Some(kept) = self.caches.lesson(owner, id) {
            return kept.ok_or(StoreError::NotFound);
        }
        measured!("lesson", async move {
            let ticket = self.caches.lesson_ticket();
            let record = Arc::new(self.current_lesson(On::Read, owner, id).await?);
            self.caches.keep_lesson(ticket, owner, &record);
            Ok(record)
        })
        .await
    }

    async fn list_lessons(
        &self,
        owner: Uuid,
        filter: &LessonFilter,
        order: LessonOrder,
        cursor: Option<&LessonCursor>,
        limit: u32,
    ) -> StoreResult<Vec<LessonSummary>> {
        measured!("list_lessons", async move {
            let list = LessonList {
                from: "lesson l",
                columns: "",
                wheres: vec!["l.owner_id = $1".to_owned()],
                args: vec![Arg::Id(owner)],
            };
            let rows = self.summaries(list, filter, order, cursor, limit).await?;
            rows.iter().map(|row| self.summary_from(row)).collect()
        })
        .await
    }

    async fn lesson_folders(&self, owner: Uuid) -> StoreResult<Vec<FolderCount>> {
        measured!("lesson_folders", async move {
            let sql = format!(
                "SELECT r.folder, COUNT(*) AS lessons FROM lesson l {CURRENT_REVISION}
                 WHERE l.owner_id = $1 AND NOT r.deleted AND r.folder IS NOT NULL
                 GROUP BY r.folder"
            );
            let rows = self.db.fetch(On::Read, &sql, &[Arg::Id(owner)]).await?;
            let mut folders = rows
                .iter()
                .map(|row| {
                    Ok(FolderCount {
                        name: row.text("folder")?,
                        lessons: row.int("lessons")?,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            // Sorted here, not by the engine: PostgreSQL's collation and SQLite's bytes
            // would order "art" and "Maths" differently.
            folders.sort_by_cached_key(|f| (f.name.to_lowercase(), f.name.clone()));
            Ok(folders)
        })
        .await
    }

    async fn save_lesson(
        &self,
        owner: Uuid,
        id: Uuid,
        edit: LessonEdit,
    ) -> StoreResult<LessonRecord> {
        measured!("save_lesson", async move {
            let mut tx = self.db.begin().await?;
            self.db.mark_in_progress(&mut tx).await?;
            let current = self.current_lesson(On::Tx(&mut tx), owner, id).await?;
            let mut content = edit.content;
            if edit.keep_folder {
                content.folder = current.content.folder;
            }
            if edit.keep_theme {
                content.theme = current.content.theme;
            }
            if edit
                .expected
                .is_some_and(|expected| expected != current.revision)
            {
                return Err(StoreError::VersionConflict {
                    current: current.revision,
                });
            }
            let next = RevisionRow {
                content: &content,
                deleted: false,
                restored_from: edit.restored_from,
            };
            let (revision, updated) = self
                .insert_revision(&mut tx, id, owner, current.updated, next)
                .await?;
            B::commit(tx).await?;
            self.caches.forget_lesson(id);
            if let Some(current) = self.db.overtaken(id, revision).await? {
                return Err(StoreError::Overtaken { current });
            }
            Ok(LessonRecord {
                id,
                revision,
                created: current.created,
                updated,
                content,
            })
        })
        .await
    }

    async fn delete_lesson(&self, owner: Uuid, id: Uuid) -> StoreResult<Version> {
        measured!("delete_lesson", async move {
            let mut tx = self.db.begin().await?;
            let current = self.current_lesson(On::Tx(&mut tx), owner, id).await?;
            let tombstone = LessonContent {
                title: current.content.title,
                slides: Vec::new(),
                folder: None,
                theme: None,
            };
            let row = RevisionRow {
                content: &tombstone,
                deleted: true,
                restored_from: None,
            };
            let (_, version) = self
                .insert_revision(&mut tx, id, owner, current.updated, row)
                .await?;
            B::commit(tx).await?;
            self.caches.forget_lesson(id);
            Ok(version)
        })
        .await
    }

    async fn revisions(&self, owner: Uuid, id: Uuid) -> StoreResult<Vec<RevisionSummary>> {
        measured!("revisions", async move {
            self.current_lesson(On::Read, owner, id).await?;
            let sql = format!(
                "SELECT r.id, r.version, r.title, r.slide_count, r.restored_from, p.name
             FROM lesson_revision r
             JOIN account a ON a.id = r.author_id {CURRENT_PROFILE}
             WHERE r.lesson_id = $1 AND NOT r.deleted
             ORDER BY r.version DESC, r.id DESC LIMIT {REVISIONS_LISTED}"
            );
            let rows = self.db.fetch(On::Read, &sql, &[Arg::Id(id)]).await?;
            rows.iter()
                .map(|row| {
                    Ok(RevisionSummary {
                        revision: row.id("id")?,
                        created: Version(row.int("version")?),
                        title: row.text("title")?,
                        slide_count: row.int("slide_count")?,
                        author_name: row.text("name")?,
                        restored_from: row.maybe_id("restored_from")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn revision(&self, owner: Uuid, id: Uuid, revision: Uuid) -> StoreResult<LessonContent> {
        measured!("revision", async move {
            self.current_lesson(On::Read, owner, id).await?;
            match self.revision_content(id, revision).await? {
                (_, true) => Err(StoreError::NotFound),
                (content, false) => Ok(content),
            }
        })
        .await
    }

    async fn lesson_bytes(&self, owner: Uuid) -> StoreResult<u64> {
        measured!("lesson_bytes", async move {
            let sql = "SELECT CAST(COALESCE(SUM(octet_length(r.title) + octet_length(r.slides)), 0)
                   AS BIGINT) AS bytes
                   FROM lesson l JOIN lesson_revision r ON r.lesson_id = l.id
                   WHERE l.owner_id = $1";
            let row = self.one(On::Read, sql, &[Arg::Id(owner)]).await?;
            let bytes = row.map_or(Ok(0), |row| row.int("bytes"))?;
            Ok(bytes.max(0).unsigned_abs())
        })
        .await
    }

    async fn purge_revisions(
        &self,
        nodes: &NodeIds,
        before: Version,
        keep: u32,
    ) -> StoreResult<u64> {
        measured!("purge_revisions", async move {
            let sql = format!(
                "DELETE FROM lesson_revision WHERE id IN (
                SELECT id FROM (
                    SELECT r.id, r.node, r.version,
                        ROW_NUMBER() OVER newest_first AS age,
                        FIRST_VALUE(r.deleted) OVER newest_first AS gone
                    FROM lesson_revision r
                    WINDOW newest_first AS (PARTITION BY r.lesson_id
                                            ORDER BY r.version DESC, r.id DESC)
                ) AS ranked
                WHERE {} AND age > 1 AND (gone OR (age > $2 AND version < $3))
                AND id NOT IN (
                    SELECT CAST(b.state->'lesson'->>'revision' AS {id}) FROM board_state b
                    WHERE b.state->'lesson'->>'revision' IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM board_state n WHERE n.board_id = b.board_id
                        AND (n.version, n.id) > (b.version, b.id)))
                LIMIT $4)",
                B::in_ids("node", "$1"),
                id = B::ID_TYPE,
            );
            let args = [
                Arg::Ids(nodes.ids()),
                Arg::Int(i64::from(keep)),
                Arg::Int(before.0),
            ];
            self.delete_in_batches(&sql, &args).await
        })
        .await
    }

    fn lesson_announced(&self, id: Uuid, version: Version) {
        self.hlc.observe(version);
        self.caches.lesson_announced(id, version);
    }

    fn announcements_missed(&self) {
        self.caches.clear_lessons();
    }

    async fn presented_revision(&self, lesson: Uuid, revision: Uuid) -> StoreResult<LessonContent> {
        measured!("presented_revision", async move {
            Ok(self.revision_content(lesson, revision).await?.0)
        })
        .await
    }
}
