package graph

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// writeGraphFault writes Graph's error shape (writeGraphError) for a
// response the Graph handlers never saw, so it first sets the request ids
// they would have set.
func (s *Service) writeGraphFault(w http.ResponseWriter, status int, code, message, clientRequestID string) {
	h := w.Header()
	if h.Get("request-id") == "" {
		h.Set("request-id", uuid.NewString())
	}
	if h.Get("client-request-id") == "" {
		if clientRequestID == "" {
			clientRequestID = h.Get("request-id")
		}
		h.Set("client-request-id", clientRequestID)
	}
	writeGraphError(w, s.Clock().Now().UTC().Format("2006-01-02T15:04:05"), status, code, message)
}

// Graph's identity and access limits, per app+tenant (small tenant): a
// bucket of resource units refilled over 10 s and a write bucket refilled
// over 150 s. ThrottleScale multiplies both capacities.
const (
	graphRUCapacity    = 3500
	graphRUWindow      = 10 * time.Second
	graphWriteCapacity = 3000
	graphWriteWindow   = 150 * time.Second
)

// bucketSet is the token buckets by tenant+app.
type bucketSet struct {
	mu sync.Mutex
	m  map[string]*appBucket
}

type appBucket struct {
	ru, writes float64
	last       time.Time
}

func (b *bucketSet) init() { b.m = map[string]*appBucket{} }

// admitGraph charges cost resource units (and one write when write is set)
// to the app+tenant bucket. When the bucket cannot pay it writes Graph's
// 429 with Retry-After and x-ms-throttle-scope and returns false; the
// handler must then stop. With throttling off it always admits. Time comes
// from the simulated clock, so a test can drain a bucket and step past it.
func (s *Service) admitGraph(w http.ResponseWriter, tenantID, appID string, cost int, write bool) bool {
	if write {
		s.Counters().GraphWrites.Add(1)
	} else {
		s.Counters().GraphReads.Add(1)
	}
	cfg := s.Faults()
	if !cfg.Throttle {
		return true
	}
	scale := cfg.ThrottleScale
	if scale == 0 {
		scale = 1
	}
	ruCap := math.Max(1, graphRUCapacity*scale)
	wrCap := math.Max(1, graphWriteCapacity*scale)
	ruRate := ruCap / graphRUWindow.Seconds()
	wrRate := wrCap / graphWriteWindow.Seconds()
	need := math.Min(math.Max(1, float64(cost)), ruCap)

	now := s.Clock().Now()
	s.buckets.mu.Lock()
	key := tenantID + "/" + appID
	b := s.buckets.m[key]
	if b == nil {
		b = &appBucket{ru: ruCap, writes: wrCap, last: now}
		s.buckets.m[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.ru += dt * ruRate
		b.writes += dt * wrRate
	}
	b.ru, b.writes, b.last = math.Min(b.ru, ruCap), math.Min(b.writes, wrCap), now
	if b.ru >= need && (!write || b.writes >= 1) {
		b.ru -= need
		if write {
			b.writes--
		}
		s.buckets.mu.Unlock()
		return true
	}
	wait, scope := 0.0, "Tenant_Application/ReadWrite/"+tenantID+"/"+appID
	if b.ru < need {
		wait = (need - b.ru) / ruRate
	}
	if write && b.writes < 1 {
		if ww := (1 - b.writes) / wrRate; ww > wait {
			wait = ww
			scope = "Tenant_Application/Write/" + tenantID + "/" + appID
		}
	}
	s.buckets.mu.Unlock()

	s.Counters().Throttled.Add(1)
	retry := max(1, int(math.Ceil(wait)))
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	w.Header().Set("x-ms-throttle-scope", scope)
	w.Header().Set("x-ms-throttle-information", "ResourceUnitLimitExceeded")
	s.writeGraphFault(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.", "")
	return false
}

func (s *Service) countGraph(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Counters().GraphRequests.Add(1)
		next.ServeHTTP(w, r)
	})
}

func (s *Service) countVault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Counters().Vault.Add(1)
		next.ServeHTTP(w, r)
	})
}

// writeUnavailable is an injected 503 in Graph's shape.
func (s *Service) writeUnavailable(w http.ResponseWriter, r *http.Request) {
	s.writeGraphFault(w, http.StatusServiceUnavailable, "ServiceUnavailable", core.UnavailableMessage, r.Header.Get("client-request-id"))
}
