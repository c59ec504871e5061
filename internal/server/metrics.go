package server

import (
	"context"
	"errors"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/metrics"
	"github.com/rotor-dev/rotor/internal/rotation"
)

// ConnObserver is told how one connection's Azure calls go: each HTTP
// attempt of its clients, and each token request of its identity that
// fails. internal/metrics implements it; it is handed only the
// organization and the connection's name to label with.
type ConnObserver interface {
	Requests(org domain.OrgID, connection string) azure.RequestObserver
	SignInFailed(org domain.OrgID, connection string, aadsts int)
}

var _ ConnObserver = (*metrics.Metrics)(nil)

// newMetrics builds rotor's metrics on this Server's store, health and
// clock, or nothing when metrics.enabled is false.
func (s *Server) newMetrics() *metrics.Metrics {
	if !s.cfg.Metrics.Enabled {
		return nil
	}
	return metrics.New(metrics.Options{
		Inventory: s.store,
		Health:    s.metricsHealth,
		Clock:     s.clock,
		Logger:    s.log.With("component", "metrics"),
	})
}

// connObserver is what connections report to; nil (an untyped nil, so
// build can test it) when metrics are off.
func (s *Server) connObserver() ConnObserver {
	if s.metrics == nil {
		return nil
	}
	return s.metrics
}

// runObserver is what the engine reports run outcomes to; nil when
// metrics are off.
func (s *Server) runObserver() rotation.Observer {
	if s.metrics == nil {
		return nil
	}
	return s.metrics
}

// metricsHealth is every connection's health for the connection gauges.
func (s *Server) metricsHealth() []metrics.ConnectionHealth {
	snap := s.health.snapshot()
	out := make([]metrics.ConnectionHealth, len(snap))
	for i, c := range snap {
		out[i] = metrics.ConnectionHealth{Org: c.Org, Connection: c.Name, Failing: c.Failing, LastSuccess: c.LastSuccess}
	}
	return out
}

// signInCounter is a connection's credential that reports every token
// request that fails: the start-up probe's, `rotor connections test`'s,
// and those the Graph and Key Vault clients make for their calls.
// Tokens are cached by the credential beneath, so a working connection
// asks rarely; a broken one fails at every call that needs one, and the
// counter rises with each.
type signInCounter struct {
	inner azcore.TokenCredential
	obs   ConnObserver
	org   domain.OrgID
	name  string
}

var _ azcore.TokenCredential = signInCounter{}

func (c signInCounter) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.inner.GetToken(ctx, opts)
	// A request its caller gave up on (shutdown) says nothing about the
	// identity.
	if err != nil && !errors.Is(err, context.Canceled) {
		code := 0
		if te, ok := errors.AsType[*azure.TokenError](err); ok {
			code = te.Code
		} else {
			code = azure.ParseTokenError(err).Code
		}
		c.obs.SignInFailed(c.org, c.name, code)
	}
	return tok, err
}
