//! Media on SQLite: chunks first, then the media row (see [`MediaStore`]). Stored files are
//! `media_file` rows with their `media_file_chunk` rows (random ids, carrying the SHA-256);
//! what an earlier release stored keyed by content in `media` and `media_chunk` is still read
//! and purged there.

use super::*;

#[async_trait]
impl MediaStore for SqliteStore {
    async fn insert_media_chunk(&self, media: &str, n: u32, bytes: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO media_file_chunk (id, media_id, n, bytes, version, node)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(media)
        .bind(i64::from(n))
        .bind(bytes)
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn insert_media(&self, media: &Media, account: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO media_file (id, media_id, media_type, size, chunks, version, node)
             SELECT ?, ?, ?, ?, ?, ?, ?
             WHERE NOT EXISTS (SELECT 1 FROM media_file WHERE media_id = ?)
             AND NOT EXISTS (SELECT 1 FROM media WHERE id = ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&media.id)
        .bind(&media.media_type)
        .bind(media.size as i64)
        .bind(i64::from(media.chunks))
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .bind(&media.id)
        .bind(&media.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO media_upload (id, media_id, account_id, version, node)
             SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS
                 (SELECT 1 FROM media_upload WHERE account_id = ? AND media_id = ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&media.id)
        .bind(account.to_string())
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .bind(account.to_string())
        .bind(&media.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn media(&self, id: &str) -> StoreResult<Option<Media>> {
        let row = sqlx::query(MEDIA_ROW)
            .bind(id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|row| {
            Ok(Media {
                id: row.try_get("media_id")?,
                media_type: row.try_get("media_type")?,
                size: row.try_get::<i64, _>("size")? as u64,
                chunks: row.try_get::<i64, _>("chunks")? as u32,
            })
        })
        .transpose()
    }

    async fn media_chunk(&self, id: &str, n: u32) -> StoreResult<Vec<u8>> {
        let bytes = sqlx::query_scalar(MEDIA_CHUNK_ROW)
            .bind(id)
            .bind(i64::from(n))
            .fetch_optional(&self.read)
            .await?;
        match bytes {
            Some(bytes) => Ok(bytes),
            None => sqlx::query_scalar(MEDIA_CHUNK_BY_CONTENT)
                .bind(format!("{id}/{n}"))
                .fetch_optional(&self.read)
                .await?
                .ok_or(StoreError::NotFound),
        }
    }

    async fn media_bytes(&self, account: Uuid) -> StoreResult<u64> {
        let bytes: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(size + ?), 0) FROM (SELECT media_id, MAX(size) AS size FROM
                 (SELECT media_id, size FROM media_file UNION ALL SELECT id, size FROM media)
                 WHERE media_id IN (SELECT media_id FROM media_upload WHERE account_id = ?)
                 GROUP BY media_id)",
        )
        .bind(MEDIA_FILE_OVERHEAD as i64)
        .bind(account.to_string())
        .fetch_one(&self.read)
        .await?;
        Ok(bytes as u64)
    }

    async fn uploaded(&self, account: Uuid, media: &str) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM media_upload WHERE account_id = ? AND media_id = ? LIMIT 1",
        )
        .bind(account.to_string())
        .bind(media)
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }

    async fn insert_media_preview(&self, media: &str, preview: &Preview) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO media_preview (id, media_id, media_type, bytes, version, node)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(media)
        .bind(&preview.media_type)
        .bind(&preview.bytes)
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn media_preview(&self, media: &str) -> StoreResult<Option<Preview>> {
        let row = sqlx::query(
            "SELECT media_type, bytes FROM media_preview WHERE media_id = ?
             ORDER BY version, id LIMIT 1",
        )
        .bind(media)
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            Ok(Preview {
                media_type: row.try_get("media_type")?,
                bytes: row.try_get("bytes")?,
            })
        })
        .transpose()
    }

    async fn purge_media(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        let mut media = 0;
        // Stored files, and those an earlier release stored keyed by their SHA-256.
        for (table, hash) in [("media_file", "media_id"), ("media", "id")] {
            media += self
                .delete_in_batches(
                    &format!(
                        "DELETE FROM {table} WHERE id IN (
                            SELECT m.id FROM {table} m
                            WHERE m.node IN (SELECT value FROM json_each(?)) AND m.version < ?
                            AND NOT EXISTS (SELECT 1 FROM media_upload u
                                            WHERE u.media_id = m.{hash} AND u.version >= ?)
                            AND NOT EXISTS (SELECT 1 FROM lesson_revision r
                                            WHERE instr(r.slides, m.{hash}) > 0)
                            LIMIT ?)"
                    ),
                    purge_args(nodes, &[before.0, before.0])?,
                )
                .await?;
        }
        for table in MEDIA_PARTS {
            self.delete_in_batches(
                &format!(
                    "DELETE FROM {table} WHERE id IN (
                        SELECT x.id FROM {table} x
                        WHERE x.node IN (SELECT value FROM json_each(?)) AND x.version < ?
                        AND NOT EXISTS (SELECT 1 FROM media_file f WHERE f.media_id = x.media_id)
                        AND NOT EXISTS (SELECT 1 FROM media m WHERE m.id = x.media_id)
                        LIMIT ?)"
                ),
                purge_args(nodes, &[before.0])?,
            )
            .await?;
        }
        Ok(media)
    }
}
