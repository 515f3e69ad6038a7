-- classcast schema 13: a teacher paired with a board can end its identity (a copied token
-- then opens nothing): the revocation is a row, and the board with it is gone for good.
CREATE TABLE board_revocation (
    id TEXT PRIMARY KEY NOT NULL,
    board_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    node TEXT NOT NULL
);
CREATE INDEX board_revocation_by_board ON board_revocation (board_id);
