-- rotor's schema on PostgreSQL: the tables of SQLite's migrations 0001-0008,
-- as they stand after them, in one step (no PostgreSQL database predates
-- it). Every organization's row carries org_id first in its primary key and
-- every index, and every query is scoped to one organization; row-level
-- security (0002) is a second wall behind that.
--
-- Times are timestamptz: UTC instants to the microsecond (rotor truncates,
-- never rounds, what it writes). NULL is the zero time. Text that is
-- ordered or compared in ranges is COLLATE "C": byte order, the same as
-- SQLite's BINARY, whatever the database's default collation.
--
-- These tables live in the first schema of the search_path (public by
-- default; set search_path in database.url to keep rotor's apart). The
-- role that runs the migrations owns them; the application role is granted
-- what it needs after every migration run and must not own them (see the
-- package documentation).

CREATE TABLE organizations (
    id         text COLLATE "C" NOT NULL PRIMARY KEY CHECK (id <> ''),
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE applications (
    org_id           text COLLATE "C" NOT NULL,
    tenant_id        text COLLATE "C" NOT NULL,
    object_id        text COLLATE "C" NOT NULL,
    app_id           text COLLATE "C" NOT NULL,
    display_name     text COLLATE "C" NOT NULL,
    sign_in_audience text NOT NULL,
    created_at       timestamptz,
    owners           text[] NOT NULL, -- directory object ids, sorted
    fingerprint      bytea NOT NULL,  -- hash of Entra's content and credentials (codec.Fingerprinter)
    min_end          timestamptz,     -- earliest credential end; NULL without credentials
    -- The SyncStarted of the sync whose listing wrote the content: an older
    -- listing never replaces a newer one.
    content_at       timestamptz,
    PRIMARY KEY (org_id, tenant_id, object_id),
    CONSTRAINT applications_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);
CREATE INDEX applications_by_name ON applications (org_id, display_name, object_id);
CREATE INDEX applications_by_app_id ON applications (org_id, app_id);
CREATE INDEX applications_by_min_end ON applications (org_id, min_end);

CREATE TABLE credentials (
    org_id        text COLLATE "C" NOT NULL,
    tenant_id     text COLLATE "C" NOT NULL,
    app_object_id text COLLATE "C" NOT NULL,
    key_id        text COLLATE "C" NOT NULL,
    kind          text NOT NULL,
    display_name  text NOT NULL,
    hint          text NOT NULL,
    thumbprint    text NOT NULL,
    start_at      timestamptz,
    end_at        timestamptz,
    PRIMARY KEY (org_id, tenant_id, app_object_id, key_id),
    CONSTRAINT credentials_app_fk FOREIGN KEY (org_id, tenant_id, app_object_id)
        REFERENCES applications (org_id, tenant_id, object_id) ON DELETE CASCADE
);

-- Which connections see an application, and which may change it; each
-- connection's sync writes its own rows.
CREATE TABLE app_access (
    org_id     text COLLATE "C" NOT NULL,
    tenant_id  text COLLATE "C" NOT NULL,
    object_id  text COLLATE "C" NOT NULL,
    connection text COLLATE "C" NOT NULL,
    can_change boolean NOT NULL,     -- the connection's identity owns it (rotation purpose)
    synced_at  timestamptz NOT NULL, -- the SyncStarted of the connection's last sync that saw it
    PRIMARY KEY (org_id, tenant_id, object_id, connection),
    CONSTRAINT app_access_app_fk FOREIGN KEY (org_id, tenant_id, object_id)
        REFERENCES applications (org_id, tenant_id, object_id) ON DELETE CASCADE
);
CREATE INDEX app_access_by_connection ON app_access (org_id, connection);

CREATE TABLE runs (
    org_id        text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    connection    text NOT NULL,
    tenant_id     text COLLATE "C" NOT NULL,
    app_object_id text COLLATE "C" NOT NULL,
    app_id        text NOT NULL,
    app_name      text NOT NULL,
    policy        text NOT NULL,
    kind          text NOT NULL,
    "trigger"     text NOT NULL,
    state         text NOT NULL CHECK (state IN ('planned', 'created', 'propagated', 'verified', 'retiring', 'done', 'failed', 'abandoned')),
    new_key_id    text NOT NULL,
    new_end       timestamptz,
    sinks_started boolean NOT NULL,
    retire_at     timestamptz,
    error         text NOT NULL,
    failure       text NOT NULL DEFAULT '', -- 'transient' or 'permanent' for a failed run
    attempts      integer NOT NULL,
    replaces      text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    -- The process (leases.holder) the run belongs to; the fencing token.
    lease_holder  text COLLATE "C" NOT NULL DEFAULT '',
    -- The run's place among its application's runs, given in the insert's
    -- transaction (under an advisory lock per application).
    app_seq       bigint NOT NULL,
    PRIMARY KEY (org_id, id),
    CONSTRAINT runs_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);
-- At most one active run per application, enforced by the database. The
-- states are those of domain.RunState.Active.
CREATE UNIQUE INDEX runs_one_active_per_app ON runs (org_id, tenant_id, app_object_id)
    WHERE state IN ('planned', 'created', 'propagated', 'verified');
-- Two runs of one application never share a sequence number.
CREATE UNIQUE INDEX runs_seq_per_app ON runs (org_id, tenant_id, app_object_id, app_seq);
CREATE INDEX runs_by_created ON runs (org_id, created_at, id);
CREATE INDEX runs_by_app ON runs (org_id, app_object_id, created_at, id);
CREATE INDEX runs_by_state ON runs (org_id, state);
CREATE INDEX runs_by_holder ON runs (org_id, lease_holder) WHERE lease_holder <> '';

CREATE TABLE run_events (
    org_id  text COLLATE "C" NOT NULL,
    run_id  text COLLATE "C" NOT NULL,
    seq     integer NOT NULL,
    at      timestamptz NOT NULL,
    state   text NOT NULL,
    step    text NOT NULL,
    target  text NOT NULL DEFAULT '', -- the sink target a sink step wrote (sink.TargetID)
    message text NOT NULL,
    PRIMARY KEY (org_id, run_id, seq),
    CONSTRAINT run_events_run_fk FOREIGN KEY (org_id, run_id) REFERENCES runs (org_id, id) ON DELETE CASCADE
);

-- One row per live rotor process. A run belongs to the process named in
-- runs.lease_holder while that process's row has not expired by the
-- database's clock (ADR 9, ADR 16). No organization data: a process serves
-- every organization, like River's own tables, so no row-level security.
CREATE TABLE leases (
    holder      text COLLATE "C" NOT NULL PRIMARY KEY,
    description text NOT NULL, -- "rotor serve, pid 4242 on host-a"
    started_at  timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Pinned sink targets: what a sink resolved for an application at its
-- first delivery; moving one keeps the old target updated until
-- retire_old_at.
CREATE TABLE sink_targets (
    org_id        text COLLATE "C" NOT NULL,
    tenant_id     text COLLATE "C" NOT NULL,
    app_object_id text COLLATE "C" NOT NULL,
    policy        text COLLATE "C" NOT NULL,
    sink_index    integer NOT NULL CHECK (sink_index >= 0),
    sink_type     text NOT NULL,
    target        text NOT NULL,
    pinned_at     timestamptz NOT NULL,
    pinned_by_run text NOT NULL,
    previous      text NOT NULL DEFAULT '',
    retire_old_at timestamptz,
    PRIMARY KEY (org_id, tenant_id, app_object_id, policy, sink_index),
    CONSTRAINT sink_targets_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

-- Connections and policies. No column holds a secret value: a connection's
-- client secret and certificate password are references (store.SecretRef
-- as JSON, '' when none), or the marker {"kind":"inline"}.
CREATE TABLE connections (
    org_id            text COLLATE "C" NOT NULL,
    name              text COLLATE "C" NOT NULL,
    tenant_id         text NOT NULL,
    cloud             text NOT NULL,
    purpose           text NOT NULL,
    sim_file          text NOT NULL,
    auth_method       text NOT NULL,
    identity          text NOT NULL, -- JSON: the identity's non-secret parameters
    client_secret     text NOT NULL, -- JSON store.SecretRef, '' when none
    cert_password     text NOT NULL, -- JSON store.SecretRef, '' when none
    auxiliary_tenants text NOT NULL, -- JSON array
    provisioned       boolean NOT NULL,
    source            text COLLATE "C" NOT NULL, -- the provisioning file; '' when not provisioned
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (org_id, name),
    CONSTRAINT connections_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

CREATE TABLE policies (
    org_id           text COLLATE "C" NOT NULL,
    name             text COLLATE "C" NOT NULL,
    position         integer NOT NULL,
    connection       text NOT NULL,
    enabled          boolean NOT NULL,
    kind             text NOT NULL,
    selector         text NOT NULL, -- JSON
    lifetime_ns      bigint NOT NULL,
    renew_before_ns  bigint NOT NULL,
    overlap_ns       bigint NOT NULL,
    notify_before_ns bigint NOT NULL,
    verify           boolean NOT NULL,
    retire_unmanaged boolean NOT NULL,
    sinks            text NOT NULL, -- JSON array of {type, settings}, in order
    provisioned      boolean NOT NULL,
    source           text COLLATE "C" NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (org_id, name),
    CONSTRAINT policies_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);
CREATE INDEX policies_in_order ON policies (org_id, provisioned DESC, position, name);

-- Every connection's last sign-in/sync success and failure, as any rotor
-- process saw it. failure is rotor's description of the refusal, never a
-- secret; roles the Graph application roles of the last token.
CREATE TABLE connection_health (
    org_id          text COLLATE "C" NOT NULL,
    connection      text COLLATE "C" NOT NULL,
    last_success_at timestamptz,
    last_failure_at timestamptz,
    failure         text NOT NULL DEFAULT '',
    aadsts          integer NOT NULL DEFAULT 0,
    roles           text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (org_id, connection),
    CONSTRAINT connection_health_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);
