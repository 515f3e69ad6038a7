-- classcast schema for PostgreSQL: the same tables and columns as SQLite's schema 9, with
-- native types. Replicated tables are insert-only (shared design, section 3): random
-- UUIDv7 keys, a hybrid-logical-clock `version` (bigint), the writing `node`, no sequences
-- and no UNIQUE index besides the primary key; the current row of anything is the one with
-- the highest (version, id), decided when reading. Every table here replicates except
-- `schema_migration`, which each database keeps for itself (DDL does not replicate).

CREATE TABLE account (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    email_norm text NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX account_by_email ON account (email_norm, version, id);

CREATE TABLE account_name (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    name text NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX account_name_current ON account_name (account_id, version, id);

CREATE TABLE account_access (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    disabled boolean NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX account_access_current ON account_access (account_id, version, id);
CREATE INDEX account_access_by_version ON account_access (version);

CREATE TABLE account_pending (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    pending boolean NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX account_pending_current ON account_pending (account_id, version, id);
CREATE INDEX account_pending_by_version ON account_pending (version);

CREATE TABLE account_credential (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL,
    password_hash text NOT NULL
);
CREATE INDEX account_credential_current ON account_credential (account_id, version, id);
CREATE INDEX account_credential_by_version ON account_credential (version);

CREATE TABLE session (
    id uuid PRIMARY KEY,
    token_hash text NOT NULL,
    account_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL,
    expires_at bigint NOT NULL,
    family_id uuid
);
CREATE INDEX session_by_token ON session (token_hash);
CREATE INDEX session_by_expiry ON session (expires_at);
CREATE INDEX session_by_family ON session (family_id);

CREATE TABLE session_revocation (
    id uuid PRIMARY KEY,
    session_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX session_revocation_by_session ON session_revocation (session_id);
CREATE INDEX session_revocation_by_version ON session_revocation (version);

CREATE TABLE lesson (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX lesson_by_owner ON lesson (owner_id);

-- Titles sort byte-wise (`COLLATE "C"`), as on SQLite, so both backends list alike.
CREATE TABLE lesson_revision (
    id uuid PRIMARY KEY,
    lesson_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL,
    author_id uuid NOT NULL,
    title text NOT NULL,
    title_key text COLLATE "C" NOT NULL,
    slide_count bigint NOT NULL,
    slides text NOT NULL,
    deleted boolean NOT NULL,
    restored_from uuid
);
CREATE INDEX lesson_revision_current ON lesson_revision (lesson_id, version, id);
CREATE INDEX lesson_revision_by_node ON lesson_revision (node, version);

CREATE TABLE board (
    id uuid PRIMARY KEY,
    token_hash text NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX board_by_token ON board (token_hash);

CREATE TABLE board_code (
    id uuid PRIMARY KEY,
    board_id uuid NOT NULL,
    code text NOT NULL,
    expires_at bigint NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX board_code_by_code ON board_code (code, version, id);
CREATE INDEX board_code_by_board ON board_code (board_id, version, id);
CREATE INDEX board_code_by_expiry ON board_code (expires_at);
CREATE INDEX board_code_by_node ON board_code (node, expires_at);

CREATE TABLE board_code_use (
    id uuid PRIMARY KEY,
    code_id uuid NOT NULL,
    account_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX board_code_use_by_code ON board_code_use (code_id);
CREATE INDEX board_code_use_by_node ON board_code_use (node);

CREATE TABLE board_pairing (
    id uuid PRIMARY KEY,
    board_id uuid NOT NULL,
    account_id uuid NOT NULL,
    removed boolean NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL,
    -- The code use that made the pairing; a pairing made by a later use of the same code
    -- (on another node, before it heard of the first) does not stand.
    code_use_id uuid
);
CREATE INDEX board_pairing_current ON board_pairing (board_id, account_id, version, id);
CREATE INDEX board_pairing_by_account ON board_pairing (account_id);

CREATE TABLE board_name (
    id uuid PRIMARY KEY,
    board_id uuid NOT NULL,
    account_id uuid NOT NULL,
    name text NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX board_name_current ON board_name (board_id, account_id, version, id);

CREATE TABLE board_state (
    id uuid PRIMARY KEY,
    board_id uuid NOT NULL,
    command_id uuid NOT NULL,
    state jsonb NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX board_state_current ON board_state (board_id, version, id);
CREATE INDEX board_state_by_command ON board_state (command_id);
CREATE INDEX board_state_by_node ON board_state (node, version);

CREATE TABLE node_heartbeat (
    id uuid PRIMARY KEY,
    node uuid NOT NULL,
    version bigint NOT NULL
);
CREATE INDEX node_heartbeat_current ON node_heartbeat (node, version);
