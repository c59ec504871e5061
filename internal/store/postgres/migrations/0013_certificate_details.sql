-- What a certificate credential is, beyond what Entra's listings say
-- (SQLite 0017; docs/adr/0035). Graph returns keyCredentials[].key only to
-- a GET of one application with $select=keyCredentials, so the inventory
-- reads it once per certificate and keeps what it parsed here, apart from
-- credentials, which a sync rewrites whenever an application's content
-- changes. Public facts only; never a private key.
CREATE TABLE certificate_details (
    org_id            text COLLATE "C" NOT NULL,
    tenant_id         text COLLATE "C" NOT NULL,
    app_object_id     text COLLATE "C" NOT NULL,
    key_id            text COLLATE "C" NOT NULL,
    thumbprint_sha1   text NOT NULL,
    thumbprint_sha256 text NOT NULL,
    subject           text NOT NULL,
    issuer            text NOT NULL,
    key_algorithm     text NOT NULL,
    key_size          integer NOT NULL,
    not_before        timestamptz,
    not_after         timestamptz,
    PRIMARY KEY (org_id, tenant_id, app_object_id, key_id),
    CONSTRAINT certificate_details_app_fk FOREIGN KEY (org_id, tenant_id, app_object_id)
        REFERENCES applications (org_id, tenant_id, object_id) ON DELETE CASCADE
);

-- Row-level security as every organization table has.
ALTER TABLE certificate_details ENABLE ROW LEVEL SECURITY;
CREATE POLICY certificate_details_org ON certificate_details
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

-- The inventory's backlog query (certificates without details, after every
-- sync) visits certificate credentials only, not a tenant's every secret.
CREATE INDEX credentials_certificates ON credentials (org_id, tenant_id, app_object_id, key_id)
    WHERE kind = 'certificate';
