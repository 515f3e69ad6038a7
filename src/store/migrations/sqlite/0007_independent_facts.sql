-- classcast schema 7: each independent fact is its own row, so that changing one on a node
-- never undoes a concurrent change of another made on another node (design section 3: no
-- whole-row last-writer-wins). `account_profile` held name, disabled and pending together;
-- `board_pairing` held a pairing's name with whether it stands. History is copied as it was.

CREATE TABLE account_name (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX account_name_current ON account_name (account_id, version, id);
INSERT INTO account_name (id, account_id, name, version, node)
    SELECT id, account_id, name, version, node FROM account_profile;

-- Whether an administrator disabled the account; the newest row per account is current.
CREATE TABLE account_access (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    disabled INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX account_access_current ON account_access (account_id, version, id);
CREATE INDEX account_access_by_version ON account_access (version);
INSERT INTO account_access (id, account_id, disabled, version, node)
    SELECT id, account_id, CASE WHEN pending = 1 THEN 0 ELSE disabled END, version, node
    FROM account_profile;

-- Whether the account still waits for approval; the newest row per account is current.
CREATE TABLE account_pending (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    pending INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX account_pending_current ON account_pending (account_id, version, id);
CREATE INDEX account_pending_by_version ON account_pending (version);
INSERT INTO account_pending (id, account_id, pending, version, node)
    SELECT id, account_id, pending, version, node FROM account_profile;

DROP TABLE account_profile;

-- The name a teacher gave a board; the newest row per (board, teacher) is current. Whether
-- the pairing stands stays in `board_pairing` (`removed`), which no longer holds a name.
CREATE TABLE board_name (
    id TEXT PRIMARY KEY NOT NULL,
    board_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX board_name_current ON board_name (board_id, account_id, version, id);
INSERT INTO board_name (id, board_id, account_id, name, version, node)
    SELECT id, board_id, account_id, name, version, node FROM board_pairing WHERE removed = 0;

ALTER TABLE board_pairing DROP COLUMN name;
