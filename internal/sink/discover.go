package sink

import (
	"context"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Discoverer is the optional ability of a Builder to list what one setting
// of its spec could be, for pickers (the UI, `rotor sinks discover`): the
// service connections of an Azure DevOps project, the Vercel projects of a
// team, the Deployments of a namespace. It reads, never writes, and never
// reads a secret value.
type Discoverer interface {
	// Keys are the settings Discover can list choices for, in the order a
	// person fills them in (e.g. project before endpoint).
	DiscoverKeys() []string
	// Discover lists the choices for q.Key given the settings already
	// chosen in q.Spec. An error names what is missing or refused.
	Discover(ctx context.Context, q DiscoverQuery) ([]Choice, error)
}

// DiscoverQuery asks for the choices of one setting.
type DiscoverQuery struct {
	Org domain.OrgID
	// Connection is the policy's connection, for kinds that act as one.
	Connection string
	// Spec holds the settings chosen so far; it need not be complete.
	Spec domain.SinkSpec
	// Key is the setting to list, one of DiscoverKeys.
	Key string
}

// Choice is one value a setting may take.
type Choice struct {
	// Value is what the setting is set to.
	Value string `json:"value"`
	// Label names it for people.
	Label string `json:"label"`
	// Detail says more (a type, a scope), when there is more.
	Detail string `json:"detail,omitempty"`
}
