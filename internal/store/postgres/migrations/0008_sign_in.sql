-- Issue 9: sign-in for people (SQLite 0012). sessions are the UI's
-- server-side sessions: rotor keeps the SHA-256 of a session's id
-- (id_hash, 32 bytes), never the id, which lives only in the browser's
-- cookie. A session lives in one organization and grants one role there;
-- the cookie names the organization, so the row is found by primary key
-- under that organization's rotor.org setting. method is entra or local
-- (the break-glass admin); subject the user's object id or the local
-- admin's name.
CREATE TABLE sessions (
    org_id     text COLLATE "C" NOT NULL,
    id_hash    bytea NOT NULL CHECK (octet_length(id_hash) = 32),
    method     text COLLATE "C" NOT NULL,
    subject    text COLLATE "C" NOT NULL,
    tenant_id  text COLLATE "C" NOT NULL DEFAULT '',
    name       text NOT NULL DEFAULT '',
    username   text NOT NULL DEFAULT '',
    role       text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, id_hash),
    CONSTRAINT sessions_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);
CREATE INDEX sessions_by_expiry ON sessions (org_id, expires_at);

-- The break-glass admin of an organization: its password kept only as an
-- argon2id hash (PHC string); failed_logins and locked_until lock it out
-- for every replica alike.
CREATE TABLE local_admins (
    org_id        text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    password_hash text NOT NULL CHECK (left(password_hash, 1) = '$'),
    created_at    timestamptz NOT NULL,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    last_login_at timestamptz,
    PRIMARY KEY (org_id, name),
    CONSTRAINT local_admins_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

-- Row-level security as every organization table has (0002, 0007):
-- enabled, not forced, because the owner role runs the migrations and
-- `rotor backup`'s pg_dump, which refuses a table whose rows a policy
-- would hide from it. (Forcing would stop no one: the owner can turn it
-- off again.)
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY sessions_org ON sessions
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE local_admins ENABLE ROW LEVEL SECURITY;
CREATE POLICY local_admins_org ON local_admins
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));
