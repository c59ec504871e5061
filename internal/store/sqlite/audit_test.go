package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/storetest"
)

// fileTamperer is someone with write access to the database file: it
// opens the file itself, drops the append-only triggers, and edits.
type fileTamperer struct{ db *sql.DB }

var _ storetest.Tamperer = (*fileTamperer)(nil)

func newFileTamperer(t *testing.T, path string) *fileTamperer {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	for _, q := range []string{
		`DROP TRIGGER audit_events_append_only_update`,
		`DROP TRIGGER audit_events_append_only_delete`,
		`DROP TRIGGER audit_heads_never_deleted`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	return &fileTamperer{db: db}
}

func (f *fileTamperer) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	_, err := f.db.Exec(q, args...)
	require.NoError(t, err, q)
}

func (f *fileTamperer) SetObject(t *testing.T, org domain.OrgID, seq int64, object string) {
	f.exec(t, `UPDATE audit_events SET object = ? WHERE org_id = ? AND seq = ?`, object, string(org), seq)
}

func (f *fileTamperer) Delete(t *testing.T, org domain.OrgID, seq int64) {
	f.exec(t, `DELETE FROM audit_events WHERE org_id = ? AND seq = ?`, string(org), seq)
}

func (f *fileTamperer) Insert(t *testing.T, r audit.Record) {
	runs, err := json.Marshal(nonNil(r.Runs))
	require.NoError(t, err)
	f.exec(t, `INSERT INTO audit_events (org_id, `+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(r.Org), r.Seq, encTime(r.At), r.Actor.Kind, r.Actor.ID, r.Actor.Name, r.Action, r.Object, r.Outcome,
		r.Error, r.RequestID, string(runs), r.RunID, r.Step, r.Hash[:])
}

func (f *fileTamperer) Renumber(t *testing.T, org domain.OrgID, from, by int64) {
	// Through a high range, so that no two rows share a number mid-way.
	f.exec(t, `UPDATE audit_events SET seq = seq + 1000000 WHERE org_id = ? AND seq >= ?`, string(org), from)
	f.exec(t, `UPDATE audit_events SET seq = seq - 1000000 + ? WHERE org_id = ? AND seq >= 1000000`, by, string(org))
}

func (f *fileTamperer) SetHead(t *testing.T, org domain.OrgID, h audit.Head) {
	f.exec(t, `UPDATE audit_heads SET seq = ?, hash = ? WHERE org_id = ?`, h.Seq, h.Hash[:], string(org))
}

func TestAuditTampering(t *testing.T) {
	t.Parallel()
	storetest.RunAuditTampering(t, func(t *testing.T) (store.Store, storetest.Tamperer) {
		path := filepath.Join(t.TempDir(), "rotor.db")
		s, err := Open(t.Context(), path)
		require.NoError(t, err)
		return s, newFileTamperer(t, path)
	})
}

// TestAuditIsAppendOnlyThroughSQLite: a statement that would change or
// remove a record, or remove a head, is refused by the database itself.
func TestAuditIsAppendOnlyThroughSQLite(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, s.EnsureOrg(ctx, "org-a", "A"))
	_, err := s.AppendAudit(ctx, audit.Record{Org: "org-a", At: t0, Actor: audit.Rotor, Action: "sync", Object: "inventory", Outcome: "ok"})
	require.NoError(t, err)
	for _, q := range []string{
		`UPDATE audit_events SET object = 'x'`,
		`DELETE FROM audit_events`,
		`DELETE FROM audit_heads`,
	} {
		_, err := s.w.ExecContext(ctx, q)
		require.ErrorContains(t, err, "audit_", q)
	}
	recs, err := s.ListAudit(ctx, store.ListAuditParams{Org: "org-a"})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "inventory", recs[0].Object)
}

// TestAuditAppendsFromProcessesAtOnce: stores of their own on one file
// (processes, each with its writer) append to one organization at once;
// the chain stays one.
func TestAuditAppendsFromProcessesAtOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rotor.db")
	const procs, each = 3, 30
	stores := make([]*Store, procs)
	for i := range stores {
		s, err := Open(t.Context(), path)
		require.NoError(t, err)
		defer s.Close()
		stores[i] = s
	}
	ctx := t.Context()
	require.NoError(t, stores[0].EnsureOrg(ctx, "org-a", "A"))
	errs := make(chan error, procs*each)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for n := range each {
				_, err := s.AppendAudit(ctx, audit.Record{Org: "org-a", At: t0, Actor: audit.Actor{Kind: audit.ActorSystem, ID: fmt.Sprintf("proc-%d", i)},
					Action: "sync", Object: fmt.Sprintf("n-%d", n), Outcome: audit.OutcomeOK})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	res, err := audit.Verify(ctx, "org-a", store.AuditSource(stores[1], "org-a"), audit.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, res.Intact, "%+v", res.Problem)
	require.EqualValues(t, procs*each, res.Records)
}
