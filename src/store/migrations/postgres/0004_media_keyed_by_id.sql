-- classcast PostgreSQL schema 4, as SQLite's schema 12: stored media keyed by a random id.
-- `media` and `media_chunk` are keyed by content (the SHA-256, and "SHA-256/n"), so the same
-- file stored through two databases at once inserted the same key on both, and pglogical
-- resolved that conflict differently on each side (design section 3, rule 2). From now on a
-- stored file is a `media_file` row and its chunks `media_file_chunk` rows, each with a random
-- id and carrying the SHA-256 in `media_id`; readers take the lowest (version, id) for a
-- media (or a chunk of it), as `media_preview` does. Expand only: rows stored before stay in
-- `media` and `media_chunk`, still read and purged there, and a later release contracts.
CREATE TABLE media_file (
    id uuid PRIMARY KEY,
    media_id text NOT NULL,
    media_type text NOT NULL,
    size bigint NOT NULL,
    chunks integer NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX media_file_of ON media_file (media_id, version, id);

CREATE TABLE media_file_chunk (
    id uuid PRIMARY KEY,
    media_id text NOT NULL,
    n integer NOT NULL,
    bytes bytea NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX media_file_chunk_of ON media_file_chunk (media_id, n, version, id);
