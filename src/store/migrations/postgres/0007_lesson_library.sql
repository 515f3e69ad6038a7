-- classcast PostgreSQL schema 7: the lesson library, as SQLite's schema 15. Nullable columns
-- only (expand, never contract): a node still running the previous release writes revisions
-- without them, which read as "in no folder" and are searched in their title and slides.
ALTER TABLE lesson_revision ADD COLUMN folder text;
ALTER TABLE lesson_revision ADD COLUMN search_text text;
