package app

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/rotor-dev/rotor/internal/sink"
)

// SinkChoices answers "what could this sink setting be?" for a picker.
type SinkChoices struct {
	Type string `json:"type"`
	// Keys are the settings the sink can list choices for, in the order a
	// person fills them in.
	Keys []string `json:"keys"`
	// Key is the setting listed; empty when only Keys was asked for.
	Key     string        `json:"key,omitempty"`
	Choices []sink.Choice `json:"choices"`
}

// DiscoverSinkRequest asks for one setting's choices.
type DiscoverSinkRequest struct {
	// Type is the sink type, e.g. "adoconnection".
	Type string
	// Key is the setting to list; empty lists which settings can be.
	Key string
	// Connection is the organization's connection the sink acts as, for
	// kinds that use one; empty for kinds with their own token.
	Connection string
	// Settings are the settings chosen so far (references such as
	// {env: NAME} for tokens; never a value).
	Settings map[string]any
}

// DiscoverSink lists the choices of one setting of a sink kind, as the
// named connection (which must be the organization's) or the sink's own
// token reference. Operator: it reaches out to the service. It reads and
// writes nothing else.
func (s *Service) DiscoverSink(ctx context.Context, scope Scope, req DiscoverSinkRequest) (*SinkChoices, error) {
	if err := s.begin(ctx, scope, ActionDiscoverSinks, "sinks:"+req.Type); err != nil {
		return nil, err
	}
	if req.Type == "" {
		return nil, &InvalidError{Field: "type", Message: "name the sink type, e.g. adoconnection"}
	}
	if req.Connection != "" {
		if s.conns == nil {
			return nil, &UnavailableError{What: "connections"}
		}
		list, err := s.conns.OrgConnections(ctx, scope.Org)
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		found := false
		for _, c := range list {
			found = found || c.Name == req.Connection
		}
		if !found {
			return nil, &NotFoundError{Kind: "connection", Ref: req.Connection}
		}
	}
	q := sink.DiscoverQuery{Org: scope.Org, Connection: req.Connection, Key: req.Key}
	q.Spec.Type, q.Spec.Settings = req.Type, maps.Clone(req.Settings)
	choices, keys, err := s.engine.DiscoverSink(ctx, req.Type, q)
	switch {
	case errors.Is(err, sink.ErrUnknownType):
		return nil, &InvalidError{Field: "type", Message: err.Error()}
	case errors.Is(err, sink.ErrNoDiscovery):
		return nil, &InvalidError{Field: "key", Message: err.Error()}
	case err != nil && sink.IsPermanent(err):
		// Refused or misconfigured (a denied token, a missing project):
		// the person's settings must change, and the text says how.
		return nil, &InvalidError{Field: "settings", Message: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("list %s choices for %s: %w", req.Type, req.Key, err)
	}
	if choices == nil {
		choices = []sink.Choice{}
	}
	if keys == nil {
		keys = []string{}
	}
	return &SinkChoices{Type: req.Type, Keys: keys, Key: req.Key, Choices: choices}, nil
}
