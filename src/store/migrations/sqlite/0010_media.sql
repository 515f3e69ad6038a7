-- classcast schema 10: uploaded pictures and videos, content-addressed and immutable. The
-- id of a media is the SHA-256 of its bytes (hex); its bytes are chunks of 1 MiB, written
-- before the media row, so a media row always has every chunk. Identical uploads on two nodes
-- write identical rows under the same keys. Who uploaded what is a row per upload (quotas,
-- and what a purge of unused media looks at).
CREATE TABLE media (
    id TEXT PRIMARY KEY NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);

CREATE TABLE media_chunk (
    id TEXT PRIMARY KEY NOT NULL,
    media_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX media_chunk_of ON media_chunk (media_id, n);

CREATE TABLE media_upload (
    id TEXT PRIMARY KEY NOT NULL,
    media_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX media_upload_by_account ON media_upload (account_id, media_id);
