package logicapp

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

func validSettings() map[string]any {
	return map[string]any{
		KeySubscriptionID: "6f1c0000-0000-4000-8000-000000000001", KeyResourceGroup: "rg-logic",
		KeyConnections: []any{"kv-payroll", "blob-archive"}, KeyAdopt: false, KeyConnection: "logic",
	}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(map[string]any)
		want  []string
	}{
		{"valid list", func(map[string]any) {}, nil},
		{"valid template", func(s map[string]any) {
			delete(s, KeyConnections)
			s[KeyConnectionName] = "{{ .App.DisplayName | slug }}-kv"
		}, nil},
		{"both forms", func(s map[string]any) { s[KeyConnectionName] = "x" }, []string{"connections: set connections (a list of names) or connection_name"}},
		{"neither", func(s map[string]any) { delete(s, KeyConnections) }, []string{"connections: is required"}},
		{"every problem at once", func(s map[string]any) {
			s["secret"] = "x"
			s[KeyResourceGroup] = 7
			s[KeyConnections] = []any{"ok", "a,b", "ok"}
			s[KeyAdopt] = "yes"
		}, []string{"unknown setting(s) secret (known: adopt, connection, connection_name, connections", "resource_group: must be a string",
			`"a,b" is not an API connection name`, `"ok" is listed twice`, "adopt: must be true or false"}},
		{"empty list", func(s map[string]any) { s[KeyConnections] = []any{} }, []string{"must be a non-empty list"}},
		{"bad template", func(s map[string]any) {
			delete(s, KeyConnections)
			s[KeyConnectionName] = "{{ .Nope }}"
		}, []string{"connection_name: template"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := maps.Clone(validSettings())
			tc.tweak(s)
			err := Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: s})
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestTargetRoundTrips(t *testing.T) {
	t.Parallel()
	tid, err := TargetFor("6F1C0000-0000-4000-8000-000000000001", "RG-Logic", []string{"kv-Payroll", "blob-archive"})
	require.NoError(t, err)
	require.Equal(t, "logicapp:/subscriptions/6f1c0000-0000-4000-8000-000000000001/resourcegroups/rg-logic/providers/microsoft.web/connections/blob-archive,kv-payroll", tid.String())
	sub, rg, names, err := ParseTarget(tid)
	require.NoError(t, err)
	require.Equal(t, "rg-logic", rg)
	require.Equal(t, "6f1c0000-0000-4000-8000-000000000001", sub)
	require.Equal(t, []string{"blob-archive", "kv-payroll"}, names)
}

// FuzzCheckSpec: any connection_name template is refused or accepted
// without panicking, and an accepted one resolves.
func FuzzCheckSpec(f *testing.F) {
	f.Add("{{ .App.DisplayName | slug }}-kv", "Payroll API")
	f.Add("{{ printf \"%s\" .ClientID }}", "x")
	f.Fuzz(func(t *testing.T, name, display string) {
		spec := domain.SinkSpec{Type: Type, Settings: map[string]any{
			KeySubscriptionID: "6f1c0000-0000-4000-8000-000000000001", KeyResourceGroup: "rg", KeyConnectionName: name}}
		if (Kind{}).CheckSpec(spec) != nil {
			return
		}
		_, _ = (&Builder{}).Resolve(sink.BuildRequest{Spec: spec, App: domain.Application{DisplayName: display}})
	})
}
