-- classcast schema 17: a lesson's theme (issue 24, docs/layouts.md), saved with each revision
-- as JSON (`{"name": "dark", "accent": "#ffcc00"}`) like its folder. Nullable (expand only):
-- revisions saved before it, or by a node still on the previous release, have none and show
-- in the default look. Never updated to add it.
ALTER TABLE lesson_revision ADD COLUMN theme TEXT;
