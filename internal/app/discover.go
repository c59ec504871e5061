package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/internal/domain"
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
	if scope.Actor.Kind != ActorSystem {
		if err := s.configuredSettings(ctx, scope, req); err != nil {
			return nil, err
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

// configuredSettings refuses, for a caller over the API or the UI, a
// discovery whose settings that say where to connect or with which
// credential (reachesOut) are not, all together, those of one sink of the
// same kind in the organization's policies (rotor.yaml, which only the
// host's operator writes). Together, and with absent counting as a value:
// a token configured for one server must not be sent to another, nor to
// the kind's default server by leaving the URL out.
//
// Why: discovery acts on rotor's host. An API URL, an organization URL, a
// vault URL, a kubeconfig path (whose exec plugin runs a command) and its
// context, or a {file: …} / {env: …} reference to a token, taken from a
// caller, would let an operator send any file or variable on rotor's host
// — or the connection's Azure token — to any server, or run a command
// there. The other settings (a project, a namespace, a subscription, a
// team) only choose among what the configured service lists for the
// organization's own connection. A kind that without any such setting
// acts with the host's own ambient identity (Kubernetes in-cluster: the
// pod's service account) needs a configured sink that does the same.
// rotor's own CLI on the host (a system actor) may name anything: whoever
// runs it can read those files already.
func (s *Service) configuredSettings(ctx context.Context, scope Scope, req DiscoverSinkRequest) error {
	if req.Key == "" {
		return nil // only which settings can be listed: nothing is contacted
	}
	_, listable, err := s.engine.DiscoverSink(ctx, req.Type, sink.DiscoverQuery{Org: scope.Org, Spec: domain.SinkSpec{Type: req.Type}})
	if err != nil && !errors.Is(err, sink.ErrNoDiscovery) {
		if errors.Is(err, sink.ErrUnknownType) {
			return &InvalidError{Field: "type", Message: err.Error()}
		}
		return fmt.Errorf("list %s settings: %w", req.Type, err)
	}
	want := reachingSettings(req.Settings, listable)
	if len(want) == 0 && !slices.Contains(ambientKinds, req.Type) {
		return nil // no server, no credential: the kind's public default, anonymously
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return fmt.Errorf("load policies: %w", err)
	}
	for _, p := range pols.List() {
		for _, sp := range p.Sinks {
			if sp.Type == req.Type && reflect.DeepEqual(normalize(reachingSettings(sp.Settings, listable)), normalize(want)) {
				return nil
			}
		}
	}
	keys := slices.Sorted(maps.Keys(want))
	what := "no server or credential (the host's own identity)"
	if len(keys) > 0 {
		what = strings.Join(keys, ", ")
	}
	return &InvalidError{Field: "settings", Message: fmt.Sprintf(
		"%s says where to connect or with which credential, and no %s sink in this organization's policies has exactly these: "+
			"over the API and the UI, discovery connects only where and as rotor.yaml's sinks do "+
			"(run `rotor sinks discover` on rotor's host to explore a new one)", what, req.Type)}
}

// hostKeys are the sink settings, across kinds, that name a server, a
// file on rotor's host or which identity in it to use (docs/sinks/*.md).
var hostKeys = []string{"vault_url", "organization_url", "api_url", "url", "kubeconfig", "context"}

// ambientKinds are the kinds that, given no host setting, act with the
// host's own identity (Kubernetes in-cluster).
var ambientKinds = []string{"kubernetes"}

// reachingSettings are the settings of a spec that say where to connect or
// with what (reachesOut), leaving out the ones the kind lists choices for.
func reachingSettings(settings map[string]any, listable []string) map[string]any {
	out := map[string]any{}
	for k, v := range settings {
		if !slices.Contains(listable, k) && reachesOut(k, v) {
			out[k] = v
		}
	}
	return out
}

// reachesOut reports whether a setting names where a sink connects or
// with what: a host key, or any secret reference (a map: {env}, {file},
// {keyvault}).
func reachesOut(key string, v any) bool {
	if slices.Contains(hostKeys, key) {
		return true
	}
	switch v.(type) {
	case map[string]any, map[any]any:
		return true
	}
	return false
}

// normalize makes a setting comparable whatever decoded it: YAML and JSON
// give maps of different types and numbers of different kinds.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = normalize(x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = normalize(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalize(x)
		}
		return out
	case int, int64, float64, uint64, bool, string:
		return fmt.Sprint(t)
	}
	return fmt.Sprint(v)
}
