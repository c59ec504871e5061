-- Issue 9: the audit trail (internal/audit, ADR 20), as SQLite's migration
-- 0010. One row per audit record: who (actor kind, id, name), what
-- (action), on which object, how it ended (outcome, error class: fixed
-- vocabulary, never an error's text), when, the request and runs it
-- concerns and, for a rotation step, the run and the step. No column
-- holds a secret.
--
-- Records are numbered per organization from 1 without gaps (seq) and
-- hash-chained: hash = SHA-256(previous record's hash || the record's
-- canonical encoding). audit_heads holds each organization's newest seq
-- and hash, written in the transaction that appends, under an advisory
-- lock per organization (replicas appending at once queue), so that
-- deleting the newest records shows too.
--
-- Append-only: after every migration run the application role loses
-- UPDATE, DELETE and TRUNCATE on audit_events, and DELETE and TRUNCATE on
-- audit_heads (grant() in migrate.go): the role rotor runs as can add
-- records, and move the head forward, but never change or remove one.
-- The owner can; `rotor audit verify` is what finds what it did.
CREATE TABLE audit_events (
    org_id      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL CHECK (seq > 0),
    at          timestamptz NOT NULL,
    actor_kind  text COLLATE "C" NOT NULL,
    actor_id    text COLLATE "C" NOT NULL,
    actor_name  text NOT NULL DEFAULT '',
    action      text COLLATE "C" NOT NULL,
    object      text COLLATE "C" NOT NULL,
    outcome     text NOT NULL,
    error_class text NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT '',
    runs        text[] NOT NULL DEFAULT '{}',
    run_id      text COLLATE "C" NOT NULL DEFAULT '',
    step        text NOT NULL DEFAULT '',
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, seq),
    CONSTRAINT audit_events_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);
CREATE INDEX audit_events_by_at ON audit_events (org_id, at, seq);
CREATE INDEX audit_events_by_actor ON audit_events (org_id, actor_kind, actor_id, seq);
CREATE INDEX audit_events_by_object ON audit_events (org_id, object, seq);
CREATE INDEX audit_events_by_run ON audit_events (org_id, run_id, seq) WHERE run_id <> '';

CREATE TABLE audit_heads (
    org_id text COLLATE "C" NOT NULL PRIMARY KEY,
    seq    bigint NOT NULL CHECK (seq > 0),
    hash   bytea NOT NULL CHECK (length(hash) = 32),
    at     timestamptz NOT NULL,
    CONSTRAINT audit_heads_org_fk FOREIGN KEY (org_id) REFERENCES organizations (id)
);

-- Row-level security, as every organization's table (0002): enabled, not
-- forced, like the others, so the owner (migrations, pg_dump backups) is
-- exempt; the application role is bound.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_events_org ON audit_events
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_heads_org ON audit_heads
    USING (org_id = current_setting('rotor.org', true))
    WITH CHECK (org_id = current_setting('rotor.org', true));
