-- classcast schema 8: upkeep that survives a node being replaced. Every node records that it
-- is alive; the purges of a node gone for longer than a lease are taken over by the live
-- node with the lowest id (design section 3, rule 6). Purges filter rows by node and age, in
-- batches: these indexes make each batch a short range scan.
CREATE TABLE node_heartbeat (
    id TEXT PRIMARY KEY NOT NULL,
    node TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX node_heartbeat_current ON node_heartbeat (node, version);
CREATE INDEX board_state_by_node ON board_state (node, version);
CREATE INDEX board_code_by_node ON board_code (node, expires_at);
CREATE INDEX board_code_use_by_node ON board_code_use (node);
CREATE INDEX lesson_revision_by_node ON lesson_revision (node, version);
