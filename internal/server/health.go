package server

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// ConnHealth is what rotor knows of one connection's health: when it last
// signed in and synced, and the last failure, with Entra's AADSTS code
// when Entra refused it.
type ConnHealth struct {
	Org         domain.OrgID `json:"org"`
	Name        string       `json:"connection"`
	Failing     bool         `json:"failing"`
	LastSuccess time.Time    `json:"last_success,omitzero"`
	LastFailure time.Time    `json:"last_failure,omitzero"`
	// Failure is the last failure in rotor's words (never a secret).
	Failure string `json:"failure,omitempty"`
	// AADSTS is Entra's error code of the last failure, 0 when it was not
	// Entra's refusal (network, Graph).
	AADSTS int `json:"aadsts,omitempty"`
	// Roles are the application roles the connection's last token carried.
	Roles []string `json:"roles,omitempty"`
}

// health tracks every connection's health for /readyz and the logs. A
// connection that starts failing is logged once at ERROR (with its
// organization, name and AADSTS code) and once at INFO when it recovers;
// not at every retry, so a team can alert on the line.
type health struct {
	mu    sync.Mutex
	log   *slog.Logger
	clock clock.Clock
	conns map[connKey]*ConnHealth
	// sinks are the sink targets whose last check before a rotation
	// failed, until one passes.
	sinks map[sinkKey]*SinkHealth
	// record, when set, persists each outcome (store.RecordConnectionHealth)
	// so other processes — `rotor connections list`, the UI — see what
	// this one learned. It is called outside mu.
	record func(store.ConnectionHealth)
}

func newHealth(log *slog.Logger, c clock.Clock, record func(store.ConnectionHealth)) *health {
	return &health{log: log, clock: c, conns: map[connKey]*ConnHealth{}, sinks: map[sinkKey]*SinkHealth{}, record: record}
}

// SinkHealth is a sink target whose last check (Validate, before a
// rotation writes) failed: the rotation failed with nothing created, and
// every rotation to that target will until a human fixes it.
type SinkHealth struct {
	Org    domain.OrgID `json:"org"`
	Policy string       `json:"policy"`
	Index  int          `json:"sink"`
	Target string       `json:"target"`
	Reason string       `json:"error"`
	Since  time.Time    `json:"since"`
	// checked is when a run last found it failing.
	checked time.Time
}

// sinkKey is one application's sink of a policy: a fix that points the
// policy at another target clears it at the application's next check.
type sinkKey struct {
	org    domain.OrgID
	policy string
	index  int
	app    string
}

// sinkStale is how long a failing sink target stays a failing part of
// /readyz without a run confirming it: the planner retries a permanent
// failure at least daily, so an entry older than that belongs to an
// application or policy that is gone.
const sinkStale = 25 * time.Hour

// SinkChecked records a sink's verdict (rotation.SinkChecker): a failure
// makes the target a failing part of /readyz, a pass clears it.
func (h *health) SinkChecked(org domain.OrgID, policy string, index int, appObjectID, target string, ok bool, reason string) {
	k := sinkKey{org, policy, index, appObjectID}
	now := h.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		delete(h.sinks, k)
		return
	}
	if e, was := h.sinks[k]; was && e.Target == target {
		e.Reason, e.checked = reason, now
		return
	}
	h.sinks[k] = &SinkHealth{Org: org, Policy: policy, Index: index, Target: target, Reason: reason, Since: now, checked: now}
}

// failingSinks returns the failing sink targets, oldest first.
func (h *health) failingSinks() []SinkHealth {
	now := h.clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]SinkHealth, 0, len(h.sinks))
	for k, e := range h.sinks {
		if now.Sub(e.checked) > sinkStale {
			delete(h.sinks, k)
			continue
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Target < out[j].Target
	})
	return out
}

func (h *health) entry(k connKey) *ConnHealth {
	e, ok := h.conns[k]
	if !ok {
		e = &ConnHealth{Org: k.org, Name: k.name}
		h.conns[k] = e
	}
	return e
}

// ok records a success; roles, when not nil, are the token's.
func (h *health) ok(k connKey, roles []string) {
	h.mu.Lock()
	e := h.entry(k)
	if e.Failing {
		h.log.Info("connection works again", "org", k.org, "connection", k.name)
	}
	now := h.clock.Now()
	e.Failing, e.LastSuccess = false, now
	if roles != nil {
		e.Roles = roles
	}
	h.mu.Unlock()
	if h.record != nil {
		h.record(store.ConnectionHealth{Org: k.org, Connection: k.name, Success: true, At: now, Roles: roles})
	}
}

// failed records a failure, logging it if the connection was not failing.
func (h *health) failed(k connKey, err error) {
	code := 0
	var te *azure.TokenError
	if errors.As(err, &te) {
		code = te.Code
	} else {
		// A Graph or Key Vault call whose token request Entra refused.
		code = azure.ParseTokenError(err).Code
	}
	now, msg := h.clock.Now(), err.Error()
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		if h.record != nil {
			h.record(store.ConnectionHealth{Org: k.org, Connection: k.name, Failure: true, At: now, Message: msg, AADSTS: code})
		}
	}()
	e := h.entry(k)
	was := e.Failing
	e.Failing, e.LastFailure, e.Failure, e.AADSTS = true, now, msg, code
	if !was {
		args := []any{"org", k.org, "connection", k.name, "error", err.Error()}
		if code != 0 {
			args = append(args, "aadsts", code)
		}
		h.log.Error("connection failing: rotor cannot sign in or read through it, so its applications are neither synced nor rotated; fix its identity (see the AADSTS code) or its permissions", args...)
	}
}

// recordHealth persists one connection outcome, best effort: the
// in-memory view (readyz, logs) does not depend on it, and a database
// that cannot take the row already makes /readyz say so.
func (s *Server) recordHealth(h store.ConnectionHealth) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.RecordConnectionHealth(ctx, h); err != nil {
		s.log.Debug("recording a connection's health failed", "org", h.Org, "connection", h.Connection, "error", err)
	}
}

// isFailing reports whether the connection's last outcome was a failure.
func (h *health) isFailing(k connKey) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.conns[k]
	return ok && e.Failing
}

// forget drops a connection that is no longer configured.
func (h *health) forget(k connKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, k)
}

// snapshot returns every connection's health, by org and name.
func (h *health) snapshot() []ConnHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]ConnHealth, 0, len(h.conns))
	for _, e := range h.conns {
		c := *e
		c.Roles = append([]string(nil), e.Roles...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Org != out[j].Org {
			return out[i].Org < out[j].Org
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// probe signs every connection in: rotor learns within seconds of
// starting whether an identity works, rather than at the first sync.
func (s *Server) probe(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range s.conns.all() {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, _ = s.probeConn(pctx, c)
		})
	}
	wg.Wait()
}

// probeConn signs one connection in and records the outcome.
func (s *Server) probeConn(ctx context.Context, c *conn) (azure.SignIn, error) {
	k := connKey{c.org, c.cfg.Name}
	in, err := azure.ProbeSignIn(ctx, c.cred, c.ep.GraphScope, c.cfg.TenantID, c.cfg.Identity.ClientID)
	if err != nil {
		s.health.failed(k, err)
		return in, err
	}
	s.health.ok(k, in.Roles)
	return in, nil
}

// ConnectionHealth returns every connection's health as this process knows
// it (each process probes and syncs for itself).
func (s *Server) ConnectionHealth() []ConnHealth { return s.health.snapshot() }

// TestConnection signs one connection in now and reports who it is and
// what its token carries.
func (s *Server) TestConnection(ctx context.Context, org domain.OrgID, name string) (azure.SignIn, error) {
	c, err := s.conns.get(org, name)
	if err != nil {
		return azure.SignIn{}, err
	}
	return s.probeConn(ctx, c)
}
