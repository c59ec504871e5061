-- Issue 9: API keys rotor issues for machine access (SQLite 0011). rotor
-- keeps the SHA-256 of a key (hash, 32 bytes), never the key: the key is
-- shown once when it is made. id is part of the key
-- (rtr_<org>_<id>_<secret>), so a presented key is found by primary key
-- under its organization's rotor.org setting. role is admin, operator or
-- viewer in org_id only; created_by the actor who made it ("kind:id").
CREATE TABLE api_keys (
    org_id     text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    name       text NOT NULL,
    role       text COLLATE "C" NOT NULL,
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
    created_at timestamptz NOT NULL,
    created_by text NOT NULL DEFAULT '',
    expires_at timestamptz,
    revoked_at timestamptz,
    PRIMARY KEY (org_id, id),
    CONSTRAINT api_keys_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

-- Row-level security as every organization table has (0002): enabled, not
-- forced, because the owner role runs the migrations and `rotor backup`'s
-- pg_dump, which refuses a table whose rows a policy would hide from it.
-- (Forcing would stop no one: the owner can turn forcing off again.)
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_keys_org ON api_keys
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));
