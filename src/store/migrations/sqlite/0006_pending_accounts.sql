-- classcast schema 6: an account registered where registration needs approval waits for it:
-- its profile is disabled and pending until `classcast user approve` writes an enabled one.
ALTER TABLE account_profile ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
