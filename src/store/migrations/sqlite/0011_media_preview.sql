-- classcast schema 11: a downscaled preview of an uploaded picture, for thumbnails. Computed
-- once, by the node that stored the picture; its bytes are small (tens of KiB), so they live
-- in the row. Random ids: two nodes that both computed one insert two rows, and readers take
-- the one with the lowest (version, id).
CREATE TABLE media_preview (
    id TEXT PRIMARY KEY NOT NULL,
    media_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX media_preview_of ON media_preview (media_id, version, id);
