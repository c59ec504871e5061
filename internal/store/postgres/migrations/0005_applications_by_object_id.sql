-- A lookup of an application by its object id (`rotor explain APP`, the
-- inventory completing a change) does not know the tenant, so the primary
-- key (org_id, tenant_id, object_id) cannot serve it: 29 ms per lookup at
-- 100,000 applications (BenchmarkStoreOps100k), a scan of the org's rows.
CREATE INDEX applications_by_object_id ON applications (org_id, object_id);
