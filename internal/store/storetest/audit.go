package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// auditRec is audit record n of org from one valid base, then tweaked.
func (b *bundle) auditRec(org domain.OrgID, n int, tweaks ...func(*audit.Record)) audit.Record {
	r := audit.Record{
		Org: org, At: b.t0.Add(time.Duration(n) * time.Minute),
		Actor:  audit.Actor{Kind: audit.ActorUser, ID: fmt.Sprintf("user-%d", n%3), Name: fmt.Sprintf("user%d@contoso.example", n%3)},
		Action: []string{"rotate", "sync", "retire"}[n%3], Object: fmt.Sprintf("application:app-%d", n%4),
		Outcome: audit.OutcomeOK, RequestID: fmt.Sprintf("req-%d", n),
	}
	for _, tw := range tweaks {
		tw(&r)
	}
	return r
}

func (b *bundle) appendAudit(t *testing.T, r audit.Record) audit.Record {
	t.Helper()
	got, err := b.s.AppendAudit(b.ctx, r)
	require.NoError(t, err)
	return got
}

func (b *bundle) listAudit(t *testing.T, p store.ListAuditParams) []audit.Record {
	t.Helper()
	if p.Org == "" {
		p.Org = b.org
	}
	recs, err := b.s.ListAudit(b.ctx, p)
	require.NoError(t, err)
	return recs
}

func seqs(recs []audit.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// verifyAudit runs audit.Verify over the store.
func verifyAudit(t *testing.T, ctx context.Context, s store.Store, org domain.OrgID) audit.Result {
	t.Helper()
	res, err := audit.Verify(ctx, org, store.AuditSource(s, org), audit.VerifyOptions{PageSize: 3})
	require.NoError(t, err)
	return res
}

func testAuditAppendNumbersAndChains(t *testing.T, b *bundle) {
	_, err := b.s.AuditHead(b.ctx, b.org)
	require.ErrorIs(t, err, store.ErrNotFound, "no head before the first record")
	require.True(t, verifyAudit(t, b.ctx, b.s, b.org).Intact, "an empty trail is intact")

	var prev audit.Hash
	for n := 1; n <= 5; n++ {
		// Whatever Seq and Hash the caller sets, the store decides them.
		got := b.appendAudit(t, b.auditRec(b.org, n, func(r *audit.Record) { r.Seq, r.Hash = 99, audit.Hash{1} }))
		require.EqualValues(t, n, got.Seq)
		want, err := audit.Normalize(b.auditRec(b.org, n))
		require.NoError(t, err)
		want.Seq = int64(n)
		require.Equal(t, audit.Link(prev, want), got.Hash, "seq %d chains to seq %d", n, n-1)
		want.Hash = got.Hash
		require.Equal(t, want, got)
		prev = got.Hash

		head, err := b.s.AuditHead(b.ctx, b.org)
		require.NoError(t, err)
		require.Equal(t, audit.Head{Seq: int64(n), Hash: got.Hash, At: got.At}, head)
	}
	recs := b.listAudit(t, store.ListAuditParams{})
	require.Equal(t, []int64{1, 2, 3, 4, 5}, seqs(recs))
	res := verifyAudit(t, b.ctx, b.s, b.org)
	require.True(t, res.Intact, "%+v", res.Problem)
	require.EqualValues(t, 5, res.Records)
	require.EqualValues(t, 5, res.Head.Seq)
}

func testAuditRoundTripsEveryField(t *testing.T, b *bundle) {
	in := audit.Record{
		Org: b.org, At: b.t0, // nanoseconds, not UTC: kept to the microsecond, in UTC
		Actor:  audit.Actor{Kind: audit.ActorToken, ID: "tok-1", Name: "deploy pipeline"},
		Action: "rotate", Object: "application:web-storefront,func-billing", Outcome: audit.OutcomeFailed,
		Error: "run_failed", RequestID: "req-42", Runs: []string{"run-1", "run-2"},
	}
	got := b.appendAudit(t, in)
	step := b.appendAudit(t, audit.Record{Org: b.org, At: b.t0.Add(time.Second), Actor: audit.Rotor, Action: audit.ActionRotationStep,
		Object: "application:obj-1", Outcome: audit.OutcomeOK, RunID: "run-1", Step: "sink:0:written"})
	empty := b.appendAudit(t, audit.Record{Org: b.org, At: b.t0.Add(2 * time.Second), Actor: audit.Rotor, Action: "sync",
		Object: "inventory", Outcome: audit.OutcomeOK, Runs: []string{}})
	require.Nil(t, empty.Runs)
	require.Equal(t, b.t0.UTC().Truncate(time.Microsecond), got.At)
	require.Equal(t, []audit.Record{got, step, empty}, b.listAudit(t, store.ListAuditParams{}), "read back exactly as AppendAudit returned")
}

func testAuditOrgsAreIsolated(t *testing.T, b *bundle) {
	for n := 1; n <= 3; n++ {
		b.appendAudit(t, b.auditRec(b.org, n))
	}
	first := b.appendAudit(t, b.auditRec(b.other, 1))
	require.EqualValues(t, 1, first.Seq, "each organization's trail starts at 1")

	require.Equal(t, []int64{1, 2, 3}, seqs(b.listAudit(t, store.ListAuditParams{Org: b.org})))
	other := b.listAudit(t, store.ListAuditParams{Org: b.other})
	require.Len(t, other, 1)
	require.Equal(t, b.other, other[0].Org)
	// Not even by naming what only the other org has.
	require.Empty(t, b.listAudit(t, store.ListAuditParams{Org: b.other, Object: "application:app-2"}))

	ha, err := b.s.AuditHead(b.ctx, b.org)
	require.NoError(t, err)
	hb, err := b.s.AuditHead(b.ctx, b.other)
	require.NoError(t, err)
	require.EqualValues(t, 3, ha.Seq)
	require.Equal(t, audit.Head{Seq: 1, Hash: first.Hash, At: first.At}, hb)
	for _, org := range []domain.OrgID{b.org, b.other} {
		require.True(t, verifyAudit(t, b.ctx, b.s, org).Intact, string(org))
	}
	_, err = b.s.AuditHead(b.ctx, "org-nobody")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, b.listAudit(t, store.ListAuditParams{Org: "org-nobody"}))
}

func testAuditListFiltersAndPages(t *testing.T, b *bundle) {
	for n := 1; n <= 12; n++ {
		b.appendAudit(t, b.auditRec(b.org, n, func(r *audit.Record) {
			if n%5 == 0 {
				r.Actor, r.Action, r.RunID, r.Step = audit.Rotor, audit.ActionRotationStep, "run-x", "created"
			}
			if n == 7 {
				r.Runs = []string{"run-y", "run-x"}
			}
			if n == 6 {
				r.Outcome, r.Error = audit.OutcomeDenied, "denied"
			}
		}))
	}
	b.appendAudit(t, b.auditRec(b.other, 1, func(r *audit.Record) { r.RunID = "run-x" }))
	at := func(n int) time.Time { return b.t0.Add(time.Duration(n) * time.Minute) }
	for _, tc := range []struct {
		name string
		p    store.ListAuditParams
		want []int64
	}{
		{"All", store.ListAuditParams{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"After", store.ListAuditParams{AfterSeq: 9}, []int64{10, 11, 12}},
		{"AfterWithLimit", store.ListAuditParams{AfterSeq: 3, Limit: 2}, []int64{4, 5}},
		{"NewestFirst", store.ListAuditParams{Descending: true, Limit: 3}, []int64{12, 11, 10}},
		{"NewestFirstBefore", store.ListAuditParams{Descending: true, BeforeSeq: 10, Limit: 2}, []int64{9, 8}},
		{"TimeRange", store.ListAuditParams{Since: at(3), Until: at(6)}, []int64{3, 4, 5}},
		{"SinceInAnotherZone", store.ListAuditParams{Since: at(11).In(time.FixedZone("X", -7*3600))}, []int64{11, 12}},
		{"ActorKind", store.ListAuditParams{ActorKind: audit.ActorSystem}, []int64{5, 10}},
		{"Actor", store.ListAuditParams{ActorKind: audit.ActorUser, ActorID: "user-1"}, []int64{1, 4, 7}},
		{"Action", store.ListAuditParams{Action: "retire"}, []int64{2, 8, 11}},
		{"Object", store.ListAuditParams{Object: "application:app-3"}, []int64{3, 7, 11}},
		{"RunAsStepOrNamed", store.ListAuditParams{Run: "run-x"}, []int64{5, 7, 10}},
		{"Combined", store.ListAuditParams{Object: "application:app-3", Action: "rotate", Since: at(4)}, []int64{}},
		{"Outcome", store.ListAuditParams{Outcome: audit.OutcomeDenied}, []int64{6}},
		{"ActorMatchName", store.ListAuditParams{ActorMatch: "USER2@contoso"}, []int64{2, 8, 11}},
		{"ActorMatchID", store.ListAuditParams{ActorMatch: "rotor"}, []int64{5, 10}},
		{"ActorMatchUnderscoreIsItself", store.ListAuditParams{ActorMatch: "user_"}, []int64{}},
		{"ActorMatchPercentIsItself", store.ListAuditParams{ActorMatch: "%"}, []int64{}},
		{"ActorMatchNewestFirst", store.ListAuditParams{ActorMatch: "user-1", Descending: true, Limit: 2}, []int64{7, 4}},
	} {
		got := seqs(b.listAudit(t, tc.p))
		require.Equal(t, tc.want, got, tc.name)
	}
	_, err := b.s.ListAudit(b.ctx, store.ListAuditParams{Org: b.org, Limit: -1})
	require.Error(t, err)
	_, err = b.s.ListAudit(b.ctx, store.ListAuditParams{})
	require.Error(t, err, "an organization must be named")
}

func testAuditConcurrentAppendsKeepOneChain(t *testing.T, b *bundle) {
	// Several writers at once, as replicas on one database would (the
	// store serializes them per organization); one writes to the other
	// org throughout.
	const writers, each = 6, 15
	errs := make(chan error, writers*each+each)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				if _, err := b.s.AppendAudit(b.ctx, b.auditRec(b.org, w*each+i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		for i := range each {
			if _, err := b.s.AppendAudit(b.ctx, b.auditRec(b.other, i)); err != nil {
				errs <- err
			}
		}
	})
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	recs := b.listAudit(t, store.ListAuditParams{})
	require.Len(t, recs, writers*each)
	for i, r := range recs {
		require.EqualValues(t, i+1, r.Seq, "contiguous from 1")
	}
	res := verifyAudit(t, b.ctx, b.s, b.org)
	require.True(t, res.Intact, "%+v", res.Problem)
	require.EqualValues(t, writers*each, res.Head.Seq)
	require.True(t, verifyAudit(t, b.ctx, b.s, b.other).Intact)
}

func testAuditRejectsIncompleteRecords(t *testing.T, b *bundle) {
	for name, tw := range map[string]func(*audit.Record){
		"NoOrg":     func(r *audit.Record) { r.Org = "" },
		"NoActor":   func(r *audit.Record) { r.Actor = audit.Actor{} },
		"NoAction":  func(r *audit.Record) { r.Action = "" },
		"NoObject":  func(r *audit.Record) { r.Object = "" },
		"NoOutcome": func(r *audit.Record) { r.Outcome = "" },
		"Year10000": func(r *audit.Record) { r.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		_, err := b.s.AppendAudit(b.ctx, b.auditRec(b.org, 1, tw))
		require.Error(t, err, name)
	}
	_, err := b.s.AppendAudit(b.ctx, b.auditRec("org-nobody", 1))
	require.ErrorIs(t, err, store.ErrNotFound, "the org must exist")
	_, err = b.s.AuditHead(b.ctx, b.org)
	require.ErrorIs(t, err, store.ErrNotFound, "nothing was appended")

	// A zero time is the store's clock's now; text PostgreSQL would refuse
	// is made storable.
	got := b.appendAudit(t, b.auditRec(b.org, 1, func(r *audit.Record) { r.At, r.Object = time.Time{}, "application:\x00\xff" }))
	require.False(t, got.At.IsZero())
	require.Equal(t, "application:\uFFFD\uFFFD", got.Object)
	require.Equal(t, []audit.Record{got}, b.listAudit(t, store.ListAuditParams{}))
}

// Tamperer changes an audit trail behind the store's back, as someone who
// can step around rotor would: whoever can write the SQLite file, or
// PostgreSQL's owner role or a superuser. Each method fails t on error.
type Tamperer interface {
	// SetObject rewrites one record's object.
	SetObject(t *testing.T, org domain.OrgID, seq int64, object string)
	// Delete deletes one record.
	Delete(t *testing.T, org domain.OrgID, seq int64)
	// Insert inserts r as given (Seq and Hash included).
	Insert(t *testing.T, r audit.Record)
	// Renumber adds by to the seq of every record of org from from on.
	Renumber(t *testing.T, org domain.OrgID, from, by int64)
	// SetHead rewrites the organization's head.
	SetHead(t *testing.T, org domain.OrgID, h audit.Head)
}

// RunAuditTampering checks that what someone who steps around the store
// does to a trail is found by audit.Verify and named: the first bad seq,
// and whether a record was edited, deleted or inserted. newStore returns a
// new, empty store and a Tamperer on the same database.
func RunAuditTampering(t *testing.T, newStore func(t *testing.T) (store.Store, Tamperer)) {
	t.Helper()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, b *bundle, tm Tamperer, recs []audit.Record)
		want   audit.Problem // Detail: a substring
	}{
		{"EditedObject", func(t *testing.T, b *bundle, tm Tamperer, _ []audit.Record) {
			tm.SetObject(t, b.org, 3, "application:someone-else")
		}, audit.Problem{Seq: 3, Kind: audit.Edited, Detail: "seq 3 does not match its hash"}},
		{"DeletedMiddle", func(t *testing.T, b *bundle, tm Tamperer, _ []audit.Record) {
			tm.Delete(t, b.org, 3)
		}, audit.Problem{Seq: 3, Kind: audit.Missing, Detail: "seq 3 is missing between seq 2 and seq 4"}},
		{"DeletedMiddleAndRenumbered", func(t *testing.T, b *bundle, tm Tamperer, _ []audit.Record) {
			tm.Delete(t, b.org, 3)
			tm.Renumber(t, b.org, 4, -1)
		}, audit.Problem{Seq: 3, Kind: audit.Missing, Detail: "the original seq 3 was deleted"}},
		{"InsertedForged", func(t *testing.T, b *bundle, tm Tamperer, recs []audit.Record) {
			// An alibi slipped in after seq 3, its hash computed as rotor
			// would, the later records renumbered to make room.
			tm.Renumber(t, b.org, 4, 1)
			forged, err := audit.Normalize(audit.Record{Org: b.org, Seq: 4, At: recs[2].At.Add(time.Second),
				Actor: audit.Actor{Kind: audit.ActorUser, ID: "mallory"}, Action: "rotate", Object: "application:alibi", Outcome: audit.OutcomeOK})
			require.NoError(t, err)
			forged.Hash = audit.Link(recs[2].Hash, forged)
			tm.Insert(t, forged)
		}, audit.Problem{Seq: 4, Kind: audit.Inserted, Detail: "seq 4 was inserted"}},
		{"InsertedAfterTheNewest", func(t *testing.T, b *bundle, tm Tamperer, recs []audit.Record) {
			forged, err := audit.Normalize(audit.Record{Org: b.org, Seq: 6, At: recs[4].At.Add(time.Second),
				Actor: audit.Actor{Kind: audit.ActorUser, ID: "mallory"}, Action: "rotate", Object: "application:alibi", Outcome: audit.OutcomeOK})
			require.NoError(t, err)
			forged.Hash = audit.Link(recs[4].Hash, forged)
			tm.Insert(t, forged)
		}, audit.Problem{Seq: 6, Kind: audit.Inserted, Detail: "beyond the head"}},
		{"DeletedNewest", func(t *testing.T, b *bundle, tm Tamperer, _ []audit.Record) {
			tm.Delete(t, b.org, 5)
		}, audit.Problem{Seq: 5, Kind: audit.Missing, Detail: "the newest record was deleted"}},
		{"EditedNewestWithARecomputedHash", func(t *testing.T, b *bundle, tm Tamperer, recs []audit.Record) {
			tm.Delete(t, b.org, 5)
			r := recs[4]
			r.Object = "application:someone-else"
			r.Hash = audit.Link(recs[3].Hash, r)
			tm.Insert(t, r)
		}, audit.Problem{Seq: 5, Kind: audit.Edited, Detail: "does not match the head"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, tm := newStore(t)
			b := setup(t, func(*testing.T) store.Store { return s }, options{precision: time.Nanosecond})
			var recs []audit.Record
			for n := 1; n <= 5; n++ {
				recs = append(recs, b.appendAudit(t, b.auditRec(b.org, n)))
				b.appendAudit(t, b.auditRec(b.other, n))
			}
			require.True(t, verifyAudit(t, b.ctx, s, b.org).Intact)

			tc.tamper(t, b, tm, recs)
			res := verifyAudit(t, b.ctx, s, b.org)
			require.False(t, res.Intact, "tampering went unnoticed")
			require.NotNil(t, res.Problem)
			require.Equal(t, tc.want.Seq, res.Problem.Seq, res.Problem.Detail)
			require.Equal(t, tc.want.Kind, res.Problem.Kind, res.Problem.Detail)
			require.Contains(t, res.Problem.Detail, tc.want.Detail)
			require.True(t, verifyAudit(t, b.ctx, s, b.other).Intact, "the other organization's trail is untouched")
		})
	}

	t.Run("HeadMovedBackStopsTheTrail", func(t *testing.T) {
		t.Parallel()
		// A head moved back (to hide the newest records from a later
		// append that would bury them) makes appends fail loudly instead
		// of forking the chain.
		s, tm := newStore(t)
		b := setup(t, func(*testing.T) store.Store { return s }, options{precision: time.Nanosecond})
		var recs []audit.Record
		for n := 1; n <= 4; n++ {
			recs = append(recs, b.appendAudit(t, b.auditRec(b.org, n)))
		}
		tm.SetHead(t, b.org, audit.Head{Seq: 2, Hash: recs[1].Hash, At: recs[1].At})
		_, err := s.AppendAudit(b.ctx, b.auditRec(b.org, 5))
		require.ErrorIs(t, err, store.ErrConflict)
		require.ErrorContains(t, err, "rotor audit verify")
		res := verifyAudit(t, b.ctx, s, b.org)
		require.False(t, res.Intact)
		require.Equal(t, audit.Problem{Seq: 3, Kind: audit.Inserted, Detail: res.Problem.Detail}, *res.Problem)
	})
}
