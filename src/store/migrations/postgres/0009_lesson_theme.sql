-- classcast PostgreSQL schema 9: a lesson's theme, as SQLite's schema 17. Nullable (expand,
-- never contract): a node still running the previous release writes revisions without it,
-- which show in the default look.
ALTER TABLE lesson_revision ADD COLUMN theme text;
