-- What rotor last delivered to each sink target of an application: the
-- credential's key id, the version the target reported after the write
-- (empty for a claim made before writing to an absent target, and for
-- sinks whose targets have no version), the run and when. Sinks whose
-- targets carry no ownership marker tell rotor's target from a foreign one
-- by it, and drift is measured against it. Never a value.
CREATE TABLE sink_deliveries (
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    tenant_id     TEXT NOT NULL,
    app_object_id TEXT NOT NULL,
    target        TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    version       TEXT NOT NULL DEFAULT '',
    run_id        TEXT NOT NULL DEFAULT '',
    delivered_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, tenant_id, app_object_id, target)
) STRICT, WITHOUT ROWID;
