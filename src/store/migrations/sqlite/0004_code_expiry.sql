-- classcast schema 4: expired pairing codes are purged (hourly); find them without a scan.
CREATE INDEX board_code_by_expiry ON board_code (expires_at);
