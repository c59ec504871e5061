-- Issue 6: every organization owns its connections and policies in the
-- store. rotor.yaml provisions some of them at start (provisioned = 1,
-- source = the file); the UI and the API create and edit the others, and
-- may not change a provisioned row.
--
-- No column holds a secret value. A connection's client secret and
-- certificate password are references (store.SecretRef as JSON): an
-- environment variable, a file, a Key Vault secret, or the marker
-- {"kind":"inline"} for a value written literally in rotor.yaml, which
-- rotor keeps in memory only.

CREATE TABLE connections (
    org_id            TEXT    NOT NULL REFERENCES organizations (id),
    name              TEXT    NOT NULL,
    tenant_id         TEXT    NOT NULL,
    cloud             TEXT    NOT NULL,
    purpose           TEXT    NOT NULL,
    sim_file          TEXT    NOT NULL,
    auth_method       TEXT    NOT NULL,
    identity          TEXT    NOT NULL, -- JSON: the identity's non-secret parameters
    client_secret     TEXT    NOT NULL, -- JSON store.SecretRef, '' when none
    cert_password     TEXT    NOT NULL, -- JSON store.SecretRef, '' when none
    auxiliary_tenants TEXT    NOT NULL, -- JSON array
    provisioned       INTEGER NOT NULL,
    source            TEXT    NOT NULL, -- the provisioning file; '' when not provisioned
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    PRIMARY KEY (org_id, name)
) STRICT, WITHOUT ROWID;

-- Policies in order: the first that matches an application governs it.
-- Provisioned policies come first, in file order; the others follow by
-- position, then name.
CREATE TABLE policies (
    org_id           TEXT    NOT NULL REFERENCES organizations (id),
    name             TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    connection       TEXT    NOT NULL,
    enabled          INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    selector         TEXT    NOT NULL, -- JSON
    lifetime_ns      INTEGER NOT NULL,
    renew_before_ns  INTEGER NOT NULL,
    overlap_ns       INTEGER NOT NULL,
    notify_before_ns INTEGER NOT NULL,
    verify           INTEGER NOT NULL,
    retire_unmanaged INTEGER NOT NULL,
    sinks            TEXT    NOT NULL, -- JSON array of {type, settings}, in order
    provisioned      INTEGER NOT NULL,
    source           TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (org_id, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX policies_in_order ON policies (org_id, provisioned DESC, position, name);
