package core

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	// ConcurrencyWindow, when positive, is how long after a write to an
	// application Graph has not converged it: another write to the same
	// application within the window fails with 409
	// Directory_ConcurrencyViolation ("Please wait briefly and retry"),
	// as Entra answers concurrent writes to one object and a
	// removePassword sent right after an addPassword (AZURE-API.md §9).
	// Measured on the simulator's clock.
	ConcurrencyWindow time.Duration
}

// faultConfigJSON is FaultConfig on the wire, with the latency as a Go
// duration string ("20ms") so people can write it by hand.
type faultConfigJSON struct {
	Latency       string  `json:"latency"`
	ErrorRate     float64 `json:"error_rate"`
	DropRate      float64 `json:"drop_rate"`
	Throttle      bool    `json:"throttle"`
	ThrottleScale float64 `json:"throttle_scale"`
	// ConcurrencyWindow is a Go duration string ("1s"); empty is off.
	ConcurrencyWindow string `json:"concurrency_window,omitempty"`
}

// MarshalJSON writes the latency as a duration string.
func (c FaultConfig) MarshalJSON() ([]byte, error) {
	j := faultConfigJSON{
		Latency: c.Latency.String(), ErrorRate: c.ErrorRate, DropRate: c.DropRate,
		Throttle: c.Throttle, ThrottleScale: c.ThrottleScale,
	}
	if c.ConcurrencyWindow > 0 {
		j.ConcurrencyWindow = c.ConcurrencyWindow.String()
	}
	return json.Marshal(j)
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
	if j.ConcurrencyWindow != "" {
		d, err := time.ParseDuration(j.ConcurrencyWindow)
		if err != nil {
			return fmt.Errorf("concurrency_window: %w", err)
		}
		out.ConcurrencyWindow = d
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
	if c.ConcurrencyWindow < 0 || c.ConcurrencyWindow > time.Minute {
		return errors.New("concurrency window must be between 0 and 1m")
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
func (c *Core) Faults() FaultConfig { return c.faults.get() }

// SetFaults replaces the fault injection in force.
func (c *Core) SetFaults(cfg FaultConfig) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("sim: faults: %w", err)
	}
	c.faults.set(cfg)
	c.logger.Info("simulator faults changed", "latency", cfg.Latency, "error_rate", cfg.ErrorRate,
		"drop_rate", cfg.DropRate, "throttle", cfg.Throttle, "throttle_scale", cfg.ThrottleScale)
	return nil
}

// WithFaults applies latency, dropped connections and injected 503s to a
// service's handler. unavailable writes the 503 in the service's own error
// shape (the core knows no service's shapes); nil means the plain
// {"error":{"code","message"}} shape ARM and Key Vault use.
func (c *Core) WithFaults(unavailable func(http.ResponseWriter, *http.Request), next http.Handler) http.Handler {
	if unavailable == nil {
		unavailable = WriteUnavailable
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := c.faults.get()
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
			c.counters.Dropped.Add(1)
			dropConnection(w)
			return
		}
		if cfg.ErrorRate > 0 && rand.Float64() < cfg.ErrorRate {
			c.counters.Injected.Add(1)
			unavailable(w, r)
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

// UnavailableMessage is the message of an injected 503.
const UnavailableMessage = "The service is temporarily unavailable. Please retry."

// WriteUnavailable is an injected 503 in the plain Azure error shape.
func WriteUnavailable(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusServiceUnavailable, PlainJSON, map[string]any{"error": map[string]any{"code": "ServiceUnavailable", "message": UnavailableMessage}})
}

// Counters are the request counts behind /_sim/stats. Services add to
// the ones that are theirs.
type Counters struct {
	TokenRequests, TokensIssued, MITokens  atomic.Int64
	GraphRequests, GraphReads, GraphWrites atomic.Int64
	Throttled, Vault, Injected, Dropped    atomic.Int64
	Conflicts                              atomic.Int64
	JWKSRequests                           atomic.Int64
	SignIns                                atomic.Int64
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
	// Conflicts counts 409 Directory_ConcurrencyViolation answers
	// (FaultConfig.ConcurrencyWindow).
	Conflicts int64 `json:"conflicts"`
	// JWKSRequests counts fetches of a tenant's signing keys (JWKS): how
	// often a resource validating tokens went back for the keys.
	JWKSRequests int64 `json:"jwks_requests"`
	// SignIns counts users signed in on the authorize page (codes issued).
	SignIns int64 `json:"sign_ins"`
}

// Stats returns the request counters.
func (c *Core) Stats() Stats {
	n := &c.counters
	return Stats{
		TokenRequests: n.TokenRequests.Load(), TokensIssued: n.TokensIssued.Load(),
		ManagedIdentityTokens: n.MITokens.Load(),
		GraphRequests:         n.GraphRequests.Load(), GraphReads: n.GraphReads.Load(), GraphWrites: n.GraphWrites.Load(),
		Throttled: n.Throttled.Load(), Vault: n.Vault.Load(),
		InjectedErrors: n.Injected.Load(), DroppedConnections: n.Dropped.Load(),
		Conflicts: n.Conflicts.Load(), JWKSRequests: n.JWKSRequests.Load(),
		SignIns: n.SignIns.Load(),
	}
}

// advancer is a clock the control API can move forward (*clock.Offset,
// *clock.Fake).
type advancer interface{ Advance(time.Duration) }

// controlHandler is the /_sim/ API. It needs the admin token, which is
// written beside sim.json but not in it: reading sim.json lets a client use
// Azure, not break it.
func (c *Core) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, PlainJSON, c.faults.get())
	})
	mux.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var cfg FaultConfig
		if err := decodeControl(r, &cfg); err != nil {
			controlError(w, http.StatusBadRequest, "invalid fault config: "+err.Error())
			return
		}
		if err := c.SetFaults(cfg); err != nil {
			controlError(w, http.StatusBadRequest, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, PlainJSON, cfg)
	})
	mux.HandleFunc("GET /_sim/clock", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, PlainJSON, map[string]string{"now": c.clock.Now().UTC().Format(time.RFC3339Nano)})
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
		adv, ok := c.clock.(advancer)
		if !ok {
			controlError(w, http.StatusConflict, "the simulator's clock cannot be advanced")
			return
		}
		adv.Advance(d)
		c.logger.Info("simulator clock advanced", "by", d)
		WriteJSON(w, http.StatusOK, PlainJSON, map[string]string{"now": c.clock.Now().UTC().Format(time.RFC3339Nano)})
	})
	mux.HandleFunc("POST /_sim/keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		kid, err := c.RotateSigningKey()
		if err != nil {
			controlError(w, http.StatusInternalServerError, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, PlainJSON, map[string]string{"kid": kid})
	})
	mux.HandleFunc("GET /_sim/consumers", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, PlainJSON, map[string]any{"value": c.Consumers()})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, PlainJSON, c.Stats())
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(c.adminToken)) != 1 {
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
	WriteJSON(w, status, PlainJSON, map[string]string{"error": msg})
}
