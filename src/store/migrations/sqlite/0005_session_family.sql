-- classcast schema 5: a renewed session belongs to the family of the login it renews, so
-- logging out ends the whole family. Rows from before have no family: each is its own
-- (read as COALESCE(family_id, id)). A revocation names a family.
ALTER TABLE session ADD COLUMN family_id TEXT;
CREATE INDEX session_by_family ON session (family_id);
