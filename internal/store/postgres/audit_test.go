package postgres

import (
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
	"github.com/rotor-dev/rotor/internal/store/storetest"
)

// ownerTamperer is the owner role (or anyone who holds it, or a
// superuser): row-level security does not bind it, and it keeps every
// privilege on the tables it owns.
type ownerTamperer struct{ conn *pgx.Conn }

var _ storetest.Tamperer = ownerTamperer{}

func (o ownerTamperer) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	_, err := o.conn.Exec(t.Context(), q, args...)
	require.NoError(t, err, q)
}

func (o ownerTamperer) SetObject(t *testing.T, org domain.OrgID, seq int64, object string) {
	o.exec(t, `UPDATE audit_events SET object = $1 WHERE org_id = $2 AND seq = $3`, object, string(org), seq)
}

func (o ownerTamperer) Delete(t *testing.T, org domain.OrgID, seq int64) {
	o.exec(t, `DELETE FROM audit_events WHERE org_id = $1 AND seq = $2`, string(org), seq)
}

func (o ownerTamperer) Insert(t *testing.T, r audit.Record) {
	o.exec(t, `INSERT INTO audit_events (org_id, `+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		string(r.Org), r.Seq, tz(r.At), r.Actor.Kind, r.Actor.ID, r.Actor.Name, r.Action, r.Object, r.Outcome,
		r.Error, r.RequestID, nonNil(r.Runs), r.RunID, r.Step, r.Hash[:])
}

func (o ownerTamperer) Renumber(t *testing.T, org domain.OrgID, from, by int64) {
	// Through a high range, so that no two rows share a number mid-way.
	o.exec(t, `UPDATE audit_events SET seq = seq + 1000000 WHERE org_id = $1 AND seq >= $2`, string(org), from)
	o.exec(t, `UPDATE audit_events SET seq = seq - 1000000 + $1 WHERE org_id = $2 AND seq >= 1000000`, by, string(org))
}

func (o ownerTamperer) SetHead(t *testing.T, org domain.OrgID, h audit.Head) {
	o.exec(t, `UPDATE audit_heads SET seq = $1, hash = $2 WHERE org_id = $3`, h.Seq, h.Hash[:], string(org))
}

func TestAuditTampering(t *testing.T) {
	t.Parallel()
	storetest.RunAuditTampering(t, func(t *testing.T) (store.Store, storetest.Tamperer) {
		db := pgtest.New(t)
		s := open(t, db)
		return s, ownerTamperer{conn: db.ConnectOwner(t)}
	})
}

// TestAuditIsAppendOnlyForTheApplicationRole: the role rotor runs as may
// add records and move its organization's head, but not change or remove
// a record, nor remove a head, even within its own organization.
func TestAuditIsAppendOnlyForTheApplicationRole(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s := open(t, db)
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, s.EnsureOrg(ctx, "org-a", "A"))
	_, err := s.AppendAudit(ctx, audit.Record{Org: "org-a", At: t0, Actor: audit.Rotor, Action: "sync", Object: "inventory", Outcome: "ok"})
	require.NoError(t, err)

	app := db.ConnectApp(t)
	tx, err := app.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SELECT set_config('rotor.org', 'org-a', true)`)
	require.NoError(t, err)
	require.EqualValues(t, 1, count(t, tx, "audit_events"), "its own organization's records are visible")
	for _, q := range []string{
		`UPDATE audit_events SET object = 'x'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
		`DELETE FROM audit_heads`,
		`TRUNCATE audit_heads`,
	} {
		_, err := tx.Exec(ctx, `SAVEPOINT s`)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, q)
		require.Error(t, err, q)
		require.Equal(t, "42501", pgCode(err), "%s: %v", q, err) // insufficient_privilege
		_, err = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT s`)
		require.NoError(t, err)
	}
	// Another organization's head cannot be written.
	_, err = tx.Exec(ctx, `INSERT INTO audit_heads (org_id, seq, hash, at) VALUES ('org-b', 1, '\x`+
		"0000000000000000000000000000000000000000000000000000000000000000"+`', now())`)
	require.Error(t, err)
}

// TestAuditAppendsFromReplicasAtOnce: stores of their own (replicas, each
// with its pool) append to one organization at once; the chain stays one.
func TestAuditAppendsFromReplicasAtOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	const replicas, each = 3, 30
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = open(t, db)
		defer stores[i].Close()
	}
	ctx := t.Context()
	require.NoError(t, stores[0].EnsureOrg(ctx, "org-a", "A"))
	errs := make(chan error, replicas*each)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for n := range each {
				_, err := s.AppendAudit(ctx, audit.Record{Org: "org-a", At: t0, Actor: audit.Actor{Kind: audit.ActorSystem, ID: fmt.Sprintf("replica-%d", i)},
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
	require.EqualValues(t, replicas*each, res.Records)
}
