package automation

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

func validSettings() map[string]any {
	return map[string]any{
		KeySubscriptionID: "6f1c0000-0000-4000-8000-000000000001", KeyResourceGroup: "rg-ops", KeyAccount: "aa-ops",
		KeyRunbook: "Update-{{ .App.DisplayName | slug }}", KeyRunOn: "hw-onprem",
		KeyParameters: map[string]any{"TargetName": "payroll"}, KeyPassSecret: true, KeyTimeout: "15m",
	}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(map[string]any)
		want  []string // substrings of the error; none: valid
	}{
		{"valid", func(map[string]any) {}, nil},
		{"minimal", func(s map[string]any) {
			delete(s, KeyRunOn)
			delete(s, KeyParameters)
			delete(s, KeyPassSecret)
			delete(s, KeyTimeout)
		}, nil},
		{"unknown key and adopt", func(s map[string]any) { s["adopt"] = true; s["vault"] = "x" },
			[]string{"unknown setting(s) adopt, vault (known: account, connection", "adopt means nothing here"}},
		{"every problem at once", func(s map[string]any) {
			s[KeySubscriptionID] = "not-a-guid"
			delete(s, KeyAccount)
			s[KeyTimeout] = "forever"
		}, []string{"subscription_id: \"not-a-guid\" is not a subscription id", "account: is required", "timeout: \"forever\" is not a duration"}},
		{"ClientSecret in parameters", func(s map[string]any) { s[KeyParameters] = map[string]any{"clientsecret": "x"} },
			[]string{"parameters: clientsecret is the secret's parameter"}},
		{"parameter not a string", func(s map[string]any) { s[KeyParameters] = map[string]any{"Days": 3} },
			[]string{"parameters: Days must be a string"}},
		{"bad template", func(s map[string]any) { s[KeyRunbook] = "{{ .App.Nope }}" }, []string{"runbook: template"}},
		{"runbook name invalid", func(s map[string]any) { s[KeyRunbook] = "1-bad name" }, []string{"is not a runbook name"}},
		{"timeout too long", func(s map[string]any) { s[KeyTimeout] = "4h" }, []string{"timeout: 4h must be between 1s and 3h0m0s"}},
		{"pass_secret not bool", func(s map[string]any) { s[KeyPassSecret] = "yes" }, []string{"pass_secret: must be true or false"}},
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

func TestTargetRoundTripsAndJobNamesCarryTheKey(t *testing.T) {
	t.Parallel()
	tid, err := TargetFor("6F1C0000-0000-4000-8000-000000000001", "RG-Ops", "aa-ops", "Update-AppSecret")
	require.NoError(t, err)
	sub, rg, acc, rb, err := ParseTarget(tid)
	require.NoError(t, err)
	require.Equal(t, []string{"6f1c0000-0000-4000-8000-000000000001", "rg-ops", "aa-ops", "update-appsecret"}, []string{sub, rg, acc, rb})

	for _, key := range []string{"0b9d6a1e-2f4c-4d7e-9a8b-1c2d3e4f5a6b", "a", "a-b", "sinktest-key-10"} {
		name := JobName(deliveryFor(key, "run-1"))
		require.Equal(t, key, keyOf(name), name)
		require.Equal(t, name, JobName(deliveryFor(key, "run-1")), "deterministic")
		require.NotEqual(t, name, JobName(deliveryFor(key, "run-2")), "another run, another job")
	}
	require.Equal(t, "", keyOf("not-rotors-job"))
}

func deliveryFor(key, run string) sink.Delivery { return sink.Delivery{KeyID: key, RunID: run} }

// FuzzCheckSpec: any runbook template, worker group or timeout is refused
// or accepted without panicking, and an accepted one resolves to a target.
func FuzzCheckSpec(f *testing.F) {
	f.Add("Update-{{ .App.DisplayName | slug }}", "hw-onprem", "10m")
	f.Add("{{ range 10 }}x{{ end }}", "", "1s")
	f.Fuzz(func(t *testing.T, runbook, runOn, timeout string) {
		s := validSettings()
		s[KeyRunbook], s[KeyRunOn], s[KeyTimeout] = runbook, runOn, timeout
		spec := domain.SinkSpec{Type: Type, Settings: s}
		if (Kind{}).CheckSpec(spec) != nil {
			return
		}
		b := &Builder{}
		_, _ = b.Resolve(sink.BuildRequest{Spec: spec, App: domain.Application{DisplayName: runbook}})
	})
}

func TestTemplatesMayNotLoop(t *testing.T) {
	t.Parallel()
	s := validSettings()
	s[KeyRunbook] = "{{ range 1000000000 }}{{ end }}x"
	err := Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: s})
	require.ErrorContains(t, err, "must not use range")
}
