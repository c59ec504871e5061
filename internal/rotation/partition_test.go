package rotation

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/postgres"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

// partition is a TCP proxy between one process and PostgreSQL that a
// test can cut (every connection dropped, new ones refused) and heal.
type partition struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newPartition(t *testing.T, target string) *partition {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &partition{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = ln.Close(); p.sever() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *partition) serve(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
	_, _ = io.Copy(c, up)
	_ = c.Close()
}

// sever drops every connection through the proxy and refuses new ones.
func (p *partition) sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *partition) heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// via is u with its host replaced by the proxy's.
func (p *partition) via(t *testing.T, u string) string {
	pu, err := url.Parse(u)
	require.NoError(t, err)
	pu.Host = p.ln.Addr().String()
	q := pu.Query()
	q.Set("connect_timeout", "2")
	pu.RawQuery = q.Encode()
	return pu.String()
}

// TestPartitionedReplicaNeverWritesASink is issue 8's fencing promise on
// PostgreSQL, with a real network partition: replica A has created a new
// secret and is about to deliver it when the network between it and the
// database goes; its lease expires by the database's clock, replica B
// takes the run over (and removes A's secret, which no sink holds). A then
// tries to go on — while still cut off, and again once the network is
// back — and writes no sink either time: every side effect is fenced by a
// database transaction that proves the lease, which A can no longer do.
func TestPartitionedReplicaNeverWritesASink(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b := setup(t)
	ctx := t.Context()
	admin, err := url.Parse(db.AppURL)
	require.NoError(t, err)
	part := newPartition(t, admin.Host)

	open := func(u string) *postgres.Store {
		s, err := postgres.Open(ctx, u, postgres.WithPassword(db.AppPassword), postgres.WithMigrations(db.OwnerURL, db.OwnerPassword), postgres.WithClock(b.clock))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		require.NoError(t, s.EnsureOrg(ctx, b.org, "Acme"))
		return s
	}
	stA, stB := open(part.via(t, db.AppURL)), open(db.AppURL)
	_, err = stB.SyncApplications(ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
	require.NoError(t, err)

	engineOn := func(st store.Store, hooks Hooks) *Engine {
		sinks, err := sink.NewRegistry(memBuilder{vault: b.vault}).Bind(sink.Deps{})
		require.NoError(t, err)
		lg := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		e := New(Config{
			Store: st, Conns: b.dir, Sinks: sinks, Clock: b.clock, Logger: lg, VerifyTimeout: 2 * time.Second,
			IsPending:      func(err error) bool { return errors.Is(err, errPending) },
			IsPermanent:    func(err error) bool { return errors.Is(err, errPolicy) },
			Hooks:          hooks,
			Lease:          NewLease(st, b.clock, lg, 2*time.Second, "replica"),
			ScheduleRetire: func(context.Context, domain.OrgID, string, time.Time) error { return nil },
		})
		e.backoffBase, e.backoffCap = time.Millisecond, 5*time.Millisecond
		return e
	}
	reached, release := make(chan struct{}), make(chan struct{})
	a := engineOn(stA, Hooks{AfterJournal: func(_ domain.Run, st domain.Step) {
		if st.Kind == domain.StepReplicating {
			close(reached)
			<-release
		}
	}})
	done := make(chan error, 1)
	go func() {
		_, err := a.Rotate(ctx, b.org, b.app, b.policy, domain.TriggerDue)
		done <- err
	}()
	<-reached
	part.sever()

	// B waits until A's lease has expired in the database, then takes
	// the run over.
	succ := engineOn(stB, Hooks{})
	succ.policies = onePolicy{&b.policy}
	var abandoned []domain.Run
	require.Eventually(t, func() bool {
		abandoned, err = succ.Recover(ctx, b.org)
		require.NoError(t, err)
		return len(abandoned) == 1
	}, 15*time.Second, 200*time.Millisecond, "B takes the run over once A's lease expired")
	require.Len(t, b.dir.removed, 1, "no sink had A's secret: B removed it at once")

	// A wakes while still cut off: it cannot prove its lease, so it
	// writes nothing.
	close(release)
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("A's rotation did not give up while cut off from the database")
	}
	require.Error(t, err)
	for _, s := range []string{"kv", "ado"} {
		_, keyID := b.vault.get(s, b.app.ObjectID)
		require.Empty(t, keyID, "sink %s never received A's removed secret", s)
	}

	// The network is back: A's journal writes are refused (B holds the
	// run), and B's verdict stands.
	part.heal()
	got, err := stB.GetRun(ctx, b.org, abandoned[0].ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunAbandoned, got.State)
	_, err = stA.FenceRun(ctx, store.FenceRunParams{Org: b.org, RunID: abandoned[0].ID, Holder: a.lease.Holder(), TTL: time.Second})
	require.ErrorIs(t, err, store.ErrLeaseLost, "A, reconnected, no longer holds the run")

	// B's fresh run converges, and every consumer holds its secret.
	run, err := succ.Rotate(ctx, b.org, b.app, b.policy, domain.TriggerRecovery, Replacing(abandoned[0].ID))
	require.NoError(t, err)
	b.clock.Advance(b.policy.Overlap)
	require.NoError(t, succ.Retire(ctx, b.org, run.ID, b.policy))
	b.assertConverged(t)
}
