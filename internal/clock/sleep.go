package clock

import (
	"context"
	"time"
)

// Sleeper is a Clock that can also wait on its own time. Code that must
// wait for a moment of the clock — a pacer waiting for Graph's budget to
// refill — takes one, so that a test with a Fake moves time instead of
// sleeping through it.
type Sleeper interface {
	Clock
	// Sleep waits until d has passed on the clock or ctx is done; it
	// returns ctx's error in the latter case.
	Sleep(ctx context.Context, d time.Duration) error
}

var (
	_ Sleeper = Real{}
	_ Sleeper = (*Fake)(nil)
)

// Sleep waits d on c: through c's own Sleep when c is a Sleeper, on the
// wall clock otherwise (an Offset's time moves with the wall clock, and an
// Advance only makes the wait end later than needed, never too early).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if s, ok := c.(Sleeper); ok {
		return s.Sleep(ctx, d)
	}
	return wallSleep(ctx, d)
}

// Sleep waits d on the wall clock.
func (Real) Sleep(ctx context.Context, d time.Duration) error { return wallSleep(ctx, d) }

func wallSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sleep waits until Set or Advance moves the fake time d past now, or ctx
// is done.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	f.mu.Lock()
	s := f.sleepers.add(f.now.Add(d))
	f.mu.Unlock()
	select {
	case <-s.ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		f.sleepers.remove(s)
		f.mu.Unlock()
		return ctx.Err()
	}
}

// Sleepers is the number of goroutines sleeping on f.
func (f *Fake) Sleepers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sleepers.list)
}

// WaitSleepers blocks until at least n goroutines sleep on f, or ctx is
// done. It is a test's signal that the code under test is waiting for time
// to pass, so the test advances the clock on an event instead of guessing
// with a real sleep.
func (f *Fake) WaitSleepers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.sleepers.list) >= n {
			f.mu.Unlock()
			return nil
		}
		if f.sleepers.changed == nil {
			f.sleepers.changed = make(chan struct{})
		}
		ch := f.sleepers.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AdvanceToNext moves f to the earliest deadline of its sleepers, waking
// that sleeper (and any due at the same moment). It reports false, and
// leaves f alone, when nobody sleeps.
func (f *Fake) AdvanceToNext() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sleepers.list) == 0 {
		return false
	}
	next := f.sleepers.list[0].at
	for _, s := range f.sleepers.list[1:] {
		if s.at.Before(next) {
			next = s.at
		}
	}
	if next.After(f.now) {
		f.now = next
	}
	f.sleepers.wake(f.now)
	return true
}

// sleepers are the goroutines sleeping on a Fake; its mutex guards them.
type sleepers struct {
	list []*sleeper
	// changed is closed (and forgotten) whenever list changes, waking
	// WaitSleepers; nil while nobody watches.
	changed chan struct{}
}

type sleeper struct {
	at time.Time
	ch chan struct{}
}

func (s *sleepers) add(at time.Time) *sleeper {
	sl := &sleeper{at: at, ch: make(chan struct{})}
	s.list = append(s.list, sl)
	s.notify()
	return sl
}

func (s *sleepers) remove(sl *sleeper) {
	for i, x := range s.list {
		if x == sl {
			s.list = append(s.list[:i], s.list[i+1:]...)
			s.notify()
			return
		}
	}
}

// wake releases every sleeper whose deadline is not after now.
func (s *sleepers) wake(now time.Time) {
	kept := s.list[:0]
	woke := false
	for _, sl := range s.list {
		if sl.at.After(now) {
			kept = append(kept, sl)
			continue
		}
		close(sl.ch)
		woke = true
	}
	clear(s.list[len(kept):])
	s.list = kept
	if woke {
		s.notify()
	}
}

func (s *sleepers) notify() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}
