-- Issue 9: API keys rotor issues for machine access. rotor keeps the
-- SHA-256 of a key (hash, 32 bytes), never the key: the key is shown once
-- when it is made. id is part of the key (rtr_<org>_<id>_<secret>), so a
-- presented key is found by primary key. role is admin, operator or
-- viewer in org_id only. created_by is the actor who made it ("kind:id").
-- expires_at NULL: never; revoked_at NULL: not revoked.
CREATE TABLE api_keys (
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       BLOB NOT NULL CHECK (length(hash) = 32),
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    expires_at TEXT,
    revoked_at TEXT,
    PRIMARY KEY (org_id, id)
) STRICT, WITHOUT ROWID;
