-- Issue 9: the audit trail (internal/audit, ADR 20). One row per audit
-- record: who (actor kind, id, name), what (action), on which object, how
-- it ended (outcome, error class: fixed vocabulary, never an error's
-- text), when, the request and runs it concerns and, for a rotation step,
-- the run and the step. No column holds a secret.
--
-- Records are numbered per organization from 1 without gaps (seq) and
-- hash-chained: hash = SHA-256(previous record's hash || the record's
-- canonical encoding). audit_heads holds each organization's newest seq
-- and hash, written in the transaction that appends (SQLite's one writer
-- is the lock), so that deleting the newest records shows too.
--
-- Append-only: rotor has no statement that changes or deletes a record,
-- and the triggers below refuse one from anywhere else that goes through
-- SQLite (a bug, a hand-typed query). Whoever can write the file can drop
-- them; `rotor audit verify` is what finds what they did then.
CREATE TABLE audit_events (
    org_id      TEXT    NOT NULL REFERENCES organizations (id),
    seq         INTEGER NOT NULL CHECK (seq > 0),
    at          TEXT    NOT NULL,
    actor_kind  TEXT    NOT NULL,
    actor_id    TEXT    NOT NULL,
    actor_name  TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL,
    object      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    error_class TEXT    NOT NULL DEFAULT '',
    request_id  TEXT    NOT NULL DEFAULT '',
    runs        TEXT    NOT NULL DEFAULT '[]', -- JSON array of run ids
    run_id      TEXT    NOT NULL DEFAULT '',
    step        TEXT    NOT NULL DEFAULT '',
    hash        BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX audit_events_by_at ON audit_events (org_id, at, seq);
CREATE INDEX audit_events_by_actor ON audit_events (org_id, actor_kind, actor_id, seq);
CREATE INDEX audit_events_by_object ON audit_events (org_id, object, seq);
CREATE INDEX audit_events_by_run ON audit_events (org_id, run_id, seq) WHERE run_id <> '';

CREATE TABLE audit_heads (
    org_id TEXT    NOT NULL PRIMARY KEY REFERENCES organizations (id),
    seq    INTEGER NOT NULL CHECK (seq > 0),
    hash   BLOB    NOT NULL CHECK (length(hash) = 32),
    at     TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_heads_never_deleted BEFORE DELETE ON audit_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_heads rows are never deleted');
END;
