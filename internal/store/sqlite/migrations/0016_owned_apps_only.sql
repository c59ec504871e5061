-- Issue 9: "members see only the applications they own in Entra"
-- (docs/adr/0030). owned_apps_only is the organization's switch (0/1).
-- A session restricted by it keeps, in owned_object_ids, the object ids of
-- the applications the person owned in Entra at sign-in (a JSON array;
-- '[]' owns nothing), read from Graph with the person's delegated token,
-- which is never stored. NULL: the session is unrestricted (an Admin, the
-- break-glass admin, or the switch was off at sign-in).
ALTER TABLE organizations ADD COLUMN owned_apps_only INTEGER NOT NULL DEFAULT 0 CHECK (owned_apps_only IN (0, 1));
ALTER TABLE sessions ADD COLUMN owned_object_ids TEXT CHECK (owned_object_ids IS NULL OR json_valid(owned_object_ids));
