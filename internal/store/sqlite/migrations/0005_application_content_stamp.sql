-- The SyncStarted of the sync whose listing wrote an application's content
-- (name, credentials, …). Two overlapping syncs of one tenant (two rotor
-- processes) may write the same application; the content of the one that
-- started later wins, whichever writes last, so the inventory never goes
-- back to an older listing. NULL for rows written before this column (any
-- sync then replaces them).
ALTER TABLE applications ADD COLUMN content_at TEXT;
