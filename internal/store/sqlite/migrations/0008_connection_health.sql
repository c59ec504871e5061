-- Issue 7: every connection's last sign-in/sync success and failure, as
-- any rotor process saw it, so `rotor connections list` (another process)
-- and the UI show what `serve` learned. failure is rotor's description of
-- the refusal (Entra's AADSTS code and message), never a secret. roles is
-- the JSON array of Graph application roles the last token carried.
CREATE TABLE connection_health (
    org_id          TEXT    NOT NULL REFERENCES organizations (id),
    connection      TEXT    NOT NULL,
    last_success_at TEXT,
    last_failure_at TEXT,
    failure         TEXT    NOT NULL DEFAULT '',
    aadsts          INTEGER NOT NULL DEFAULT 0,
    roles           TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (org_id, connection)
) STRICT, WITHOUT ROWID;
