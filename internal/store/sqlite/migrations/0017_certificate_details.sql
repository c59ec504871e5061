-- Issue 11: what a certificate credential is, beyond what Entra's listings
-- say (docs/adr/0035). Graph returns keyCredentials[].key (the public
-- certificate, DER) only to a GET of one application with
-- $select=keyCredentials, never in a listing or a delta page, so the
-- inventory reads it once per certificate and keeps what it parsed here,
-- apart from credentials: a sync rewrites an application's credentials
-- whenever its content changes, and must not forget these each time.
-- Public facts only (the certificate is public); never a private key.
-- Rows of credentials that no longer exist are not shown (reads join on
-- credentials) and go with their application.
CREATE TABLE certificate_details (
    org_id            TEXT    NOT NULL,
    tenant_id         TEXT    NOT NULL,
    app_object_id     TEXT    NOT NULL,
    key_id            TEXT    NOT NULL,
    thumbprint_sha1   TEXT    NOT NULL,
    thumbprint_sha256 TEXT    NOT NULL,
    subject           TEXT    NOT NULL,
    issuer            TEXT    NOT NULL,
    key_algorithm     TEXT    NOT NULL,
    key_size          INTEGER NOT NULL,
    not_before        TEXT,
    not_after         TEXT,
    PRIMARY KEY (org_id, tenant_id, app_object_id, key_id),
    FOREIGN KEY (org_id, tenant_id, app_object_id)
        REFERENCES applications (org_id, tenant_id, object_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The inventory's backlog query (certificates without details, after every
-- sync) visits certificate credentials only, not a tenant's every secret.
CREATE INDEX credentials_certificates ON credentials (org_id, tenant_id, app_object_id, key_id)
    WHERE kind = 'certificate';
