package rotation

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// TestSlotsServeEarliestDeadlineFirst: with the tenant's slots taken,
// waiters get them in deadline order, not arrival order; equal deadlines
// keep arrival order.
func TestSlotsServeEarliestDeadlineFirst(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	hold, err := s.acquire(ctx, time.Time{})
	require.NoError(t, err)

	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	// Arrival order: c, a, d, b — deadlines a < b = c < d.
	arrivals := []struct {
		name string
		at   time.Time
	}{{"b", t0.Add(2 * time.Hour)}, {"d", t0.Add(3 * time.Hour)}, {"a", t0.Add(time.Hour)}, {"c", t0.Add(2 * time.Hour)}}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	for i, a := range arrivals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.acquire(ctx, a.at)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, a.name)
			mu.Unlock()
			release()
		}()
		// Let it queue before the next one arrives.
		require.Eventually(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.waiters) == i+1 }, time.Second, time.Millisecond)
	}
	hold()
	hold() // a second release changes nothing
	wg.Wait()
	require.Equal(t, []string{"a", "b", "c", "d"}, order)
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, 1, s.free, "every slot is back")
	require.Empty(t, s.waiters)
}

// TestSlotsWaiterThatGivesUpLeavesNoHole: a waiter whose context ends is
// removed from the queue and takes no slot with it.
func TestSlotsWaiterThatGivesUpLeavesNoHole(t *testing.T) {
	s := newSlots(1)
	hold, err := s.acquire(context.Background(), time.Time{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.acquire(ctx, time.Now())
		done <- err
	}()
	require.Eventually(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.waiters) == 1 }, time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	hold()
	release, err := s.acquire(context.Background(), time.Now())
	require.NoError(t, err, "the slot came back")
	release()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, 1, s.free)
}

// TestDueOrderIsEarliestDeadlineFirst: the planner's list is ordered by when
// each application's current credential ends, whatever the names.
func TestDueOrderIsEarliestDeadlineFirst(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	app := func(name string, ends ...time.Duration) DueApp {
		a := domain.Application{DisplayName: name}
		for _, e := range ends {
			a.Credentials = append(a.Credentials, domain.Credential{Kind: domain.KindSecret, End: now.Add(e)})
		}
		return DueApp{App: a, Policy: domain.Policy{Kind: domain.KindSecret}}
	}
	due := []DueApp{
		app("a-late", 5*time.Hour),
		app("b-soon", -time.Hour, time.Minute), // the newest valid one counts
		app("c-none"),                          // nothing valid: most urgent
		app("d-mid", 2*time.Hour, time.Hour),
		app("e-expired", -time.Minute), // only an ended one: as urgent as none
	}
	sortByDeadline(due, now)
	var names []string
	for _, d := range due {
		names = append(names, d.App.DisplayName)
	}
	require.Equal(t, []string{"c-none", "e-expired", "b-soon", "d-mid", "a-late"}, names)
}
