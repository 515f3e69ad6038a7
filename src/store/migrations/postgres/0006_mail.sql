-- classcast PostgreSQL schema 6: the mail outbox and mailed links, as SQLite's schema 14.
CREATE TABLE mail (
    id uuid PRIMARY KEY,
    recipient text NOT NULL,
    subject text NOT NULL,
    text_body text NOT NULL,
    html_body text NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX mail_by_node ON mail (node, version);
CREATE TABLE mail_attempt (
    id uuid PRIMARY KEY,
    mail_id uuid NOT NULL,
    outcome text NOT NULL,
    reason text,
    retry_at bigint,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX mail_attempt_by_mail ON mail_attempt (mail_id, version);
CREATE TABLE account_token (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    purpose text NOT NULL,
    token_hash text NOT NULL,
    expires_at bigint NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX account_token_by_hash ON account_token (token_hash);
CREATE INDEX account_token_by_account ON account_token (account_id, version);
CREATE TABLE account_token_use (
    id uuid PRIMARY KEY,
    token_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX account_token_use_by_token ON account_token_use (token_id);
