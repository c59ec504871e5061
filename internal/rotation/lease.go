package rotation

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/store"
)

// DefaultLeaseTTL is how long a process's lease lasts without a heartbeat.
// A run of a process that died is taken over this long after its last
// heartbeat; a side effect (a sink write, a Graph write) must end within
// it, so it also bounds how long one such call may take.
const DefaultLeaseTTL = 30 * time.Second

// LeaseStore is the part of the store a lease needs.
type LeaseStore interface {
	RenewLease(ctx context.Context, p store.RenewLeaseParams) (time.Time, error)
	ReleaseLease(ctx context.Context, holder string) error
	CountLiveLeases(ctx context.Context) (int, error)
}

// Lease is this process's lease: every run it starts or takes over is
// held under it (docs/adr/0009). It renews itself in the background every
// TTL/3 once acquired; a process that stops renewing (killed, frozen, cut
// off from the database) loses its runs to whichever process recovers them
// after the TTL, and its own fenced writes fail with store.ErrLeaseLost.
type Lease struct {
	store LeaseStore
	clock clock.Clock
	log   *slog.Logger
	id    string
	desc  string
	ttl   time.Duration

	mu      sync.Mutex
	started bool
	until   time.Time
	stop    context.CancelFunc
	done    chan struct{}
	failing bool
	onLive  func(n int)
}

// OnLiveLeases makes the lease count the live leases (the rotor processes
// sharing the database, this one included) after each renewal, every
// TTL/3, and tell fn: the Graph pacer divides its budget between them
// (pacer.Registry.SetShare). Call it before Acquire.
func (l *Lease) OnLiveLeases(fn func(n int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onLive = fn
}

// countLive tells onLive how many leases are live. A failed count keeps
// the last share: the next heartbeat tries again.
func (l *Lease) countLive(ctx context.Context) {
	l.mu.Lock()
	fn := l.onLive
	l.mu.Unlock()
	if fn == nil {
		return
	}
	if n, err := l.store.CountLiveLeases(ctx); err == nil {
		fn(max(n, 1))
	}
}

// NewLease makes the lease of one process; nothing is written until
// Acquire. what says which command holds it ("serve", "rotate"), for
// people reading the leases table.
func NewLease(st LeaseStore, c clock.Clock, log *slog.Logger, ttl time.Duration, what string) *Lease {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	return &Lease{
		store: st, clock: c, log: log, ttl: ttl,
		id:   uuid.NewString(),
		desc: fmt.Sprintf("rotor %s, pid %d on %s", what, os.Getpid(), host),
	}
}

// Holder is the lease's id, recorded on every run it holds.
func (l *Lease) Holder() string { return l.id }

// TTL is the lease's time to live.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Acquire writes the lease (once) and starts renewing it. It is safe to
// call again: later calls only check that the lease was acquired.
func (l *Lease) Acquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return nil
	}
	until, err := l.store.RenewLease(ctx, store.RenewLeaseParams{Holder: l.id, Description: l.desc, TTL: l.ttl})
	if err != nil {
		return fmt.Errorf("acquire the process lease: %w", err)
	}
	l.until = until
	hctx, cancel := context.WithCancel(context.Background())
	l.stop, l.done, l.started = cancel, make(chan struct{}), true
	go l.heartbeat(hctx)
	if l.onLive != nil {
		// At once, not at the first heartbeat (countLive takes l.mu,
		// which Acquire holds: in the background).
		go func() {
			cctx, cancel := context.WithTimeout(hctx, l.ttl/3)
			defer cancel()
			l.countLive(cctx)
		}()
	}
	return nil
}

func (l *Lease) heartbeat(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		until, err := l.store.RenewLease(rctx, store.RenewLeaseParams{Holder: l.id, TTL: l.ttl})
		if err == nil {
			l.countLive(rctx)
		}
		cancel()
		l.mu.Lock()
		switch {
		case err == nil:
			if l.failing {
				l.log.Info("process lease renewed again", "holder", l.id)
			}
			l.failing = false
			l.until = until
		case ctx.Err() != nil:
		case !l.failing:
			// One line per failure streak, not per heartbeat.
			l.failing = true
			l.log.Error("renewing the process lease failed: if it stays so past the lease's expiry, another rotor process takes over this one's rotations and this one stops them",
				"holder", l.id, "expires", l.until, "error", err)
		}
		l.mu.Unlock()
	}
}

// abandon stops renewing without releasing, as a process that dies does:
// tests use it to leave a lease to expire.
func (l *Lease) abandon() {
	l.mu.Lock()
	if !l.started {
		l.mu.Unlock()
		return
	}
	l.started = false
	stop, done := l.stop, l.done
	l.mu.Unlock()
	stop()
	<-done
}

// Close stops renewing and releases the lease, so another process may take
// over what this one leaves at once instead of after the TTL.
func (l *Lease) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.started {
		l.mu.Unlock()
		return nil
	}
	l.started = false
	stop, done := l.stop, l.done
	l.mu.Unlock()
	stop()
	<-done
	if err := l.store.ReleaseLease(ctx, l.id); err != nil {
		return fmt.Errorf("release the process lease: %w", err)
	}
	return nil
}
