package auth

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/rotor-dev/rotor/internal/clock"
)

// Rate limit defaults: a calling application may burst to 60 requests
// and keep up 10 a second.
const (
	DefaultRate  = 10
	DefaultBurst = 60
	// limiterIdle is how long a caller's bucket is kept unused before it
	// is forgotten (a full bucket, which is what a new one is anyway).
	limiterIdle = 10 * time.Minute
)

// Limiter limits requests per calling application (Principal.RateKey: an
// Entra client in its tenant, or an API key), answering 429 with
// Retry-After. One caller's burst never slows another.
type Limiter struct {
	limit rate.Limit
	burst int
	clock clock.Clock

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

// NewLimiter allows each caller perSecond requests a second with bursts
// of burst, judged by clk (nil: the real clock).
func NewLimiter(perSecond float64, burst int, clk clock.Clock) *Limiter {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: burst, clock: clk, buckets: map[string]*bucket{}}
}

// Allow takes one request from key's bucket; when it is empty it returns
// false and how long until a request would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > limiterIdle {
		for k, b := range l.buckets {
			if now.Sub(b.used) > limiterIdle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Middleware limits requests by the principal the bearer middleware put
// in the context; it must run after Authenticator.Middleware. A request
// without a principal is passed on (it cannot have got this far through
// Authenticator).
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if allowed, wait := l.Allow(p.RateKey); !allowed {
			// Whole seconds, rounded up, so a client that waits exactly
			// Retry-After is let in.
			secs := min(max(int64(math.Ceil(wait.Seconds())), 1), 86400)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			WriteError(w, refuse(ReasonRateLimited, nil))
			return
		}
		next.ServeHTTP(w, r)
	})
}
