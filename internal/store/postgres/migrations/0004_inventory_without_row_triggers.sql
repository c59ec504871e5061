-- A first sync of 100,000 applications checked a foreign key for each of
-- their credentials and each connection's view of them: in PostgreSQL a
-- foreign key is a trigger that runs a query per inserted row, and these
-- two were a quarter of the sync's time (docs/benchmarks.md). The store
-- keeps both invariants itself, under the organization's inventory lock:
-- a view or a credential is written only with or after its application in
-- the same transaction, and the statements that delete applications delete
-- their credentials in the same statement (an application is deleted only
-- once no view of it is left). The organization's foreign key stays.
ALTER TABLE credentials DROP CONSTRAINT credentials_app_fk;
ALTER TABLE app_access DROP CONSTRAINT app_access_app_fk;
