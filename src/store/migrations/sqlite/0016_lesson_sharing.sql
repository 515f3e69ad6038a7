-- classcast schema 16: sharing a lesson inside the school (issue 24). Each fact is its own
-- insert-only row with a random key and an HLC version; the newest row of a fact is current
-- (docs/lesson-library.md, "Sharing"), so a share withdrawn on one node and made again on
-- another converge on every node alike.

-- Whether lesson `lesson_id` is shared with account `account_id` (read-only): one fact per
-- (lesson, account).
CREATE TABLE lesson_share (
    id TEXT PRIMARY KEY NOT NULL,
    lesson_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    shared INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
-- The current row of a fact, and a lesson's colleagues.
CREATE INDEX lesson_share_current ON lesson_share (lesson_id, account_id, version, id);
-- "Shared with me".
CREATE INDEX lesson_share_by_account ON lesson_share (account_id, lesson_id);

-- Whether lesson `lesson_id` is in the school library: one fact per lesson.
CREATE TABLE lesson_listing (
    id TEXT PRIMARY KEY NOT NULL,
    lesson_id TEXT NOT NULL,
    listed INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX lesson_listing_current ON lesson_listing (lesson_id, version, id);
