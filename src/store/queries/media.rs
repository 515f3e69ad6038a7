//! Media: chunks first, then the media row (see [`MediaStore`]). Stored files are
//! `media_file` rows with their `media_file_chunk` rows (random ids, carrying the SHA-256), so
//! the same file stored through two databases at once never inserts one key twice; what an
//! earlier release stored keyed by content in `media` and `media_chunk` is still read and
//! purged there.

use super::*;
use crate::store::sql::*;

#[async_trait]
impl<B: Backend> MediaStore for SqlStore<B> {
    async fn insert_media_chunk(&self, media: &str, n: u32, bytes: &[u8]) -> StoreResult<()> {
        measured!("insert_media_chunk", async move {
            let values = [Arg::Text(media), Arg::Int(i64::from(n)), Arg::Bytes(bytes)];
            let (id, version) = (Uuid::now_v7(), self.hlc.next());
            let columns = "media_id, n, bytes";
            self.insert(On::Write, "media_file_chunk", id, columns, &values, version)
                .await
        })
        .await
    }

    async fn insert_media(&self, media: &Media, account: Uuid) -> StoreResult<()> {
        measured!("insert_media", async move {
            let mut tx = self.db.begin().await?;
            let size = i64::try_from(media.size).unwrap_or(i64::MAX);
            self.db
                .execute(
                    On::Tx(&mut tx),
                    "INSERT INTO media_file (id, media_id, media_type, size, chunks, version, node)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE NOT EXISTS (SELECT 1 FROM media_file WHERE media_id = $2)
                 AND NOT EXISTS (SELECT 1 FROM media WHERE id = $2)",
                    &[
                        Arg::Id(Uuid::now_v7()),
                        Arg::Text(&media.id),
                        Arg::Text(&media.media_type),
                        Arg::Int(size),
                        Arg::Int(i64::from(media.chunks)),
                        Arg::Int(self.hlc.next().0),
                        Arg::Id(self.node),
                    ],
                )
                .await?;
            self.db
                .execute(
                    On::Tx(&mut tx),
                    "INSERT INTO media_upload (id, media_id, account_id, version, node)
                 SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS
                     (SELECT 1 FROM media_upload WHERE account_id = $3 AND media_id = $2)",
                    &[
                        Arg::Id(Uuid::now_v7()),
                        Arg::Text(&media.id),
                        Arg::Id(account),
                        Arg::Int(self.hlc.next().0),
                        Arg::Id(self.node),
                    ],
                )
                .await?;
            B::commit(tx).await
        })
        .await
    }

    async fn media(&self, id: &str) -> StoreResult<Option<Media>> {
        measured!("media", async move {
            let row = self.one(On::Read, MEDIA_ROW, &[Arg::Text(id)]).await?;
            row.map(|row| {
                let corrupt = |column: &str| StoreError::Corrupt(format!("media {id}: {column}"));
                Ok(Media {
                    id: row.text("media_id")?,
                    media_type: row.text("media_type")?,
                    size: u64::try_from(row.int("size")?).map_err(|_| corrupt("size"))?,
                    chunks: u32::try_from(row.int("chunks")?).map_err(|_| corrupt("chunks"))?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn media_chunk(&self, id: &str, n: u32) -> StoreResult<Vec<u8>> {
        measured!("media_chunk", async move {
            let args = [Arg::Text(id), Arg::Int(i64::from(n))];
            if let Some(row) = self.one(On::Read, MEDIA_CHUNK_ROW, &args).await? {
                return row.bytes("bytes");
            }
            let legacy = format!("{id}/{n}");
            let row = self
                .one(On::Read, MEDIA_CHUNK_BY_CONTENT, &[Arg::Text(&legacy)])
                .await?;
            row.ok_or(StoreError::NotFound)?.bytes("bytes")
        })
        .await
    }

    async fn media_bytes(&self, account: Uuid) -> StoreResult<u64> {
        measured!("media_bytes", async move {
            let sql = "SELECT CAST(COALESCE(SUM(size + $1), 0) AS BIGINT) AS bytes
             FROM (SELECT media_id, MAX(size) AS size FROM
                 (SELECT media_id, size FROM media_file UNION ALL SELECT id, size FROM media) m
                 WHERE media_id IN (SELECT media_id FROM media_upload WHERE account_id = $2)
                 GROUP BY media_id) x";
            let overhead = i64::try_from(MEDIA_FILE_OVERHEAD).unwrap_or(i64::MAX);
            let row = self
                .one(On::Read, sql, &[Arg::Int(overhead), Arg::Id(account)])
                .await?;
            let bytes = row.map_or(Ok(0), |row| row.int("bytes"))?;
            Ok(bytes.max(0).unsigned_abs())
        })
        .await
    }

    async fn uploaded(&self, account: Uuid, media: &str) -> StoreResult<bool> {
        measured!("uploaded", async move {
            let sql = "SELECT 1 AS found FROM media_upload WHERE account_id = $1 AND media_id = $2
                   LIMIT 1";
            let args = [Arg::Id(account), Arg::Text(media)];
            Ok(self.one(On::Read, sql, &args).await?.is_some())
        })
        .await
    }

    async fn insert_media_preview(&self, media: &str, preview: &Preview) -> StoreResult<()> {
        measured!("insert_media_preview", async move {
            let values = [
                Arg::Text(media),
                Arg::Text(&preview.media_type),
                Arg::Bytes(&preview.bytes),
            ];
            let (id, version) = (Uuid::now_v7(), self.hlc.next());
            let columns = "media_id, media_type, bytes";
            self.insert(On::Write, "media_preview", id, columns, &values, version)
                .await
        })
        .await
    }

    async fn media_preview(&self, media: &str) -> StoreResult<Option<Preview>> {
        measured!("media_preview", async move {
            let sql = "SELECT media_type, bytes FROM media_preview WHERE media_id = $1
                   ORDER BY version, id LIMIT 1";
            let row = self.one(On::Read, sql, &[Arg::Text(media)]).await?;
            row.map(|row| {
                Ok(Preview {
                    media_type: row.text("media_type")?,
                    bytes: row.bytes("bytes")?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn purge_media(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        measured!("purge_media", async move {
            let args = [Arg::Ids(nodes.ids()), Arg::Int(before.0)];
            let mut media = 0;
            // Stored files, and those an earlier release stored keyed by their SHA-256.
            for (table, hash) in [("media_file", "media_id"), ("media", "id")] {
                let sql = format!(
                    "DELETE FROM {table} WHERE id IN (
                    SELECT m.id FROM {table} m WHERE {} AND m.version < $2
                    AND NOT EXISTS (SELECT 1 FROM media_upload u
                                    WHERE u.media_id = m.{hash} AND u.version >= $2)
                    AND NOT EXISTS (SELECT 1 FROM lesson_revision r WHERE {})
                    LIMIT $3)",
                    B::in_ids("m.node", "$1"),
                    B::contains("r.slides", &format!("m.{hash}")),
                );
                media += self.delete_in_batches(&sql, &args).await?;
            }
            for table in MEDIA_PARTS {
                let sql = format!(
                    "DELETE FROM {table} WHERE id IN (
                    SELECT x.id FROM {table} x WHERE {} AND x.version < $2
                    AND NOT EXISTS (SELECT 1 FROM media_file f WHERE f.media_id = x.media_id)
                    AND NOT EXISTS (SELECT 1 FROM media m WHERE m.id = x.media_id)
                    LIMIT $3)",
                    B::in_ids("x.node", "$1"),
                );
                self.delete_in_batches(&sql, &args).await?;
            }
            Ok(media)
        })
        .await
    }
}
