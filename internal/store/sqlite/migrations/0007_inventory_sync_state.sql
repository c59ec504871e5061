-- Issue 7: incremental inventory syncs (ADR 17). One row per connection:
-- where Graph's change tracking resumes (the delta link of its last
-- round), and when the connection last synced, so that a sync which found
-- nothing new writes this one row and nothing else.
--
-- No column holds a secret. A delta link is Graph's own URL of the
-- applications delta function with an opaque state token ($deltatoken):
-- it names change state Graph keeps for seven days and grants nothing
-- without a bearer token of an identity that may read the applications.
-- rotor checks before storing one that it is https, on the Graph host,
-- the applications delta path, without user information, and carries
-- only OData options ($…).
CREATE TABLE inventory_syncs (
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    connection TEXT NOT NULL,
    scope      TEXT NOT NULL, -- what delta_link is valid for: the tenant and the identity that read it
    delta_link TEXT NOT NULL, -- '' when none
    synced_at  TEXT NOT NULL, -- SyncStarted of the last successful sync, full or incremental
    full_at    TEXT,          -- SyncStarted of the last successful full sync
    PRIMARY KEY (org_id, connection)
) STRICT, WITHOUT ROWID;

-- A connection's views by object id, with whether it may change them, in
-- one index: an incremental sync compares them with what the identity
-- owns at every sync (ReconcileManageable), looking each owned
-- application up and walking the views it may change, from the index
-- alone. It replaces the index on (org_id, connection), its prefix.
DROP INDEX app_access_by_connection;
CREATE INDEX app_access_by_connection ON app_access (org_id, connection, object_id, can_change);
