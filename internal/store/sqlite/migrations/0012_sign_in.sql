-- Issue 9: sign-in for people. sessions are the UI's server-side sessions:
-- rotor keeps the SHA-256 of a session's id (id_hash, 32 bytes), never the
-- id, which lives only in the browser's cookie. A session lives in one
-- organization and grants one role there. method is entra or local (the
-- break-glass admin); subject the user's object id or the local admin's
-- name. Sign-out deletes the row; expired rows are deleted by
-- DeleteExpiredSessions.
CREATE TABLE sessions (
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    id_hash    BLOB NOT NULL CHECK (length(id_hash) = 32),
    method     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    tenant_id  TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL DEFAULT '',
    username   TEXT NOT NULL DEFAULT '',
    role       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (org_id, id_hash)
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (org_id, expires_at);

-- The break-glass admin of an organization: a local account made at first
-- start, its password printed once and kept here only as an argon2id hash
-- (PHC string). failed_logins and locked_until lock it out after failed
-- sign-ins, for every process sharing the database.
CREATE TABLE local_admins (
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL CHECK (substr(password_hash, 1, 1) = '$'),
    created_at    TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TEXT,
    last_login_at TEXT,
    PRIMARY KEY (org_id, name)
) STRICT, WITHOUT ROWID;
