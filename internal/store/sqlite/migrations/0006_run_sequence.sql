-- A run's place among its application's runs, given by the database when
-- the run is created (the highest so far, plus one). Retirement compares
-- it, never timestamps: two runs of one application can start within the
-- same second (Entra's startDateTime has seconds), and processes on
-- different hosts disagree about the time. A retiring run removes only
-- credentials of runs with a lower sequence.
ALTER TABLE runs ADD COLUMN app_seq INTEGER NOT NULL DEFAULT 0;

UPDATE runs SET app_seq = (
    SELECT count(*) FROM runs AS r2
    WHERE r2.org_id = runs.org_id AND r2.tenant_id = runs.tenant_id AND r2.app_object_id = runs.app_object_id
      AND (r2.created_at < runs.created_at OR (r2.created_at = runs.created_at AND r2.id <= runs.id))
);
