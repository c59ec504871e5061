package rotation

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// slots is one tenant's concurrency limit, handed out earliest deadline
// first. A plain semaphore serves waiters in arrival order, and arrival
// order is an accident (which page of the inventory was synced first,
// which job a worker fetched): when Graph throttles a wave of renewals, an
// application whose secret ends in a minute could wait behind twenty that
// have hours. Here the waiter whose current credential ends first goes
// next; equal deadlines keep arrival order.
type slots struct {
	mu      sync.Mutex
	free    int
	seq     uint64
	waiters waitHeap
}

func newSlots(n int) *slots { return &slots{free: n} }

// waiter is one acquire call waiting for a slot. ready is closed when the
// slot is granted.
type waiter struct {
	deadline time.Time
	seq      uint64
	ready    chan struct{}
	granted  bool
	index    int
}

type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if !h[i].deadline.Equal(h[j].deadline) {
		return h[i].deadline.Before(h[j].deadline)
	}
	return h[i].seq < h[j].seq
}
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// acquire waits for a slot, ahead of every waiter with a later deadline.
// It returns a release func that is safe to call more than once.
func (s *slots) acquire(ctx context.Context, deadline time.Time) (func(), error) {
	s.mu.Lock()
	if s.free > 0 && len(s.waiters) == 0 {
		s.free--
		s.mu.Unlock()
		return s.releaser(), nil
	}
	s.seq++
	w := &waiter{deadline: deadline, seq: s.seq, ready: make(chan struct{})}
	heap.Push(&s.waiters, w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return s.releaser(), nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.granted {
			// Granted as the context ended: hand the slot on.
			s.grant()
		} else {
			heap.Remove(&s.waiters, w.index)
		}
		return nil, ctx.Err()
	}
}

func (s *slots) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.grant()
		})
	}
}

// grant gives a freed slot to the most urgent waiter, or back to the pool.
// s.mu is held.
func (s *slots) grant() {
	if len(s.waiters) == 0 {
		s.free++
		return
	}
	w := heap.Pop(&s.waiters).(*waiter)
	w.granted = true
	close(w.ready)
}

// deadlineOf is when an application's consumers lose their credential if
// rotor does nothing: the end of the newest valid credential of kind (the
// one a rotation replaces). An application with none valid is the most
// urgent of all (now).
func deadlineOf(app domain.Application, kind domain.CredentialKind, now time.Time) time.Time {
	var end time.Time
	for _, c := range app.Credentials {
		if c.Kind == kind && c.End.After(now) && c.End.After(end) {
			end = c.End
		}
	}
	if end.IsZero() {
		return now
	}
	return end
}

// sortByDeadline orders due applications earliest deadline first (stable,
// so equal deadlines keep the inventory's order): the planner enqueues
// them in this order, and the job queue hands them out in it.
func sortByDeadline(due []DueApp, now time.Time) {
	type keyed struct {
		at  time.Time
		app DueApp
	}
	ks := make([]keyed, len(due))
	for i, d := range due {
		ks[i] = keyed{deadlineOf(d.App, d.Policy.Kind, now), d}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return a.at.Compare(b.at) })
	for i := range ks {
		due[i] = ks[i].app
	}
}
