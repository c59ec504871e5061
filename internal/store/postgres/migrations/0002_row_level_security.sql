-- Row-level security per organization: a second wall behind the store's
-- own scoping (every query names its org). The store sets rotor.org at the
-- start of every transaction (set_config(..., true), so it ends with the
-- transaction and never leaks to the pooled connection's next user); a
-- row of an organization is visible, and may be written, only under that
-- organization's setting. Without a setting nothing is visible:
-- current_setting('rotor.org', true) is NULL or '', and no org id is.
--
-- The application role is neither the tables' owner nor a superuser nor
-- BYPASSRLS (the store checks when it opens), so it cannot step around
-- these policies. The owner, which runs the migrations (and backups), is
-- exempt: row security is enabled, not forced.

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_org ON organizations
    USING (id = current_setting('rotor.org', true))
    WITH CHECK (id = current_setting('rotor.org', true));

ALTER TABLE applications ENABLE ROW LEVEL SECURITY;
CREATE POLICY applications_org ON applications
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE credentials ENABLE ROW LEVEL SECURITY;
CREATE POLICY credentials_org ON credentials
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE app_access ENABLE ROW LEVEL SECURITY;
CREATE POLICY app_access_org ON app_access
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY runs_org ON runs
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE run_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY run_events_org ON run_events
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE sink_targets ENABLE ROW LEVEL SECURITY;
CREATE POLICY sink_targets_org ON sink_targets
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE connections ENABLE ROW LEVEL SECURITY;
CREATE POLICY connections_org ON connections
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE policies ENABLE ROW LEVEL SECURITY;
CREATE POLICY policies_org ON policies
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE connection_health ENABLE ROW LEVEL SECURITY;
CREATE POLICY connection_health_org ON connection_health
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

-- The one read across organizations: the list of them (a process serves
-- every organization). It runs as the owner, so row security does not
-- apply, and returns ids, names and creation times only. search_path is
-- the migration's (rotor's schema, then pg_temp), fixed at creation, so
-- nobody can put another "organizations" in front of it.
CREATE FUNCTION rotor_list_organizations()
    RETURNS TABLE (id text, name text, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
    SELECT o.id, o.name, o.created_at FROM organizations o ORDER BY o.id
$$;
REVOKE ALL ON FUNCTION rotor_list_organizations() FROM PUBLIC;
