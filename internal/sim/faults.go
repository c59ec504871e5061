package sim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// FaultConfig is the fault injection in force. The zero value injects
// nothing. It is applied to every listener except the control API and the
// managed identity endpoint, so a test can break Azure without breaking its
// own means of repairing it.
type FaultConfig struct {
	// Latency is added before every request is handled.
	Latency time.Duration
	// ErrorRate is the fraction (0..1) of requests answered 503 in the
	// service's own error shape.
	ErrorRate float64
	// DropRate is the fraction (0..1) of requests whose connection is closed
	// without an answer, as a network failure looks to a client.
	DropRate float64
	// Throttle turns Graph's per app+tenant token buckets on.
	Throttle bool
	// ThrottleScale multiplies the buckets' capacity (0 means 1): below 1
	// makes throttling easy to provoke in tests.
	ThrottleScale float64
}

// faultConfigJSON is FaultConfig on the wire, with the latency as a Go
// duration string ("20ms") so people can write it by hand.
type faultConfigJSON struct {
	Latency       string  `json:"latency"`
	ErrorRate     float64 `json:"error_rate"`
	DropRate      float64 `json:"drop_rate"`
	Throttle      bool    `json:"throttle"`
	ThrottleScale float64 `json:"throttle_scale"`
}

// MarshalJSON writes the latency as a duration string.
func (c FaultConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultConfigJSON{
		Latency: c.Latency.String(), ErrorRate: c.ErrorRate, DropRate: c.DropRate,
		Throttle: c.Throttle, ThrottleScale: c.ThrottleScale,
	})
}

// UnmarshalJSON reads the latency as a duration string and validates.
func (c *FaultConfig) UnmarshalJSON(b []byte) error {
	var j faultConfigJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := FaultConfig{ErrorRate: j.ErrorRate, DropRate: j.DropRate, Throttle: j.Throttle, ThrottleScale: j.ThrottleScale}
	if j.Latency != "" {
		d, err := time.ParseDuration(j.Latency)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		out.Latency = d
	}
	if err := out.validate(); err != nil {
		return err
	}
	*c = out
	return nil
}

// ParseFaults builds a FaultConfig from command-line flag values.
func ParseFaults(latency string, errorRate, dropRate float64, throttle bool) (FaultConfig, error) {
	c := FaultConfig{ErrorRate: errorRate, DropRate: dropRate, Throttle: throttle}
	if latency != "" {
		d, err := time.ParseDuration(latency)
		if err != nil {
			return FaultConfig{}, fmt.Errorf("latency: %w", err)
		}
		c.Latency = d
	}
	if err := c.validate(); err != nil {
		return FaultConfig{}, err
	}
	return c, nil
}

func (c FaultConfig) validate() error {
	rate := func(name string, v float64) error {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return fmt.Errorf("%s must be between 0 and 1", name)
		}
		return nil
	}
	if err := rate("error rate", c.ErrorRate); err != nil {
		return err
	}
	if err := rate("drop rate", c.DropRate); err != nil {
		return err
	}
	if c.Latency < 0 || c.Latency > maxLatency {
		return errors.New("latency must be between 0 and 5m")
	}
	if math.IsNaN(c.ThrottleScale) || math.IsInf(c.ThrottleScale, 0) || c.ThrottleScale < 0 {
		return errors.New("throttle scale must be a non-negative number")
	}
	return nil
}

// maxLatency bounds the injected latency. The listeners' WriteTimeout is
// derived from it so an injected delay never cuts off its own response.
const maxLatency = 5 * time.Minute

// faultState holds the current FaultConfig for concurrent readers.
type faultState struct {
	mu  sync.RWMutex
	cfg FaultConfig
}

func (f *faultState) get() FaultConfig {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cfg
}

func (f *faultState) set(c FaultConfig) {
	f.mu.Lock()
	f.cfg = c
	f.mu.Unlock()
}

// Faults returns the fault injection in force.
func (s *Server) Faults() FaultConfig { return s.faults.get() }

// SetFaults replaces the fault injection in force.
func (s *Server) SetFaults(c FaultConfig) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("sim: faults: %w", err)
	}
	s.faults.set(c)
	s.logger.Info("simulator faults changed", "latency", c.Latency, "error_rate", c.ErrorRate,
		"drop_rate", c.DropRate, "throttle", c.Throttle, "throttle_scale", c.ThrottleScale)
	return nil
}

// serviceKind says which service a listener or route belongs to, for the
// shape of an injected error.
type serviceKind int

const (
	kindToken serviceKind = iota
	kindGraph
	kindARM
	kindVault
)

// withFaults applies latency, dropped connections and injected 503s.
func (s *Server) withFaults(kind serviceKind, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := s.faults.get()
		if cfg.Latency > 0 {
			t := time.NewTimer(cfg.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if cfg.DropRate > 0 && rand.Float64() < cfg.DropRate {
			s.counters.dropped.Add(1)
			dropConnection(w)
			return
		}
		if cfg.ErrorRate > 0 && rand.Float64() < cfg.ErrorRate {
			s.counters.injected.Add(1)
			s.writeUnavailable(w, r, kind)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dropConnection closes the connection under the request with no answer.
// HTTP/2 streams cannot be hijacked; aborting the handler resets the stream,
// which a client sees the same way.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// writeUnavailable answers 503 in the shape of the service asked.
func (s *Server) writeUnavailable(w http.ResponseWriter, r *http.Request, kind serviceKind) {
	const msg = "The service is temporarily unavailable. Please retry."
	switch kind {
	case kindToken:
		s.entraError(w, r, &entraError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			aadsts: 90033, msg: "A transient error has occurred. Please try again."})
	case kindGraph:
		s.writeGraphFault(w, http.StatusServiceUnavailable, "ServiceUnavailable", msg, r.Header.Get("client-request-id"))
	default:
		writeJSON(w, http.StatusServiceUnavailable, plainJSON, map[string]any{"error": map[string]any{"code": "ServiceUnavailable", "message": msg}})
	}
}

// writeGraphFault writes Graph's error shape (writeGraphError) for a
// response the Graph handlers never saw, so it first sets the request ids
// they would have set.
func (s *Server) writeGraphFault(w http.ResponseWriter, status int, code, message, clientRequestID string) {
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
	writeGraphError(w, s.clock.Now().UTC().Format("2006-01-02T15:04:05"), status, code, message)
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
func (s *Server) admitGraph(w http.ResponseWriter, tenantID, appID string, cost int, write bool) bool {
	if write {
		s.counters.graphWrites.Add(1)
	} else {
		s.counters.graphReads.Add(1)
	}
	cfg := s.faults.get()
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

	now := s.clock.Now()
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

	s.counters.throttled.Add(1)
	retry := max(1, int(math.Ceil(wait)))
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	w.Header().Set("x-ms-throttle-scope", scope)
	w.Header().Set("x-ms-throttle-information", "ResourceUnitLimitExceeded")
	s.writeGraphFault(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.", "")
	return false
}

// counters are the request counts by kind behind /_sim/stats.
type counters struct {
	tokenRequests, tokensIssued, miTokens  atomic.Int64
	graphRequests, graphReads, graphWrites atomic.Int64
	throttled, vault, injected, dropped    atomic.Int64
}

// Stats is a snapshot of what the simulator has served, for tests,
// benchmarks and the demo's dashboard.
type Stats struct {
	// TokenRequests counts token endpoint requests, TokensIssued the ones
	// that got a token.
	TokenRequests int64 `json:"token_requests"`
	TokensIssued  int64 `json:"tokens_issued"`
	// ManagedIdentityTokens counts tokens from the managed identity endpoint.
	ManagedIdentityTokens int64 `json:"managed_identity_tokens"`
	// GraphRequests counts HTTP requests under /graph/; GraphReads and
	// GraphWrites count operations charged to the throttle (a $batch charges
	// each item).
	GraphRequests int64 `json:"graph_requests"`
	GraphReads    int64 `json:"graph_reads"`
	GraphWrites   int64 `json:"graph_writes"`
	// Throttled counts 429s from the Graph token buckets.
	Throttled int64 `json:"throttled"`
	// Vault counts Key Vault requests.
	Vault int64 `json:"vault"`
	// InjectedErrors and DroppedConnections count injected faults.
	InjectedErrors     int64 `json:"injected_errors"`
	DroppedConnections int64 `json:"dropped_connections"`
}

// Stats returns the request counters.
func (s *Server) Stats() Stats {
	c := &s.counters
	return Stats{
		TokenRequests: c.tokenRequests.Load(), TokensIssued: c.tokensIssued.Load(),
		ManagedIdentityTokens: c.miTokens.Load(),
		GraphRequests:         c.graphRequests.Load(), GraphReads: c.graphReads.Load(), GraphWrites: c.graphWrites.Load(),
		Throttled: c.throttled.Load(), Vault: c.vault.Load(),
		InjectedErrors: c.injected.Load(), DroppedConnections: c.dropped.Load(),
	}
}

func (s *Server) countGraph(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.counters.graphRequests.Add(1)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) countVault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.counters.vault.Add(1)
		next.ServeHTTP(w, r)
	})
}

// advancer is a clock the control API can move forward (*clock.Offset,
// *clock.Fake).
type advancer interface{ Advance(time.Duration) }

// controlHandler is the /_sim/ API. It needs the admin token, which is
// written beside sim.json but not in it: reading sim.json lets a client use
// Azure, not break it.
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, plainJSON, s.faults.get())
	})
	mux.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var c FaultConfig
		if err := decodeControl(r, &c); err != nil {
			controlError(w, http.StatusBadRequest, "invalid fault config: "+err.Error())
			return
		}
		if err := s.SetFaults(c); err != nil {
			controlError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, plainJSON, c)
	})
	mux.HandleFunc("GET /_sim/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, plainJSON, map[string]string{"now": s.clock.Now().UTC().Format(time.RFC3339Nano)})
	})
	mux.HandleFunc("POST /_sim/clock/advance", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			By string `json:"by"`
		}
		if err := decodeControl(r, &body); err != nil {
			controlError(w, http.StatusBadRequest, "invalid body: "+err.Error())
			return
		}
		d, err := time.ParseDuration(body.By)
		if err != nil || d < 0 {
			controlError(w, http.StatusBadRequest, `"by" must be a non-negative Go duration such as "25h"`)
			return
		}
		adv, ok := s.clock.(advancer)
		if !ok {
			controlError(w, http.StatusConflict, "the simulator's clock cannot be advanced")
			return
		}
		adv.Advance(d)
		s.logger.Info("simulator clock advanced", "by", d)
		writeJSON(w, http.StatusOK, plainJSON, map[string]string{"now": s.clock.Now().UTC().Format(time.RFC3339Nano)})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, plainJSON, s.Stats())
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.adminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rotor-sim"`)
			controlError(w, http.StatusUnauthorized, "the control API needs the admin token (admin-token in the state dir)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func decodeControl(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func controlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, plainJSON, map[string]string{"error": msg})
}
