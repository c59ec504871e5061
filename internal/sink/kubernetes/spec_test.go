package kubernetes

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

func validSpec() map[string]any {
	return map[string]any{KeyKubeconfig: "/etc/rotor/kubeconfig", KeyContext: "prod", KeyNamespace: "payments",
		KeySecret: "{{ .App.DisplayName | slug }}-azure", KeyRestart: []any{map[string]any{"kind": "Deployment", "name": "api"}}}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		tweak func(m map[string]any)
		want  []string // keys named by the errors, "" for the spec as a whole
	}{
		{"valid", func(map[string]any) {}, nil},
		{"in-cluster", func(m map[string]any) { delete(m, KeyKubeconfig); delete(m, KeyContext) }, nil},
		{"unknown key", func(m map[string]any) { m["vault_url"] = "x" }, []string{""}},
		{"context without kubeconfig", func(m map[string]any) { delete(m, KeyKubeconfig) }, []string{KeyContext}},
		{"namespace missing", func(m map[string]any) { delete(m, KeyNamespace) }, []string{KeyNamespace}},
		{"bad namespace", func(m map[string]any) { m[KeyNamespace] = "Payments" }, []string{KeyNamespace}},
		{"secret renders an invalid name", func(m map[string]any) { m[KeySecret] = "{{ .App.DisplayName }}_x" }, []string{KeySecret}},
		{"secret template unknown field", func(m map[string]any) { m[KeySecret] = "{{ .App.Nope }}" }, []string{KeySecret}},
		{"bad key", func(m map[string]any) { m[KeyKey] = "a b" }, []string{KeyKey}},
		{"key clash", func(m map[string]any) { m[KeyClientIDKey] = DefaultKey }, []string{KeyClientIDKey}},
		{"bad restart kind", func(m map[string]any) { m[KeyRestart] = []any{map[string]any{"kind": "Pod", "name": "x"}} }, []string{KeyRestart}},
		{"restart not a list", func(m map[string]any) { m[KeyRestart] = "Deployment/api" }, []string{KeyRestart}},
		{"bad timeout", func(m map[string]any) { m[KeyRolloutTimeout] = "soon" }, []string{KeyRolloutTimeout}},
		{"adopt not bool", func(m map[string]any) { m[KeyAdopt] = "yes" }, []string{KeyAdopt}},
		{"all problems at once", func(m map[string]any) { m[KeyNamespace] = "A"; m[KeyAdopt] = 1; m["x"] = 1 }, []string{"", KeyNamespace, KeyAdopt}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := maps.Clone(validSpec())
			tc.tweak(m)
			err := Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: m})
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var keys []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var se *SpecError
				require.True(t, errors.As(e, &se), "%T", e)
				keys = append(keys, se.Key)
			}
			require.ElementsMatch(t, tc.want, keys, "%v", err)
		})
	}
}

func TestTargetRoundTripsAndDefaults(t *testing.T) {
	t.Parallel()
	st, err := parseSpec(domain.SinkSpec{Type: Type, Settings: validSpec()})
	require.NoError(t, err)
	require.Equal(t, DefaultKey, st.key)
	require.Equal(t, DefaultRolloutTimeout, st.rolloutTimeout)
	b := &Builder{}
	tid, err := b.Resolve(sink.BuildRequest{Spec: domain.SinkSpec{Type: Type, Settings: validSpec()}, App: domain.Application{DisplayName: "Payroll API (prod)"}})
	require.NoError(t, err)
	require.Equal(t, "kubernetes:namespaces/payments/secrets/payroll-api-prod-azure@kubeconfig=/etc/rotor/kubeconfig,context=prod", tid.String())
	cluster, ns, name, err := ParseTarget(tid)
	require.NoError(t, err)
	require.Equal(t, []string{"payments", "payroll-api-prod-azure"}, []string{ns, name})
	kc, ctx, err := parseCluster(cluster)
	require.NoError(t, err)
	require.Equal(t, []string{"/etc/rotor/kubeconfig", "prod"}, []string{kc, ctx})

	m := validSpec()
	delete(m, KeyKubeconfig)
	delete(m, KeyContext)
	m[KeyRolloutTimeout] = "90s"
	st, err = parseSpec(domain.SinkSpec{Type: Type, Settings: m})
	require.NoError(t, err)
	require.Equal(t, inCluster, st.cluster())
	require.Equal(t, 90*time.Second, st.rolloutTimeout)
}

// FuzzParseTarget: a stored target id is outside input; parsing never
// panics, and what parses builds the same id back.
func FuzzParseTarget(f *testing.F) {
	f.Add("kubernetes:namespaces/payments/secrets/x@in-cluster")
	f.Add("kubernetes:namespaces/p/secrets/x@kubeconfig=/a/b,context=-")
	f.Add("kubernetes:namespaces//secrets/@")
	f.Fuzz(func(t *testing.T, s string) {
		tid, err := sink.ParseTargetID(s)
		if err != nil || tid.IsZero() {
			return
		}
		cluster, ns, name, err := ParseTarget(tid)
		if err != nil {
			return
		}
		again, err := TargetFor(cluster, ns, name)
		require.NoError(t, err)
		require.Equal(t, tid, again)
		_, _, _ = parseCluster(cluster)
	})
}
