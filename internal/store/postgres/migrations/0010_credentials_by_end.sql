-- The dashboard counts an organization's credentials ending by each of a
-- few times (CountCredentialsByExpiry): with this index it reads only the
-- range of credentials ending within its last bound instead of every
-- credential of the organization.
CREATE INDEX credentials_by_end ON credentials (org_id, end_at);
