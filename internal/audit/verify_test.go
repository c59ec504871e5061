package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
)

// memTrail is a trail held in memory, chained as a store chains it: the
// scene the tampering cases edit.
type memTrail struct {
	recs    []audit.Record // by Seq, as a store returns them
	head    *audit.Head
	onHead  func(*memTrail) // called as Head is read (an append racing Verify)
	failing bool
}

var _ audit.Source = (*memTrail)(nil)

func newTrail(t *testing.T, n int) *memTrail {
	t.Helper()
	m := &memTrail{}
	for range n {
		m.append(t)
	}
	return m
}

// append adds a record the way a store does: the next seq, linked to the
// head, head moved.
func (m *memTrail) append(t *testing.T) {
	t.Helper()
	var prev audit.Head
	if m.head != nil {
		prev = *m.head
	}
	r := audit.Record{Org: "org-a", Seq: prev.Seq + 1, At: t0.Add(time.Duration(prev.Seq) * time.Minute),
		Actor: audit.Rotor, Action: audit.ActionRotationStep, Object: fmt.Sprintf("application:app-%d", prev.Seq+1),
		Outcome: audit.OutcomeOK, RunID: "run-1", Step: "created"}
	r, err := audit.Normalize(r)
	require.NoError(t, err)
	r.Hash = audit.Link(prev.Hash, r)
	m.recs = append(m.recs, r)
	m.head = &audit.Head{Seq: r.Seq, Hash: r.Hash, At: r.At}
}

func (m *memTrail) Records(_ context.Context, after int64, limit int) ([]audit.Record, error) {
	if m.failing {
		return nil, errors.New("disk on fire")
	}
	sorted := slices.Clone(m.recs)
	slices.SortStableFunc(sorted, func(a, b audit.Record) int { return int(a.Seq - b.Seq) })
	var out []audit.Record
	for _, r := range sorted {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memTrail) Head(context.Context) (audit.Head, bool, error) {
	if m.onHead != nil {
		m.onHead(m)
	}
	if m.head == nil {
		return audit.Head{}, false, nil
	}
	return *m.head, true, nil
}

// at returns the index of the record with seq.
func (m *memTrail) at(seq int64) int {
	for i, r := range m.recs {
		if r.Seq == seq {
			return i
		}
	}
	panic(fmt.Sprintf("no seq %d", seq))
}

func (m *memTrail) del(seq int64) { m.recs = slices.Delete(m.recs, m.at(seq), m.at(seq)+1) }

// shift renumbers every record from seq on by d.
func (m *memTrail) shift(from int64, d int64) {
	for i := range m.recs {
		if m.recs[i].Seq >= from {
			m.recs[i].Seq += d
		}
	}
}

// forged is a record an attacker who knows the algorithm makes for seq,
// chained to prev's stored hash.
func (m *memTrail) forged(seq int64, prev audit.Hash) audit.Record {
	r := audit.Record{Org: "org-a", Seq: seq, At: t0, Actor: audit.Actor{Kind: audit.ActorUser, ID: "mallory"},
		Action: "rotate", Object: "application:alibi", Outcome: audit.OutcomeOK}
	r.Hash = audit.Link(prev, r)
	return r
}

func (m *memTrail) hashOf(seq int64) audit.Hash { return m.recs[m.at(seq)].Hash }

func TestVerify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		n       int
		tamper  func(t *testing.T, m *memTrail)
		anchors func(m *memTrail) []audit.Head
		want    *audit.Problem // Detail is matched as a substring
		records int64
	}{
		{name: "Intact", n: 7, records: 7},
		{name: "IntactAcrossPages", n: 25, records: 25},
		{name: "Empty", n: 0, records: 0},
		{name: "EditedObject", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.recs[m.at(3)].Object = "application:other" },
			want: &audit.Problem{Seq: 3, Kind: audit.Edited, Detail: "seq 3 does not match its hash"}, records: 2},
		{name: "EditedFirst", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.recs[0].Outcome = audit.OutcomeDenied },
			want: &audit.Problem{Seq: 1, Kind: audit.Edited, Detail: "seq 1 does not match its hash"}},
		{name: "EditedHash", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.recs[m.at(2)].Hash[0] ^= 1 },
			want: &audit.Problem{Seq: 2, Kind: audit.Edited}, records: 1},
		{name: "EditedWithRecomputedHashShowsAtTheNext", n: 5, tamper: func(_ *testing.T, m *memTrail) {
			r := &m.recs[m.at(3)]
			r.Object = "application:other"
			r.Hash = audit.Link(m.hashOf(2), *r)
		}, want: &audit.Problem{Seq: 4, Kind: audit.Edited, Detail: "or seq 3 before it was rewritten with a recomputed hash"}, records: 3},
		{name: "EditedNewestWithRecomputedHashDiffersFromTheHead", n: 5, tamper: func(_ *testing.T, m *memTrail) {
			r := &m.recs[m.at(5)]
			r.Object = "application:other"
			r.Hash = audit.Link(m.hashOf(4), *r)
		}, want: &audit.Problem{Seq: 5, Kind: audit.Edited, Detail: "does not match the head"}, records: 5},
		{name: "DeletedMiddle", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.del(3) },
			want: &audit.Problem{Seq: 3, Kind: audit.Missing, Detail: "seq 3 is missing between seq 2 and seq 4"}, records: 2},
		{name: "DeletedSeveral", n: 6, tamper: func(_ *testing.T, m *memTrail) { m.del(3); m.del(4) },
			want: &audit.Problem{Seq: 3, Kind: audit.Missing, Detail: "seq 3..4 are missing"}, records: 2},
		{name: "DeletedFirst", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.del(1) },
			want: &audit.Problem{Seq: 1, Kind: audit.Missing, Detail: "the trail starts at seq 2"}},
		{name: "DeletedAndRenumbered", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.del(3); m.shift(4, -1) },
			want: &audit.Problem{Seq: 3, Kind: audit.Missing, Detail: "the original seq 3 was deleted and the records after it renumbered"}, records: 2},
		{name: "DeletedNewest", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.del(5) },
			want: &audit.Problem{Seq: 5, Kind: audit.Missing, Detail: "the head is seq 5 but the trail ends at seq 4: the newest record was deleted"}, records: 4},
		{name: "DeletedNewestTwo", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.del(5); m.del(4) },
			want: &audit.Problem{Seq: 4, Kind: audit.Missing, Detail: "the newest 2 records were deleted"}, records: 3},
		{name: "DeletedAll", n: 3, tamper: func(_ *testing.T, m *memTrail) { m.recs = nil },
			want: &audit.Problem{Seq: 1, Kind: audit.Missing, Detail: "the head is seq 3 but the trail ends at seq 0"}},
		{name: "InsertedWithAFittingHash", n: 5, tamper: func(_ *testing.T, m *memTrail) {
			h3 := m.hashOf(3)
			m.shift(4, 1)
			m.recs = append(m.recs, m.forged(4, h3))
		}, want: &audit.Problem{Seq: 4, Kind: audit.Inserted, Detail: "seq 4 was inserted: the record after it is the original seq 4, renumbered to 5"}, records: 4},
		{name: "InsertedWithAnyHash", n: 5, tamper: func(_ *testing.T, m *memTrail) {
			m.shift(4, 1)
			f := m.forged(4, audit.Hash{})
			m.recs = append(m.recs, f)
		}, want: &audit.Problem{Seq: 4, Kind: audit.Inserted, Detail: "seq 4 was inserted"}, records: 3},
		{name: "InsertedBeyondTheHead", n: 5, tamper: func(_ *testing.T, m *memTrail) { m.recs = append(m.recs, m.forged(6, m.hashOf(5))) },
			want: &audit.Problem{Seq: 6, Kind: audit.Inserted, Detail: "seq 6..6 lie beyond the head (seq 5)"}, records: 6},
		{name: "InsertedUnderATakenNumber", n: 5, tamper: func(_ *testing.T, m *memTrail) {
			m.recs = append(m.recs[:3], append([]audit.Record{m.forged(3, m.hashOf(2))}, m.recs[3:]...)...)
		}, want: &audit.Problem{Seq: 3, Kind: audit.Inserted, Detail: "seq 3 appears again"}, records: 3},
		{name: "HeadDeleted", n: 4, tamper: func(_ *testing.T, m *memTrail) { m.head = nil },
			want: &audit.Problem{Seq: 4, Kind: audit.HeadMissing, Detail: "no head"}, records: 4},
		{name: "HeadMovedBack", n: 4, tamper: func(_ *testing.T, m *memTrail) { m.head = &audit.Head{Seq: 2, Hash: m.hashOf(2)} },
			want: &audit.Problem{Seq: 3, Kind: audit.Inserted, Detail: "or the head was moved back"}, records: 4},
		{name: "AnchorsMatch", n: 6, anchors: func(m *memTrail) []audit.Head {
			return []audit.Head{{Seq: 2, Hash: m.hashOf(2)}, {Seq: 6, Hash: m.hashOf(6)}}
		}, records: 6},
		{name: "RewrittenWholeIsCaughtByAnAnchor", n: 5, anchors: func(m *memTrail) []audit.Head {
			return []audit.Head{{Seq: 4, Hash: m.hashOf(4)}}
		}, tamper: func(t *testing.T, m *memTrail) {
			// Everything recomputed from seq 2 on, head too: the chain
			// alone cannot tell.
			m.recs[m.at(2)].Object = "application:other"
			prev := m.hashOf(1)
			for i := 1; i < len(m.recs); i++ {
				m.recs[i].Hash = audit.Link(prev, m.recs[i])
				prev = m.recs[i].Hash
			}
			m.head = &audit.Head{Seq: 5, Hash: prev}
		}, want: &audit.Problem{Seq: 4, Kind: audit.Edited, Detail: "its hash is not the anchor's"}, records: 3},
		{name: "AnchorBeyondTheEnd", n: 3, anchors: func(m *memTrail) []audit.Head {
			return []audit.Head{{Seq: 9, Hash: m.hashOf(3)}}
		}, want: &audit.Problem{Seq: 9, Kind: audit.Missing, Detail: "an anchor names seq 9"}, records: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newTrail(t, tc.n)
			var opts audit.VerifyOptions
			opts.PageSize = 4 // lookahead across pages
			if tc.anchors != nil {
				opts.Anchors = tc.anchors(m)
			}
			if tc.tamper != nil {
				tc.tamper(t, m)
			}
			res, err := audit.Verify(context.Background(), "org-a", m, opts)
			require.NoError(t, err)
			require.Equal(t, domain.OrgID("org-a"), res.Org)
			if tc.want == nil {
				require.True(t, res.Intact, "%+v", res.Problem)
				require.Nil(t, res.Problem)
				require.Equal(t, tc.records, res.Records)
				if tc.n > 0 {
					require.Equal(t, *m.head, *res.Head)
				} else {
					require.Nil(t, res.Head)
				}
				return
			}
			require.False(t, res.Intact)
			require.NotNil(t, res.Problem)
			require.Equal(t, tc.want.Seq, res.Problem.Seq, res.Problem.Detail)
			require.Equal(t, tc.want.Kind, res.Problem.Kind, res.Problem.Detail)
			require.Contains(t, res.Problem.Detail, tc.want.Detail)
			require.Equal(t, tc.records, res.Records, "records verified before the problem")
		})
	}
}

func TestVerifyWhileAppending(t *testing.T) {
	t.Parallel()
	// Records appended after the scan ended and before the head was read
	// are read too, up to that head.
	m := newTrail(t, 5)
	appended := 0
	m.onHead = func(m *memTrail) {
		if appended == 0 {
			m.append(t)
			m.append(t)
		}
		appended++
	}
	res, err := audit.Verify(context.Background(), "org-a", m, audit.VerifyOptions{PageSize: 2})
	require.NoError(t, err)
	require.True(t, res.Intact, "%+v", res.Problem)
	require.EqualValues(t, 7, res.Records)
	require.EqualValues(t, 7, res.Head.Seq)
}

func TestVerifyReportsASourceThatFails(t *testing.T) {
	t.Parallel()
	m := newTrail(t, 2)
	m.failing = true
	res, err := audit.Verify(context.Background(), "org-a", m, audit.VerifyOptions{})
	require.ErrorContains(t, err, "disk on fire")
	require.False(t, res.Intact)
}
