package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/rotation"
)

// TestEveryMetricIsDocumented keeps docs/metrics.md and the example
// alerting rules honest: every rotor_ metric /metrics can serve has a row
// in the page, and every rotor_ metric a rule names exists.
func TestEveryMetricIsDocumented(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sync(t, "main", app("a", true, day))
	m := New(Options{Inventory: b.store, Clock: b.clock, Health: func() []ConnectionHealth {
		return []ConnectionHealth{{Org: b.org, Connection: "main", LastSuccess: t0}}
	}})
	// One of everything, so every family has a sample to gather.
	m.AddConnection(b.org, "main")
	m.Observe(b.org, "main", rotation.RunOutcomeDone)
	m.Rotated(b.org, "main", time.Second)
	m.SignInFailed(b.org, "main", 0)
	m.Requests(b.org, "main").ObserveAttempt(azure.Attempt{Service: azure.ServiceGraph, Status: 200})
	fams, err := m.Gatherer().Gather()
	require.NoError(t, err)
	served := map[string]bool{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "rotor_") {
			served[f.GetName()] = true
		}
	}
	require.Len(t, served, 15, "every rotor_ family was gathered")

	doc, err := os.ReadFile("../../docs/metrics.md")
	require.NoError(t, err)
	for name := range served {
		require.Contains(t, string(doc), "| `"+name+"` |", "docs/metrics.md has no row for %s", name)
	}
	rules, err := os.ReadFile("../../docs/alerts/rotor-rules.yaml")
	require.NoError(t, err)
	for _, name := range regexp.MustCompile(`rotor_[a-z_]+`).FindAllString(string(rules), -1) {
		require.True(t, served[name], "docs/alerts/rotor-rules.yaml names %s, which rotor does not serve", name)
	}
}
