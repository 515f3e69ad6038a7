-- classcast schema 3: the newest version of each kind of row that can end a session, found
-- without a scan, so open live connections can be checked against them every fraction of a
-- second (see Store::session_change_mark).
CREATE INDEX session_revocation_by_version ON session_revocation (version);
CREATE INDEX account_credential_by_version ON account_credential (version);
CREATE INDEX account_profile_by_version ON account_profile (version);
