-- Per-application settings layered over the governing policy (SQLite
-- 0013): each column NULL inherits the policy's value. Keyed by
-- organization and application object id, without a foreign key to
-- applications, so a setting survives the application leaving the
-- inventory and coming back. Durations are nanoseconds, as policies store
-- them; keyvault_url and keyvault_secret say where the Key Vault sink
-- writes for this application (never a value). updated_by is the actor
-- ("kind:id").
CREATE TABLE application_settings (
    org_id          text COLLATE "C" NOT NULL,
    object_id       text COLLATE "C" NOT NULL,
    enabled         boolean,
    notify          boolean,
    lifetime_ns     bigint,
    renew_before_ns bigint,
    overlap_ns      bigint,
    keyvault_url    text,
    keyvault_secret text,
    updated_at      timestamptz NOT NULL,
    updated_by      text NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, object_id),
    CONSTRAINT application_settings_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

-- Row-level security as every organization table has (0002, 0007):
-- enabled, not forced, so the owner role can migrate and back up.
ALTER TABLE application_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY application_settings_org ON application_settings
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));
