-- Issue 11: certificate credentials (docs/adr/0033). A policy of kind
-- certificate keeps its certificate settings (key type, subject, DNS
-- names, the bootstrap certificate's *reference*, never a key) as one
-- JSON object; '{}' is every default, which is what every policy from
-- before this migration gets. (SQLite 0018.) policies already has
-- row-level security (0002).
ALTER TABLE policies ADD COLUMN certificate text NOT NULL DEFAULT '{}';
