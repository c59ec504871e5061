package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
)

var t0 = time.Date(2030, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))

// base is one valid record of every field.
func base() audit.Record {
	return audit.Record{
		Org: "org-a", Seq: 1, At: t0,
		Actor:  audit.Actor{Kind: audit.ActorUser, ID: "u-1", Name: "ada@contoso.example"},
		Action: "rotate", Object: "application:web", Outcome: audit.OutcomeFailed, Error: "run_failed",
		RequestID: "req-1", Runs: []string{"r1", "r2"}, RunID: "", Step: "",
	}
}

func TestCanonicalEncodingIsPinned(t *testing.T) {
	t.Parallel()
	r, err := audit.Normalize(base())
	require.NoError(t, err)
	// The bytes hashed are the documented layout exactly; if this test
	// fails the encoding changed, and every stored chain with it.
	var want bytes.Buffer
	want.WriteString("rotor-audit-v1")
	for _, f := range []string{"org-a", "1", "2030-03-04T04:06:07.123456Z", "user", "u-1", "ada@contoso.example",
		"rotate", "application:web", "failed", "run_failed", "req-1", "2", "r1", "r2", "", ""} {
		want.Write([]byte{0, 0, byte(len(f) >> 8), byte(len(f))})
		want.WriteString(f)
	}
	require.Equal(t, want.Bytes(), audit.Canonical(r))
	// SHA-256 of 32 zero bytes and those bytes, computed apart.
	require.Equal(t, "535f1cc366034cec9f1fef4a66f758390ea8c8079877d1dc0ae2743d7e1e8b44", audit.Link(audit.Hash{}, r).String())
}

func TestCanonicalEncodingIsUnambiguous(t *testing.T) {
	t.Parallel()
	tweak := func(fn func(*audit.Record)) audit.Record {
		r := base()
		fn(&r)
		return r
	}
	pairs := []struct {
		name string
		a, b audit.Record
	}{
		{"TextMovedBetweenFields",
			tweak(func(r *audit.Record) { r.Object, r.Outcome = "application:web", "failed" }),
			tweak(func(r *audit.Record) { r.Object, r.Outcome = "application:we", "bfailed" })},
		{"RunMovedIntoRunID",
			tweak(func(r *audit.Record) { r.Runs, r.RunID = []string{"r1", "r2"}, "" }),
			tweak(func(r *audit.Record) { r.Runs, r.RunID = []string{"r1"}, "r2" })},
		{"Seq", tweak(func(r *audit.Record) { r.Seq = 1 }), tweak(func(r *audit.Record) { r.Seq = 2 })},
		{"Org", tweak(func(r *audit.Record) { r.Org = "org-a" }), tweak(func(r *audit.Record) { r.Org = "org-b" })},
		{"Microsecond", tweak(func(r *audit.Record) { r.At = t0 }), tweak(func(r *audit.Record) { r.At = t0.Add(time.Microsecond) })},
	}
	for _, p := range pairs {
		require.NotEqual(t, audit.Canonical(p.a), audit.Canonical(p.b), p.name)
		require.NotEqual(t, audit.Link(audit.Hash{}, p.a), audit.Link(audit.Hash{}, p.b), p.name)
	}
	// Below the precision, and in another zone, it is the same record.
	a := tweak(func(r *audit.Record) { r.At = t0 })
	b := tweak(func(r *audit.Record) { r.At = t0.Add(200 * time.Nanosecond).In(time.UTC) })
	require.Equal(t, audit.Canonical(a), audit.Canonical(b))
	// Nil and empty runs are the same record.
	c := tweak(func(r *audit.Record) { r.Runs = nil })
	d := tweak(func(r *audit.Record) { r.Runs = []string{} })
	require.Equal(t, audit.Canonical(c), audit.Canonical(d))
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tweak   func(*audit.Record)
		wantErr string
		check   func(t *testing.T, r audit.Record)
	}{
		{"Valid", func(*audit.Record) {}, "", func(t *testing.T, r audit.Record) {
			require.Equal(t, time.UTC, r.At.Location())
			require.Equal(t, t0.UTC().Truncate(time.Microsecond), r.At)
		}},
		{"NoOrg", func(r *audit.Record) { r.Org = "" }, "org must be set", nil},
		{"NoTime", func(r *audit.Record) { r.At = time.Time{} }, "at must be set", nil},
		{"NoActor", func(r *audit.Record) { r.Actor.ID = "" }, "actor kind and id", nil},
		{"NoAction", func(r *audit.Record) { r.Action = "" }, "action, object and outcome", nil},
		{"NoOutcome", func(r *audit.Record) { r.Outcome = "" }, "action, object and outcome", nil},
		{"TooManyRuns", func(r *audit.Record) { r.Runs = make([]string, 10001) }, "at most 10000", nil},
		{"InvalidUTF8AndNUL", func(r *audit.Record) { r.Object = "application:\xff\x00x" }, "", func(t *testing.T, r audit.Record) {
			require.Equal(t, "application:\uFFFD\uFFFDx", r.Object)
		}},
		{"LongObjectIsCutAtACharacter", func(r *audit.Record) { r.Object = strings.Repeat("é", 2000) }, "", func(t *testing.T, r audit.Record) {
			require.LessOrEqual(t, len(r.Object), 1024)
			require.True(t, strings.HasSuffix(r.Object, "…"))
			require.True(t, strings.HasPrefix(r.Object, "éé"))
			require.NotContains(t, r.Object, "\uFFFD")
		}},
		{"EmptyRunsAreNil", func(r *audit.Record) { r.Runs = []string{} }, "", func(t *testing.T, r audit.Record) { require.Nil(t, r.Runs) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := base()
			tc.tweak(&r)
			got, err := audit.Normalize(r)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, got)
			again, err := audit.Normalize(got)
			require.NoError(t, err)
			require.Equal(t, got, again, "normalizing is idempotent")
		})
	}
}

func TestHeadRoundTrips(t *testing.T) {
	t.Parallel()
	h := audit.Head{Seq: 42, Hash: audit.Link(audit.Hash{}, base())}
	got, err := audit.ParseHead(h.String())
	require.NoError(t, err)
	require.Equal(t, h, got)
	got, err = audit.ParseHead(" 42:" + strings.ToUpper(h.Hash.String()) + "\n")
	require.NoError(t, err, "case and surrounding space do not matter")
	require.Equal(t, h, got)
	for _, bad := range []string{"", "42", "x:" + h.Hash.String(), "0:" + h.Hash.String(), "-1:" + h.Hash.String(), "42:abc", "42:" + strings.Repeat("zz", 32)} {
		_, err := audit.ParseHead(bad)
		require.Error(t, err, "%q", bad)
	}
	b, err := json.Marshal(h)
	require.NoError(t, err)
	require.Contains(t, string(b), `"hash":"`+h.Hash.String()+`"`)
	var back audit.Head
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, h, back)
}

func FuzzParseHead(f *testing.F) {
	f.Add("42:" + strings.Repeat("ab", 32))
	f.Add("1:")
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := audit.ParseHead(s)
		if err != nil {
			return
		}
		require.Positive(t, h.Seq)
		again, err := audit.ParseHead(h.String())
		require.NoError(t, err)
		require.Equal(t, h, again)
	})
}

func TestStepRecordHoldsNoMessage(t *testing.T) {
	t.Parallel()
	run := domain.Run{Org: "org-a", ID: "run-1", AppObjectID: "obj-1", Error: "the secret was s3cr3t", Failure: domain.FailurePermanent,
		Events: []domain.RunEvent{{Message: "the secret was s3cr3t"}}}
	for _, tc := range []struct {
		step          domain.Step
		outcome, eclz string
	}{
		{domain.StepCreated.Step(), audit.OutcomeOK, ""},
		{domain.SinkStep(0, domain.PhaseWritten), audit.OutcomeOK, ""},
		{domain.RetireStep("key-1", domain.PhaseRemoved), audit.OutcomeOK, ""},
		{domain.StepFailed.Step(), audit.OutcomeFailed, "permanent"},
		{domain.StepAbandoned.Step(), audit.OutcomeFailed, "abandoned"},
		{domain.StepRetireScheduleFailed.Step(), audit.OutcomeFailed, "schedule_failed"},
	} {
		r := audit.StepRecord(run, tc.step)
		require.Equal(t, audit.Record{Org: "org-a", Actor: audit.Rotor, Action: audit.ActionRotationStep, Object: "application:obj-1",
			Outcome: tc.outcome, Error: tc.eclz, RunID: "run-1", Step: tc.step.String()}, r)
		b, _ := json.Marshal(r)
		require.NotContains(t, string(b), "s3cr3t")
	}
}

// fakeAppender fails while fail is set.
type fakeAppender struct {
	mu   sync.Mutex
	fail bool
	got  []audit.Record
}

var _ audit.Appender = (*fakeAppender)(nil)

func (f *fakeAppender) AppendAudit(_ context.Context, r audit.Record) (audit.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return audit.Record{}, errors.New("database is gone")
	}
	r.Seq = int64(len(f.got) + 1)
	f.got = append(f.got, r)
	return r, nil
}

func TestWriterLogsOneErrorPerFailureStreak(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	app := &fakeAppender{}
	w := audit.NewWriter(app, log, clock.NewFake(t0))
	rec := audit.Record{Org: "org-a", Actor: audit.Rotor, Action: "sync", Object: "inventory", Outcome: "ok"}

	w.Write(context.Background(), rec)
	require.Len(t, app.got, 1)
	require.Equal(t, t0, app.got[0].At, "At is stamped from the clock")
	require.Empty(t, logs.String(), "a record is logged at debug level only")

	app.fail = true
	for range 3 {
		w.Write(context.Background(), rec)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "level=ERROR"), logs.String())
	require.Contains(t, logs.String(), `msg="audit trail write failed"`)
	require.Contains(t, logs.String(), "database is gone")
	require.EqualValues(t, 3, w.Lost())

	app.fail = false
	w.Write(context.Background(), rec)
	require.Contains(t, logs.String(), `msg="audit trail writes again" lost=3`)

	app.fail = true
	w.Write(context.Background(), rec)
	require.Equal(t, 2, strings.Count(logs.String(), "level=ERROR"), "a new streak logs again")

	// A cancelled call is still audited.
	app.fail = false
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Write(ctx, rec)
	require.Len(t, app.got, 3)
}

func TestWriterLogsEachRecordAtDebug(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	w := audit.NewWriter(&fakeAppender{}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	w.Write(context.Background(), audit.Record{Org: "org-a", Actor: audit.Rotor, Action: "sync", Object: "inventory", Outcome: "ok"})
	require.Contains(t, logs.String(), fmt.Sprintf("level=DEBUG msg=audit org=org-a seq=1 actor=%s action=sync", audit.Rotor))
}
