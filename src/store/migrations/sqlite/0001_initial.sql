-- classcast schema 1. Replicated tables are insert-only (see shared design, section 3):
-- random UUIDv7 keys, a hybrid-logical-clock `version`, the writing `node`, no sequences and
-- no UNIQUE index besides the primary key. Times are derived from `version`.

-- An account's identity. The earliest registration (lowest version, id) of an address owns it.
CREATE TABLE account (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    email_norm TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX account_by_email ON account (email_norm, version, id);

-- Name and enabled state; the newest row per account is current.
CREATE TABLE account_profile (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL,
    name TEXT NOT NULL,
    disabled INTEGER NOT NULL
);
CREATE INDEX account_profile_current ON account_profile (account_id, version, id);

-- Password hashes (argon2id, PHC string); the newest row per account is current.
CREATE TABLE account_credential (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL,
    password_hash TEXT NOT NULL
);
CREATE INDEX account_credential_current ON account_credential (account_id, version, id);

-- Sessions, found by the SHA-256 of their bearer token. A session older than the account's
-- newest credential is dead: changing a password ends every session without an update.
CREATE TABLE session (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL,
    account_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX session_by_token ON session (token_hash);
CREATE INDEX session_by_expiry ON session (expires_at);

-- Logging out writes a revocation instead of deleting or updating the session.
CREATE TABLE session_revocation (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX session_revocation_by_session ON session_revocation (session_id);

-- A lesson's identity and owner; its content lives in revisions.
CREATE TABLE lesson (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX lesson_by_owner ON lesson (owner_id);

-- Every save is a new revision; the newest per lesson is current; `deleted` marks a tombstone.
CREATE TABLE lesson_revision (
    id TEXT PRIMARY KEY NOT NULL,
    lesson_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL,
    author_id TEXT NOT NULL,
    title TEXT NOT NULL,
    title_key TEXT NOT NULL,
    slide_count INTEGER NOT NULL,
    slides TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    restored_from TEXT
);
CREATE INDEX lesson_revision_current ON lesson_revision (lesson_id, version, id);
