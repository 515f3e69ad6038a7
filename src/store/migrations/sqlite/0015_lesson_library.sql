-- classcast schema 15: the lesson library (issue 24). A revision carries the folder the
-- lesson is filed in and the lowercased text a search looks in (its title and every slide's
-- texts, made by `LessonContent::search_text`). Both are written once with the revision, like
-- every other column of it; revisions saved before this have neither (no folder; a search
-- looks in their stored title and slides instead), and are never updated to add them.
ALTER TABLE lesson_revision ADD COLUMN folder TEXT;
ALTER TABLE lesson_revision ADD COLUMN search_text TEXT;
