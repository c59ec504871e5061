-- rotor's first schema. Every table carries org_id first in its primary key
-- and every index, so every query is scoped to one organization.
--
-- Times are TEXT in one fixed-width UTC form, 2006-01-02T15:04:05.000000000Z,
-- so that they sort and compare as strings and keep nanoseconds. NULL is the
-- zero time. (Unix nanoseconds would overflow in 2262; Entra still holds
-- "never expires" secrets ending 2299-12-31.)

CREATE TABLE organizations (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE applications (
    org_id           TEXT    NOT NULL REFERENCES organizations (id),
    tenant_id        TEXT    NOT NULL,
    object_id        TEXT    NOT NULL,
    connection       TEXT    NOT NULL,
    app_id           TEXT    NOT NULL,
    display_name     TEXT    NOT NULL,
    sign_in_audience TEXT    NOT NULL,
    created_at       TEXT,
    manageable       INTEGER NOT NULL,
    owners           TEXT    NOT NULL, -- JSON array of directory object ids, sorted
    fingerprint      BLOB    NOT NULL, -- hash of the content above and the credentials
    synced_at        TEXT    NOT NULL, -- the SyncStarted of the last sync that saw it
    min_end          TEXT,             -- earliest credential end; NULL without credentials
    PRIMARY KEY (org_id, tenant_id, object_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX applications_by_name ON applications (org_id, display_name, object_id);
CREATE INDEX applications_by_app_id ON applications (org_id, app_id);
CREATE INDEX applications_by_min_end ON applications (org_id, min_end);
-- Not (…, synced_at): every sync moves synced_at of every row, and an index
-- on it would be rewritten 100,000 times per sync to save FinishSync one scan.
CREATE INDEX applications_by_connection ON applications (org_id, connection);

CREATE TABLE credentials (
    org_id        TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    app_object_id TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    hint          TEXT NOT NULL,
    thumbprint    TEXT NOT NULL,
    start_at      TEXT,
    end_at        TEXT,
    PRIMARY KEY (org_id, tenant_id, app_object_id, key_id),
    FOREIGN KEY (org_id, tenant_id, app_object_id)
        REFERENCES applications (org_id, tenant_id, object_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE runs (
    org_id        TEXT    NOT NULL REFERENCES organizations (id),
    id            TEXT    NOT NULL,
    connection    TEXT    NOT NULL,
    tenant_id     TEXT    NOT NULL,
    app_object_id TEXT    NOT NULL,
    app_id        TEXT    NOT NULL,
    app_name      TEXT    NOT NULL,
    policy        TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    "trigger"     TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    new_key_id    TEXT    NOT NULL,
    new_end       TEXT,
    sinks_started INTEGER NOT NULL,
    retire_at     TEXT,
    error         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL,
    replaces      TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    ended_at      TEXT,
    PRIMARY KEY (org_id, id)
) STRICT, WITHOUT ROWID;

-- At most one active run per application, enforced by the database: two
-- planners racing cannot both start a rotation. The states are those of
-- domain.RunState.Active.
CREATE UNIQUE INDEX runs_one_active_per_app ON runs (org_id, tenant_id, app_object_id)
    WHERE state IN ('planned', 'created', 'propagated', 'verified');
CREATE INDEX runs_by_created ON runs (org_id, created_at, id);
CREATE INDEX runs_by_app ON runs (org_id, app_object_id, created_at, id);
CREATE INDEX runs_by_state ON runs (org_id, state);

CREATE TABLE run_events (
    org_id  TEXT    NOT NULL,
    run_id  TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    at      TEXT    NOT NULL,
    state   TEXT    NOT NULL,
    step    TEXT    NOT NULL,
    message TEXT    NOT NULL,
    PRIMARY KEY (org_id, run_id, seq),
    FOREIGN KEY (org_id, run_id) REFERENCES runs (org_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
