-- classcast schema 12: stored media keyed by a random id, as PostgreSQL's schema 4 (which
-- says why: the same file stored through two databases at once must never insert the same
-- key twice). A stored file is a `media_file` row and its chunks `media_file_chunk` rows,
-- carrying the SHA-256 in `media_id`; readers take the lowest (version, id). Rows stored
-- before stay in `media` and `media_chunk`, still read and purged there.
CREATE TABLE media_file (
    id TEXT PRIMARY KEY NOT NULL,
    media_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX media_file_of ON media_file (media_id, version, id);

CREATE TABLE media_file_chunk (
    id TEXT PRIMARY KEY NOT NULL,
    media_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX media_file_chunk_of ON media_file_chunk (media_id, n, version, id);
