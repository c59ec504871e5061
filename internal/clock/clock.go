// Package clock provides the injected time source every piece of rotor logic
// uses instead of time.Now, so that due-time maths, retirement and the
// simulator's expiry rules can be tested at any instant.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Fake is a settable clock for tests. Goroutines sleeping on it (Sleep)
// wake when Set or Advance moves it past their deadline.
type Fake struct {
	mu       sync.Mutex
	now      time.Time
	sleepers sleepers
}

// NewFake returns a Fake set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.sleepers.wake(t)
	f.mu.Unlock()
}

// Advance moves the clock forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.sleepers.wake(f.now)
	f.mu.Unlock()
}

// Offset is the wall clock shifted by a fixed amount; the simulator uses it
// to let a demo or test jump forward in time without a fake clock.
type Offset struct {
	mu sync.RWMutex
	d  time.Duration
}

// Now returns time.Now() plus the offset.
func (o *Offset) Now() time.Time {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return time.Now().Add(o.d)
}

// Advance adds d to the offset.
func (o *Offset) Advance(d time.Duration) {
	o.mu.Lock()
	o.d += d
	o.mu.Unlock()
}
