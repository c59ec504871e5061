-- What rotor last delivered to each sink target of an application (SQLite
-- 0015): key id, the version the target reported after the write (empty
-- for a claim made before writing to an absent target), run and time.
-- Ownership of marker-less targets and drift are judged by it. Never a
-- value.
CREATE TABLE sink_deliveries (
    org_id        text COLLATE "C" NOT NULL,
    tenant_id     text COLLATE "C" NOT NULL,
    app_object_id text COLLATE "C" NOT NULL,
    target        text COLLATE "C" NOT NULL,
    key_id        text NOT NULL,
    version       text NOT NULL DEFAULT '',
    run_id        text NOT NULL DEFAULT '',
    delivered_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, tenant_id, app_object_id, target),
    CONSTRAINT sink_deliveries_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

-- Row-level security as every organization table has (0002, 0007).
ALTER TABLE sink_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY sink_deliveries_org ON sink_deliveries
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));
