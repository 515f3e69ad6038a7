-- classcast schema 9: a pairing names the use of the code that made it. Two nodes may each
-- accept the same code before either hears of the other's use; the earliest use (lowest
-- version, id) wins everywhere, and a pairing made by a later use does not stand. NULL for
-- unpairings and for pairings made before this schema.
ALTER TABLE board_pairing ADD COLUMN code_use_id TEXT;
