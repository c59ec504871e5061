-- `rotor explain APP` and every lookup of an application by its object id
-- scanned the organization's whole name index: the primary key is
-- (org_id, tenant_id, object_id), and a lookup does not know the tenant.
-- 0.9 s per lookup at 100,000 applications (BenchmarkStoreOps100k).
CREATE INDEX applications_by_object_id ON applications (org_id, object_id);
