-- Incremental inventory syncs (ADR 17), as SQLite's migration 0007. One
-- row per organization and connection: where Graph's change tracking
-- resumes (the delta link of its last round), and when the connection
-- last synced, so that a sync which found nothing new writes this one row
-- and nothing else. An application's SyncedAt is the later of its
-- connection view's stamp and that connection's synced_at.
--
-- No column holds a secret. A delta link is Graph's own URL of the
-- applications delta function with an opaque state token ($deltatoken):
-- it names change state Graph keeps for seven days and grants nothing
-- without a bearer token of an identity that may read the applications.
-- rotor checks before storing one that it is https, on the Graph host,
-- the applications delta path, without user information, and carries
-- only OData options ($…).
--
-- Deleting a connection deletes its row (the store does, as it deletes
-- the connection's views and health): a connection made again under the
-- name may reach another tenant, where the old delta link means nothing.
CREATE TABLE inventory_syncs (
    org_id     text COLLATE "C" NOT NULL,
    connection text COLLATE "C" NOT NULL,
    scope      text NOT NULL,    -- what delta_link is valid for: the tenant and the identity that read it
    delta_link text NOT NULL,    -- '' when none
    synced_at  timestamptz NOT NULL, -- SyncStarted of the last successful sync, full or incremental
    full_at    timestamptz,      -- SyncStarted of the last successful full sync
    PRIMARY KEY (org_id, connection),
    CONSTRAINT inventory_syncs_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

-- Row-level security, as every organization's table (0002).
ALTER TABLE inventory_syncs ENABLE ROW LEVEL SECURITY;
CREATE POLICY inventory_syncs_org ON inventory_syncs
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

-- A connection's views by object id, with whether it may change them, in
-- one index: an incremental sync compares them with what the identity
-- owns at every sync (ReconcileManageable), walking the views it may
-- change in object id order from the index alone (an index-only scan,
-- once vacuum has set the visibility map). It replaces the index on
-- (org_id, connection), its prefix.
DROP INDEX app_access_by_connection;
CREATE INDEX app_access_by_connection ON app_access (org_id, connection, object_id, can_change);
