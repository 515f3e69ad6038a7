-- classcast PostgreSQL schema 3: downscaled previews of pictures, as SQLite's schema 11.
CREATE TABLE media_preview (
    id uuid PRIMARY KEY,
    media_id text NOT NULL,
    media_type text NOT NULL,
    bytes bytea NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX media_preview_of ON media_preview (media_id, version, id);
