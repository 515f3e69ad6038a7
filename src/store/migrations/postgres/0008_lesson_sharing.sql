-- classcast PostgreSQL schema 8: sharing a lesson inside the school, as SQLite's schema 16.
-- New tables only (expand): a node still running the previous release never reads them.

CREATE TABLE lesson_share (
    id uuid PRIMARY KEY,
    lesson_id uuid NOT NULL,
    account_id uuid NOT NULL,
    shared boolean NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX lesson_share_current ON lesson_share (lesson_id, account_id, version, id);
CREATE INDEX lesson_share_by_account ON lesson_share (account_id, lesson_id);

CREATE TABLE lesson_listing (
    id uuid PRIMARY KEY,
    lesson_id uuid NOT NULL,
    listed boolean NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX lesson_listing_current ON lesson_listing (lesson_id, version, id);
