-- classcast schema 14: mail through an outbox, and the single-use links mail carries.
-- Insert-only like every replicated table: a mail is written once; each attempt to send it,
-- its delivery, its giving up and an administrator's retry are rows of their own.
CREATE TABLE mail (
    id TEXT PRIMARY KEY NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX mail_by_node ON mail (node, version);
-- outcome: 'sent', 'failed' (retried at retry_at), 'dead' (given up), 'retry' (an
-- administrator asked for another round).
CREATE TABLE mail_attempt (
    id TEXT PRIMARY KEY NOT NULL,
    mail_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    retry_at INTEGER,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX mail_attempt_by_mail ON mail_attempt (mail_id, version);
-- A link sent by mail: purpose 'reset' (a new password) or 'confirm' (the address).
CREATE TABLE account_token (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX account_token_by_hash ON account_token (token_hash);
CREATE INDEX account_token_by_account ON account_token (account_id, version);
CREATE TABLE account_token_use (
    id TEXT PRIMARY KEY NOT NULL,
    token_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX account_token_use_by_token ON account_token_use (token_id);
