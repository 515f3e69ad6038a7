-- classcast PostgreSQL schema 2: uploaded media, as SQLite's schema 10 (content-addressed,
-- immutable, 1 MiB chunks written before the media row; a row per upload).
CREATE TABLE media (
    id text PRIMARY KEY,
    media_type text NOT NULL,
    size bigint NOT NULL,
    chunks integer NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);

CREATE TABLE media_chunk (
    id text PRIMARY KEY,
    media_id text NOT NULL,
    n integer NOT NULL,
    bytes bytea NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX media_chunk_of ON media_chunk (media_id, n);

CREATE TABLE media_upload (
    id uuid PRIMARY KEY,
    media_id text NOT NULL,
    account_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX media_upload_by_account ON media_upload (account_id, media_id);
