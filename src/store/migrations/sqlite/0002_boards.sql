-- classcast schema 2: boards, pairing and live state. Insert-only like schema 1.

-- A board's identity: the SHA-256 of its secret token.
CREATE TABLE board (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX board_by_token ON board (token_hash);

-- Pairing codes a board has shown. A board's newest code is its current one; a code held by
-- two boards belongs to the newer row (the other board is given a fresh code).
CREATE TABLE board_code (
    id TEXT PRIMARY KEY NOT NULL,
    board_id TEXT NOT NULL,
    code TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX board_code_by_code ON board_code (code, version, id);
CREATE INDEX board_code_by_board ON board_code (board_id, version, id);

-- A code is single use: its use is a row, not a flag.
CREATE TABLE board_code_use (
    id TEXT PRIMARY KEY NOT NULL,
    code_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX board_code_use_by_code ON board_code_use (code_id);

-- Which teachers may present on a board, under which name; the newest row per (board,
-- teacher) is current; `removed` marks an unpairing.
CREATE TABLE board_pairing (
    id TEXT PRIMARY KEY NOT NULL,
    board_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    removed INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX board_pairing_current ON board_pairing (board_id, account_id, version, id);
CREATE INDEX board_pairing_by_account ON board_pairing (account_id);

-- Every state a board has been in; the newest is current. `command_id` makes commands
-- idempotent: a command id already stored is acknowledged again, not applied again.
CREATE TABLE board_state (
    id TEXT PRIMARY KEY NOT NULL,
    board_id TEXT NOT NULL,
    command_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX board_state_current ON board_state (board_id, version, id);
CREATE INDEX board_state_by_command ON board_state (command_id);
