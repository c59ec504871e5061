-- Issue 6: many processes, several connections per tenant, pinned targets.

-- Leases: one row per live rotor process (serve, rotate, …). A run belongs
-- to the process named in runs.lease_holder while that process's row has
-- not expired; every journal write and every side effect of a run is
-- fenced by it (ADR 9). This table holds no organization data: a process
-- serves every organization, like River's own tables.
CREATE TABLE leases (
    holder      TEXT NOT NULL PRIMARY KEY,
    description TEXT NOT NULL, -- "rotor serve, pid 4242 on host-a"
    started_at  TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;

ALTER TABLE runs ADD COLUMN lease_holder TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_holder ON runs (org_id, lease_holder) WHERE lease_holder <> '';

-- The sink target a sink step wrote (sink.TargetID), so that recovery asks
-- the place the run wrote to.
ALTER TABLE run_events ADD COLUMN target TEXT NOT NULL DEFAULT '';

-- Which connections see an application, and which may change it. Several
-- connections may reach one tenant (rotation beside read); each sync writes
-- its own rows, so one connection's sync never hides another's view.
CREATE TABLE app_access (
    org_id     TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL,
    object_id  TEXT    NOT NULL,
    connection TEXT    NOT NULL,
    can_change INTEGER NOT NULL, -- the connection's identity owns it (rotation purpose)
    synced_at  TEXT    NOT NULL, -- the SyncStarted of the connection's last sync that saw it
    PRIMARY KEY (org_id, tenant_id, object_id, connection),
    FOREIGN KEY (org_id, tenant_id, object_id)
        REFERENCES applications (org_id, tenant_id, object_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX app_access_by_connection ON app_access (org_id, connection);

INSERT INTO app_access (org_id, tenant_id, object_id, connection, can_change, synced_at)
    SELECT org_id, tenant_id, object_id, connection, manageable, synced_at FROM applications;
DROP INDEX applications_by_connection;
ALTER TABLE applications DROP COLUMN connection;
ALTER TABLE applications DROP COLUMN manageable;
ALTER TABLE applications DROP COLUMN synced_at;

-- Pinned sink targets: what a sink resolved for an application at its first
-- delivery (a Key Vault secret's URL, later a service connection or a
-- Kubernetes Secret). Kept when the application is renamed; moving one is an
-- explicit act that keeps the old target updated until the overlap passed.
CREATE TABLE sink_targets (
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    tenant_id     TEXT NOT NULL,
    app_object_id TEXT NOT NULL,
    policy        TEXT NOT NULL,
    sink_index    INTEGER NOT NULL,
    sink_type     TEXT NOT NULL,
    target        TEXT NOT NULL, -- sink.TargetID
    pinned_at     TEXT NOT NULL,
    pinned_by_run TEXT NOT NULL,
    -- A moved target: the one it replaced, kept updated until retire_old_at.
    previous      TEXT NOT NULL DEFAULT '',
    retire_old_at TEXT,
    PRIMARY KEY (org_id, tenant_id, app_object_id, policy, sink_index)
) STRICT, WITHOUT ROWID;
