-- Issue 9: "members see only the applications they own in Entra"
-- (SQLite 0016, docs/adr/0030). owned_apps_only is the organization's
-- switch. A session restricted by it keeps, in owned_object_ids, the
-- object ids of the applications the person owned in Entra at sign-in
-- (a JSON array; '[]' owns nothing), read from Graph with the person's
-- delegated token, which is never stored. NULL: the session is
-- unrestricted (an Admin, the break-glass admin, or the switch was off at
-- sign-in). Both tables already have row-level security (0002, 0008).
ALTER TABLE organizations ADD COLUMN owned_apps_only boolean NOT NULL DEFAULT false;
ALTER TABLE sessions ADD COLUMN owned_object_ids jsonb CHECK (owned_object_ids IS NULL OR jsonb_typeof(owned_object_ids) = 'array');
