-- Issue 7: a failed run says whether retrying can help ('transient') or a
-- human must act ('permanent'), so the planner's back-off can be short for
-- the first and long for the second. '' for runs that did not fail (and for
-- runs that failed before this column: treated as permanent).
ALTER TABLE runs ADD COLUMN failure TEXT NOT NULL DEFAULT '';
