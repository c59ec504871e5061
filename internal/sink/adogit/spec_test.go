package adogit

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

const sampleRecipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func validSpec() domain.SinkSpec {
	return domain.SinkSpec{Type: Type, Settings: map[string]any{
		KeyOrganizationURL: "https://dev.azure.com/contoso", KeyProject: "payments", KeyRepository: "deploy",
		KeyPath: "/charts/{{ .App.DisplayName | slug }}/values.yaml", KeyKey: "azure.clientSecret",
		KeyRecipients: []any{sampleRecipient}, KeyPAT: map[string]any{"env": "ADO_PAT"},
	}}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tweak func(map[string]any)
		want  []string // substrings of the error; none: valid
	}{
		{"valid", func(map[string]any) {}, nil},
		{"entra instead of a pat", func(s map[string]any) { delete(s, KeyPAT); s[KeyConnection] = "ado" }, nil},
		{"no recipients is metadata only", func(s map[string]any) { delete(s, KeyRecipients) }, nil},
		{"unknown key names the known ones", func(s map[string]any) { s["token"] = "x" }, []string{"unknown setting(s) token", "known: adopt, branch"}},
		{"all problems at once", func(s map[string]any) {
			delete(s, KeyProject)
			s[KeyOrganizationURL] = "http://dev.azure.com/contoso"
			s[KeyKey] = "azure..secret"
		}, []string{"project: is required", "organization_url:", "must be an https URL", "key:"}},
		{"a foreign host never gets the credential", func(s map[string]any) { s[KeyOrganizationURL] = "https://evil.example/contoso" }, []string{"not an Azure DevOps Services host"}},
		{"visualstudio.com is Azure DevOps", func(s map[string]any) { s[KeyOrganizationURL] = "https://contoso.visualstudio.com/DefaultCollection" }, nil},
		{"a literal pat is refused", func(s map[string]any) { s[KeyPAT] = "abc123" }, []string{"pat: must be a reference"}},
		{"a bad recipient names its entry, not its text", func(s map[string]any) {
			s[KeyRecipients] = []any{sampleRecipient, "AGE-SECRET-KEY-1NOTARECIPIENT"}
		}, []string{"recipients: entry 2 is not an age X25519 recipient"}},
		{"pat and connection", func(s map[string]any) { s[KeyConnection] = "ado" }, []string{"two ways to authenticate"}},
		{"bad template field", func(s map[string]any) { s[KeyKey] = "{{ .App.Nope }}" }, []string{"key: template"}},
		{"path must be absolute", func(s map[string]any) { s[KeyPath] = "values.yaml" }, []string{"path:"}},
		{"adopt must be a bool", func(s map[string]any) { s[KeyAdopt] = "yes" }, []string{"adopt: must be true or false"}},
		{"metadata key equal to the key", func(s map[string]any) { s[KeyMetadataKey] = "azure.clientSecret" }, []string{"the secret's own key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := validSpec()
			spec.Settings = maps.Clone(spec.Settings)
			tc.tweak(spec.Settings)
			err := Kind{}.CheckSpec(spec)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "AGE-SECRET-KEY", "an error never repeats what may be a pasted key")
			require.NotContains(t, err.Error(), "abc123")
			var se *SpecError
			require.True(t, errors.As(err, &se))
		})
	}
}

func TestTargetRoundTripAndDefaults(t *testing.T) {
	t.Parallel()
	b := &Builder{}
	app := domain.Application{AppID: "a", DisplayName: "Payments API (prod)"}
	id, err := b.Resolve(sink.BuildRequest{Spec: validSpec(), App: app})
	require.NoError(t, err)
	require.Equal(t, "adogit:https://dev.azure.com/contoso/payments/_git/deploy?path=/charts/payments-api-prod/values.yaml&version=GBmain&key=azure.clientSecret&meta=azure.rotor", id.String())
	tg, err := ParseTarget(id)
	require.NoError(t, err)
	require.Equal(t, Target{OrgURL: "https://dev.azure.com/contoso", Project: "payments", Repository: "deploy", Branch: "main",
		Path: "/charts/payments-api-prod/values.yaml", Key: "azure.clientSecret", MetadataKey: "azure.rotor"}, tg)
	again, err := tg.ID()
	require.NoError(t, err)
	require.Equal(t, id, again)

	spec := validSpec()
	spec.Settings = maps.Clone(spec.Settings)
	spec.Settings[KeyKey] = "clientSecret"
	spec.Settings[KeyMetadataKey] = "clientSecret"
	_, err = b.Resolve(sink.BuildRequest{Spec: spec, App: app})
	require.ErrorContains(t, err, "the secret's own key")
	delete(spec.Settings, KeyMetadataKey)
	id, err = b.Resolve(sink.BuildRequest{Spec: spec, App: app})
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(id.String(), "key=clientSecret&meta=rotor"), id.String())
}

func TestSharesTarget(t *testing.T) {
	t.Parallel()
	require.False(t, Kind{}.SharesTarget(validSpec()), "the path names the application")
	spec := validSpec()
	spec.Settings = maps.Clone(spec.Settings)
	spec.Settings[KeyPath] = "/values.yaml"
	require.True(t, Kind{}.SharesTarget(spec), "one key of one file for every application")
}

func TestSpliceRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src, path, want string }{
		{"block scalar", "a:\n  s: |\n    x\n", "a.s", "block scalar"},
		{"alias", "x: &v q\na:\n  s: *v\n", "a.s", "alias"},
		{"block mapping value", "a:\n  s:\n    k: v\n", "a.s", "block mapping"},
		{"missing parent", "a: {}\n", "b.s", "parent b does not exist"},
		{"parent is a scalar", "a: 1\n", "a.s", "a is not a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseYAML([]byte(tc.src))
			require.NoError(t, err)
			l, err := d.lookup(tc.path, "f.yaml")
			if err == nil {
				if l.value == nil {
					_, err = d.insertion(l, tc.path, "f.yaml", `"x"`)
				} else {
					_, _, err = d.span(l.value, tc.path, "f.yaml")
				}
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.True(t, sink.IsPermanent(err))
		})
	}
}

func TestInsertionKeepsLineEnds(t *testing.T) {
	t.Parallel()
	d, err := parseYAML([]byte("a:\r\n  t: 1\r\nb: 2\r\n"))
	require.NoError(t, err)
	l, err := d.lookup("a.s", "f")
	require.NoError(t, err)
	e, err := d.insertion(l, "a.s", "f", `"NEW"`)
	require.NoError(t, err)
	out, err := apply(d.src, []edit{e})
	require.NoError(t, err)
	require.Equal(t, "a:\r\n  t: 1\r\n  s: \"NEW\"\r\nb: 2\r\n", string(out))
}

func TestSpliceStyles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src, want string }{
		{"plain stays plain", "a:\n  s: old # c\n", "a:\n  s: NEW # c\n"},
		{"single stays single", "a:\n  s: 'old'\n", "a:\n  s: 'NEW'\n"},
		{"double stays double", "a:\n  s: \"o\\\"ld\"  # c\n", "a:\n  s: \"NEW\"  # c\n"},
		{"anchor kept", "a:\n  s: &x \"old\"\n", "a:\n  s: &x \"NEW\"\n"},
		{"implicit null", "a:\n  s:   # c\n", "a:\n  s: \"NEW\"   # c\n"},
		{"empty plain becomes quoted", "a:\n  s: ''\n", "a:\n  s: 'NEW'\n"},
		{"unicode before", "ä: ö\na:\n  s: \"x\"\n", "ä: ö\na:\n  s: \"NEW\"\n"},
		{"crlf", "a:\r\n  s: \"x\"\r\n  t: 1\r\n", "a:\r\n  s: \"NEW\"\r\n  t: 1\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseYAML([]byte(tc.src))
			require.NoError(t, err)
			l, err := d.lookup("a.s", "f")
			require.NoError(t, err)
			start, end, err := d.span(l.value, "a.s", "f")
			require.NoError(t, err)
			text := quoteLike(l.value, "NEW")
			if start == end {
				text = " " + text
			}
			out, err := apply(d.src, []edit{{start, end, text}})
			require.NoError(t, err)
			require.Equal(t, tc.want, string(out))
		})
	}
}

// FuzzSplice: whatever YAML comes in, an edit either fails cleanly or
// leaves a file whose key reads back as the value written.
func FuzzSplice(f *testing.F) {
	f.Add("a:\n  s: old\n")
	f.Add("a:\n  s: \"x\" # c\n  t: [1, {b: 'c'}]\n")
	f.Add(goldenValues)
	f.Fuzz(func(t *testing.T, src string) {
		d, err := parseYAML([]byte(src))
		if err != nil {
			return
		}
		l, err := d.lookup("a.s", "f")
		if err != nil {
			return
		}
		var e edit
		if l.value == nil {
			if e, err = d.insertion(l, "a.s", "f", `"NEW"`); err != nil {
				return
			}
		} else {
			start, end, err := d.span(l.value, "a.s", "f")
			if err != nil {
				return
			}
			text := quoteLike(l.value, "NEW")
			if start == end {
				text = " " + text
			}
			e = edit{start, end, text}
		}
		out, err := apply(d.src, []edit{e})
		require.NoError(t, err)
		back, err := parseYAML(out)
		if err != nil {
			// The sink's read-back check refuses such an edit; the fuzzer
			// only asks that nothing panics or silently misplaces.
			return
		}
		bl, err := back.lookup("a.s", "f")
		require.NoError(t, err, "the edit kept the path: %q → %q", src, out)
		require.NotNil(t, bl.value)
		require.Equal(t, "NEW", bl.value.Value, "%q → %q", src, out)
	})
}

// TestSpecFromYAML checks the settings as the configuration decodes them
// (yaml.v3 into map[string]any): lists are []any, references maps.
func TestSpecFromYAML(t *testing.T) {
	t.Parallel()
	const src = `
organization_url: https://dev.azure.com/contoso
project: payments
repository: deploy
path: /charts/payments/values.yaml
key: azure.clientSecret
recipients:
  - ` + sampleRecipient + `
pat: {env: ADO_PAT}
adopt: false
`
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(src), &n))
	settings := map[string]any{}
	require.NoError(t, n.Content[0].Decode(&settings))
	require.NoError(t, Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: settings}))
	reg := sink.NewRegistry(Kind{})
	require.NoError(t, reg.CheckSpec(domain.SinkSpec{Type: Type, Settings: settings}))
}
