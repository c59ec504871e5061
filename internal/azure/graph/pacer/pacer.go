// Package pacer keeps rotor's Graph requests inside Microsoft Graph's
// identity and access throttling budgets, so that a large rotation wave
// waits for budget on rotor's side instead of being sent to be refused
// with 429s.
//
// Graph meters every calling application in every tenant with token
// buckets: resource units per 10 s and writes per 150 s for the
// application+tenant pair, writes per 5 minutes for the whole tenant, and
// resource units and writes for the application across all its tenants
// (AZURE-API.md §2, §9). A Pacer mirrors the buckets of one pair (the
// tenant-wide and application-wide ones shared through a Registry with the
// other pacers they concern). Before each request it takes the request's
// cost (CostOf) from every bucket involved, waiting — as long as the
// caller's context allows — until all of them can pay. When Graph still
// answers 429 (another process shares the identity, or the limits moved),
// Throttled drains and pauses the bucket the response names, so every
// request sharing it waits out the Retry-After, not only the one refused.
//
// The buckets are golang.org/x/time/rate limiters driven with the injected
// clock's time (ReserveN/DelayFrom/CancelAt at an explicit instant) and
// waited on through clock.Sleep, so tests move a fake clock instead of
// sleeping; ADR 15 says why rate fits.
package pacer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/rotor-dev/rotor/internal/clock"
)

// Key names the calling identity in one tenant: the pair Graph meters.
type Key struct {
	TenantID string
	// ClientID is the calling application's client (app) id.
	ClientID string
}

func (k Key) normal() Key {
	return Key{TenantID: strings.ToLower(strings.TrimSpace(k.TenantID)), ClientID: strings.ToLower(strings.TrimSpace(k.ClientID))}
}

// Bucket names, as Budget.Bucket reports them (and a metric would label
// them).
const (
	BucketResourceUnits    = "resource_units"
	BucketWrites           = "writes"
	BucketTenantWrites     = "tenant_writes"
	BucketAppWrites        = "app_writes"
	BucketAppResourceUnits = "app_resource_units"
)

// Fallback pauses for a 429 without Retry-After (some identity 429s lack
// it): 1 s, 2 s, 4 s … per consecutive such 429 on a bucket, ±20 %, at
// most a minute (the Graph client's longest retry delay).
const (
	fallbackBase = time.Second
	fallbackMax  = time.Minute
)

// Options configure a Registry.
type Options struct {
	// Clock is the time the buckets refill by and waits are measured on;
	// nil is the wall clock. A clock.Sleeper (clock.Fake) is waited on
	// through its Sleep.
	Clock clock.Clock
	// Budgets are the limits. ResourceUnits applies to every tenant not
	// in TenantSizes.
	Budgets Budgets
	// TenantSizes are the size tiers of tenants whose resource unit limit
	// differs from Budgets.ResourceUnits, by tenant id.
	TenantSizes map[string]TenantSize
	// Jitter returns a number in [0, 1) to spread fallback pauses; nil is
	// math/rand.
	Jitter func() float64
}

// Registry holds the pacers of one process, one per application+tenant,
// and the tenant-wide and application-wide buckets they share: every Graph
// client of the same identity in the same tenant must draw from the same
// buckets, or each would spend the whole budget on its own.
type Registry struct {
	clock  clock.Clock
	opts   Options
	jitter func() float64

	mu      sync.Mutex
	pacers  map[Key]*Pacer
	tenants map[string]*bucket // tenant-wide writes
	apps    map[string]*appBuckets
	share   int // the processes the budgets are divided between (SetShare)
}

type appBuckets struct{ writes, ru *bucket }

// NewRegistry returns an empty registry.
func NewRegistry(opts Options) *Registry {
	r := &Registry{
		clock: opts.Clock, opts: opts, jitter: opts.Jitter,
		pacers: map[Key]*Pacer{}, tenants: map[string]*bucket{}, apps: map[string]*appBuckets{}, share: 1,
	}
	if r.clock == nil {
		r.clock = clock.Real{}
	}
	if r.jitter == nil {
		r.jitter = rand.Float64
	}
	sizes := make(map[string]TenantSize, len(opts.TenantSizes))
	for id, s := range opts.TenantSizes {
		sizes[strings.ToLower(strings.TrimSpace(id))] = s
	}
	r.opts.TenantSizes = sizes
	return r
}

// For returns the pacer of the identity k, creating it (with full buckets)
// on first use. Every caller asking for the same tenant and client id gets
// the same pacer.
func (r *Registry) For(k Key) *Pacer {
	k = k.normal()
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pacers[k]; ok {
		return p
	}
	b := r.opts.Budgets
	ru := b.ResourceUnits
	if s, ok := r.opts.TenantSizes[k.TenantID]; ok {
		ru = Limit{s.ResourceUnits(), cmpOr(ru.Window, ResourceUnitWindow)}
	}
	now := r.clock.Now()
	tw, ok := r.tenants[k.TenantID]
	if !ok {
		tw = newBucket(BucketTenantWrites, b.TenantWrites, r.share, now)
		r.tenants[k.TenantID] = tw
	}
	ab, ok := r.apps[k.ClientID]
	if !ok {
		ab = &appBuckets{writes: newBucket(BucketAppWrites, b.AppWrites, r.share, now), ru: newBucket(BucketAppResourceUnits, b.AppResourceUnits, r.share, now)}
		r.apps[k.ClientID] = ab
	}
	p := &Pacer{
		key: k, reg: r,
		ru:     newBucket(BucketResourceUnits, ru, r.share, now),
		writes: newBucket(BucketWrites, b.Writes, r.share, now),
		tenant: tw, appW: ab.writes, appRU: ab.ru,
	}
	r.pacers[k] = p
	return p
}

// SetShare divides every budget between n processes (at least one): the
// replicas sharing one database, each pacing its own requests. Graph
// meters an identity in a tenant however many processes call it, so n
// replicas each keeping to the whole budget would together spend n
// times it. Each bucket's rate and size become 1/n of the limit; a
// bucket holding more than its new size keeps only that. rotor calls it
// with the number of live process leases, renewed every few seconds
// (rotation.Lease), so a replica that dies gives its share back within
// a lease's time to live.
func (r *Registry) SetShare(n int) {
	n = max(n, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if n == r.share {
		return
	}
	r.share = n
	now := r.clock.Now()
	for _, p := range r.pacers {
		p.ru.setShare(n, now)
		p.writes.setShare(n, now)
	}
	for _, b := range r.tenants {
		b.setShare(n, now)
	}
	for _, ab := range r.apps {
		ab.writes.setShare(n, now)
		ab.ru.setShare(n, now)
	}
}

// Share is the number of processes the budgets are divided between.
func (r *Registry) Share() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.share
}

// Pacers returns every pacer made so far, by tenant then client id: what a
// metrics exporter walks to publish each one's Remaining.
func (r *Registry) Pacers() []*Pacer {
	r.mu.Lock()
	out := make([]*Pacer, 0, len(r.pacers))
	for _, p := range r.pacers {
		out = append(out, p)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key, out[j].key
		return a.TenantID < b.TenantID || (a.TenantID == b.TenantID && a.ClientID < b.ClientID)
	})
	return out
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Pacer paces the Graph requests of one application in one tenant. It is
// safe for concurrent use; get it from a Registry.
type Pacer struct {
	key Key
	reg *Registry
	// ru and writes are the pair's own; tenant, appW and appRU are shared.
	ru, writes, tenant, appW, appRU *bucket
}

// Key is the identity and tenant the pacer meters.
func (p *Pacer) Key() Key { return p.key }

// charge is what one bucket is asked for.
type charge struct {
	b *bucket
	n int
}

func (p *Pacer) charges(c Cost) []charge {
	out := make([]charge, 0, 5)
	add := func(b *bucket, n int) {
		if n > 0 && b.lim != nil {
			out = append(out, charge{b, min(n, b.size())})
		}
	}
	add(p.ru, c.ResourceUnits)
	add(p.appRU, c.ResourceUnits)
	add(p.writes, c.Writes)
	add(p.tenant, c.Writes)
	add(p.appW, c.Writes)
	return out
}

// Wait blocks until every bucket c concerns can pay for it, takes the cost,
// and returns nil; the caller then sends the request at once (a bucket
// holds a little less than Graph's, see headroom). It returns
// a *WaitError, having taken nothing, when ctx ends first — or at once
// when ctx's deadline (on the wall clock, which is what the deadline is
// measured by) comes before the budget allows the request, a bucket's
// pause after a 429 included, so a request that cannot be sent in time
// does not hold budget others could use.
// A cost above a bucket's whole limit is charged as a full bucket.
func (p *Pacer) Wait(ctx context.Context, c Cost) error {
	chs := p.charges(c)
	if len(chs) == 0 {
		return nil
	}
	clk := p.reg.clock
	for {
		now := clk.Now()
		// A paused bucket takes no reservations: its refill during the
		// pause is what the requests after it may spend.
		if until, b := pausedUntil(chs); until.After(now) {
			if err := p.beyondDeadline(ctx, until.Sub(now), b); err != nil {
				return err
			}
			if err := p.sleep(ctx, until.Sub(now), b); err != nil {
				return err
			}
			continue
		}
		rs := make([]*rate.Reservation, len(chs))
		var delay time.Duration
		var slowest *bucket
		for i, ch := range chs {
			rs[i] = ch.b.lim.ReserveN(now, ch.n)
			if d := rs[i].DelayFrom(now); d > delay {
				delay, slowest = d, ch.b
			}
		}
		cancel := func() {
			at := clk.Now()
			for _, r := range rs {
				r.CancelAt(at)
			}
		}
		if delay <= 0 {
			return nil
		}
		// Wake a hair late rather than early: Graph's bucket and ours
		// refill by the same float arithmetic, and a request that arrives
		// a nanosecond early is refused.
		delay = delay.Truncate(time.Millisecond) + time.Millisecond
		if err := p.beyondDeadline(ctx, delay, slowest); err != nil {
			cancel()
			return err
		}
		if err := p.sleep(ctx, delay, slowest); err != nil {
			cancel()
			return err
		}
		// A 429 while we slept may have paused a bucket we hold tokens
		// of: wait it out, keeping them.
		for {
			now := clk.Now()
			until, b := pausedUntil(chs)
			if !until.After(now) {
				return nil
			}
			if err := p.beyondDeadline(ctx, until.Sub(now), b); err != nil {
				cancel()
				return err
			}
			if err := p.sleep(ctx, until.Sub(now), b); err != nil {
				cancel()
				return err
			}
		}
	}
}

func (p *Pacer) sleep(ctx context.Context, d time.Duration, b *bucket) error {
	if err := clock.Sleep(ctx, p.reg.clock, d); err != nil {
		return &WaitError{Bucket: b.name, Wait: d, Err: err}
	}
	return nil
}

// beyondDeadline is a *WaitError when a wait of d for b would outlast
// ctx's deadline (on the wall clock, which is what the deadline is
// measured by), nil otherwise: a bucket short of tokens and one paused
// after a 429 fail such a wait alike, at once.
func (p *Pacer) beyondDeadline(ctx context.Context, d time.Duration, b *bucket) error {
	if dl, ok := ctx.Deadline(); ok && isWall(p.reg.clock) && time.Until(dl) < d {
		return &WaitError{Bucket: b.name, Wait: d, Err: ErrBeyondDeadline}
	}
	return nil
}

// isWall reports a clock whose time is the wall clock's, the one a
// context's deadline is on.
func isWall(c clock.Clock) bool {
	_, ok := c.(clock.Real)
	return ok
}

func pausedUntil(chs []charge) (time.Time, *bucket) {
	var until time.Time
	var which *bucket
	for _, ch := range chs {
		if u := ch.b.paused(); u.After(until) {
			until, which = u, ch.b
		}
	}
	return until, which
}

// Throttle is what a 429 said.
type Throttle struct {
	// Scope is x-ms-throttle-scope as received ("" when absent).
	Scope string
	// RetryAfter is the server's wait, 0 when it gave none.
	RetryAfter time.Duration
}

// Throttled records a 429: the bucket its scope names (the pair's resource
// units when the scope is absent or unknown, which every request of the
// pair passes through) is drained and paused for RetryAfter — or, without
// one, for a backoff that doubles with each such 429 in a row — so every
// request sharing the bucket waits, not only the refused one. It returns
// the pause.
func (p *Pacer) Throttled(t Throttle) time.Duration {
	b := p.bucketFor(ParseScope(t.Scope))
	if b.lim == nil {
		// The bucket is turned off; pausing it would pause nothing.
		b = p.ru
	}
	return b.pause(p.reg.clock.Now(), t.RetryAfter, p.reg.jitter)
}

// Accepted records that Graph answered a request of cost c without a 429:
// the fallback backoff of its buckets starts again from the shortest.
func (p *Pacer) Accepted(c Cost) {
	for _, ch := range p.charges(c) {
		ch.b.accepted()
	}
}

func (p *Pacer) bucketFor(s Scope) *bucket {
	switch s {
	case ScopeWrites:
		return p.writes
	case ScopeTenantWrites:
		return p.tenant
	case ScopeAppWrites:
		return p.appW
	case ScopeAppResourceUnits:
		return p.appRU
	}
	return p.ru
}

// Budget is one bucket's state.
type Budget struct {
	// Bucket is one of the Bucket… names.
	Bucket string
	// Limit is this process's share of Graph's limit (all of it unless
	// Registry.SetShare divided it).
	Limit Limit
	// Remaining is the tokens the bucket holds now, never below 0 (the
	// requests waiting have taken the ones it will refill next) and at
	// most Limit.Count less a small headroom (one second of refill, at
	// most 1 % of the limit).
	Remaining float64
	// PausedUntil is when a pause after a 429 ends (zero when none is
	// in force).
	PausedUntil time.Time
}

// Remaining reports every bucket this pacer draws from, the shared ones
// included, in a fixed order; a bucket turned off is left out. It is the
// narrow view a metrics exporter needs (rotor_pacer_budget_remaining).
func (p *Pacer) Remaining() []Budget {
	now := p.reg.clock.Now()
	var out []Budget
	for _, b := range []*bucket{p.ru, p.writes, p.tenant, p.appW, p.appRU} {
		if b.lim == nil {
			continue
		}
		bg := Budget{Bucket: b.name, Limit: b.shareLimit(), Remaining: max(0, b.lim.TokensAt(now))}
		if u := b.paused(); u.After(now) {
			bg.PausedUntil = u
		}
		out = append(out, bg)
	}
	return out
}

// bucket is one token bucket and its pause.
type bucket struct {
	name  string
	limit Limit
	// burst is what the bucket holds when full: limit.Count less the
	// headroom.
	burst int
	lim   *rate.Limiter // nil when the bucket is turned off

	mu         sync.Mutex
	pausedTill time.Time
	strikes    int // consecutive 429s without Retry-After
	share      int // the processes the limit is divided between
}

func newBucket(name string, l Limit, share int, now time.Time) *bucket {
	b := &bucket{name: name, limit: l, share: 1}
	if l.on() {
		b.burst = l.Count - headroom(l)
		b.lim = rate.NewLimiter(rate.Limit(l.rate()), b.burst)
	}
	b.setShare(share, now)
	return b
}

// setShare makes the bucket 1/n of the limit: its rate, and its size
// (the tokens it holds are cut to the new size).
func (b *bucket) setShare(n int, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lim == nil || n == b.share {
		return
	}
	b.share = n
	b.lim.SetLimitAt(now, rate.Limit(b.limit.rate()/float64(n)))
	b.lim.SetBurstAt(now, max(1, b.burst/n))
}

// size is what the bucket holds when full: this process's share.
func (b *bucket) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(1, b.burst/b.share)
}

// shareLimit is this process's share of the limit.
func (b *bucket) shareLimit() Limit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Limit{Count: b.limit.Count / b.share, Window: b.limit.Window}
}

// headroom is how much less than Graph's bucket ours holds when full: one
// second of refill, but never more than 1 % of the limit. Our bucket
// starts refilling when we take a request's cost, Graph's only when the
// request arrives; while Graph's is full (at the start of a wave, after a
// quiet spell) the refill it misses during one request's latency is
// budget we would believe in and Graph would not have. A second of refill
// covers a second of latency; the cap keeps small limits (and a short
// wave's burst) whole.
func headroom(l Limit) int {
	return min(int(math.Ceil(l.rate())), l.Count/100)
}

func (b *bucket) paused() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pausedTill
}

func (b *bucket) pause(now time.Time, retryAfter time.Duration, jitter func() float64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := retryAfter
	if d <= 0 {
		base := fallbackBase << min(b.strikes, 6)
		d = min(time.Duration(float64(base)*(0.8+0.4*jitter())), fallbackMax)
		b.strikes++
	}
	if until := now.Add(d); until.After(b.pausedTill) {
		b.pausedTill = until
	}
	// Graph's bucket is empty: so is ours, and what it refills during
	// the pause is what the next requests may spend.
	if b.lim != nil {
		if n := int(math.Floor(b.lim.TokensAt(now))); n > 0 {
			b.lim.ReserveN(now, n)
		}
	}
	return d
}

func (b *bucket) accepted() {
	b.mu.Lock()
	b.strikes = 0
	b.mu.Unlock()
}

// ErrBeyondDeadline is a WaitError's cause when the budget would allow the
// request only after its context's deadline.
var ErrBeyondDeadline = errors.New("Graph's budget allows the request only after its context's deadline")

// WaitError says a request was held back to stay inside Graph's budget and
// stopped waiting: its context ended, or would have ended first. Nothing
// was sent and no budget was spent; like a 429, it is worth retrying
// later.
type WaitError struct {
	// Bucket is the bucket it waited for.
	Bucket string
	// Wait is how long it still had to wait.
	Wait time.Duration
	Err  error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("graph pacer: waiting %s for the %s budget: %v", e.Wait.Round(time.Millisecond), e.Bucket, e.Err)
}

func (e *WaitError) Unwrap() error { return e.Err }

// NonRetriable tells azcore's retry policy not to retry: the wait is over
// (the context ended) or cannot fit (its deadline), and trying again at
// once would only wait again.
func (e *WaitError) NonRetriable() {}

// IsWaitError reports that err is (or wraps) a *WaitError.
func IsWaitError(err error) bool {
	var we *WaitError
	return errors.As(err, &we)
}
