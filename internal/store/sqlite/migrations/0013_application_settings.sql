-- Per-application settings layered over the governing policy (the
-- application page's form, `rotor apps settings`): each column NULL
-- inherits the policy's value. Keyed by organization and application
-- object id, without a foreign key to applications, so a setting survives
-- the application leaving the inventory and coming back. Durations are
-- nanoseconds, as policies store them; keyvault_url and keyvault_secret
-- say where the Key Vault sink writes for this application (never a
-- value). updated_by is the actor ("kind:id").
CREATE TABLE application_settings (
    org_id          TEXT    NOT NULL REFERENCES organizations (id),
    object_id       TEXT    NOT NULL,
    enabled         INTEGER CHECK (enabled IN (0, 1)),
    notify          INTEGER CHECK (notify IN (0, 1)),
    lifetime_ns     INTEGER,
    renew_before_ns INTEGER,
    overlap_ns      INTEGER,
    keyvault_url    TEXT,
    keyvault_secret TEXT,
    updated_at      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, object_id)
) STRICT, WITHOUT ROWID;
