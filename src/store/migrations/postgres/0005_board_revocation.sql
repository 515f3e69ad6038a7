-- classcast PostgreSQL schema 5: revoked board identities, as SQLite's schema 13.
CREATE TABLE board_revocation (
    id uuid PRIMARY KEY,
    board_id uuid NOT NULL,
    account_id uuid NOT NULL,
    version bigint NOT NULL,
    node uuid NOT NULL
);
CREATE INDEX board_revocation_by_board ON board_revocation (board_id);
