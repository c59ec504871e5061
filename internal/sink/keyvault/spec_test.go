package keyvault

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

func validSpec() domain.SinkSpec {
	return domain.SinkSpec{Type: Type, Settings: map[string]any{
		KeyVaultURL: "https://payroll-kv.vault.azure.net/",
		KeySecret:   "{{ .App.DisplayName | slug }}-secret",
	}}
}

func tweak(f func(s map[string]any)) func(domain.SinkSpec) domain.SinkSpec {
	return func(spec domain.SinkSpec) domain.SinkSpec {
		s := maps.Clone(spec.Settings)
		f(s)
		spec.Settings = s
		return spec
	}
}

func set(k string, v any) func(domain.SinkSpec) domain.SinkSpec {
	return tweak(func(s map[string]any) { s[k] = v })
}

func del(k string) func(domain.SinkSpec) domain.SinkSpec {
	return tweak(func(s map[string]any) { delete(s, k) })
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tweak   func(domain.SinkSpec) domain.SinkSpec
		wantKey string   // SpecError.Key of the first problem; "" with wantErr for spec-level
		wantErr []string // substrings of the error; nil means valid
	}{
		{name: "valid base"},
		{name: "all settings", tweak: tweak(func(s map[string]any) {
			s[KeyAdopt] = true
			s[KeyContentType] = "application/x-client-secret"
			s[KeyConnection] = "kv-writer"
		})},
		{name: "vault url without trailing slash", tweak: set(KeyVaultURL, "https://payroll-kv.vault.azure.net")},
		{name: "vault url with port", tweak: set(KeyVaultURL, "https://127.0.0.1:8444/")},
		{name: "literal name", tweak: set(KeySecret, "payroll-client-secret")},
		{name: "lower function", tweak: set(KeySecret, "{{ lower .ClientID }}")},
		{name: "yaml block scalar newline is trimmed", tweak: set(KeySecret, "{{ .App.AppID }}\n")},

		{name: "unknown keys named", tweak: tweak(func(s map[string]any) { s["vaulturl"] = "x"; s["tags"] = 1 }),
			wantErr: []string{"unknown setting(s) tags, vaulturl", "known: adopt, as, certificate, certificate_format, connection, content_type, secret, vault_url"}},
		{name: "missing vault url", tweak: del(KeyVaultURL), wantKey: KeyVaultURL, wantErr: []string{"vault_url: is required"}},
		{name: "missing secret", tweak: del(KeySecret), wantKey: KeySecret, wantErr: []string{"secret: is required"}},
		{name: "empty secret", tweak: set(KeySecret, "  "), wantKey: KeySecret, wantErr: []string{"must not be empty"}},
		{name: "vault url http", tweak: set(KeyVaultURL, "http://payroll-kv.vault.azure.net/"), wantKey: KeyVaultURL, wantErr: []string{"must be an https URL"}},
		{name: "vault url with path", tweak: set(KeyVaultURL, "https://payroll-kv.vault.azure.net/secrets/x"), wantKey: KeyVaultURL, wantErr: []string{"without a path"}},
		{name: "vault url no host", tweak: set(KeyVaultURL, "https:///"), wantKey: KeyVaultURL, wantErr: []string{"has no host"}},
		{name: "vault url with query", tweak: set(KeyVaultURL, "https://kv.vault.azure.net/?a=b"), wantKey: KeyVaultURL, wantErr: []string{"query"}},
		{name: "vault url not a string", tweak: set(KeyVaultURL, 42), wantKey: KeyVaultURL, wantErr: []string{"must be a string, got int"}},
		{name: "template syntax", tweak: set(KeySecret, "{{ .App.DisplayName "), wantKey: KeySecret, wantErr: []string{"does not parse"}},
		{name: "template unknown function", tweak: set(KeySecret, "{{ .App.DisplayName | kebab }}"), wantKey: KeySecret, wantErr: []string{"does not parse", "kebab"}},
		{name: "template unknown field", tweak: set(KeySecret, "{{ .App.Name }}"), wantKey: KeySecret, wantErr: []string{"fails", "Name", "functions: slug, lower"}},
		{name: "template literal underscore", tweak: set(KeySecret, "{{ .App.AppID }}_secret"), wantKey: KeySecret,
			wantErr: []string{"not a valid Key Vault secret name", `'_'`, "slug"}},
		{name: "template with range", tweak: set(KeySecret, "{{ range 100000000000 }}{{ end }}x"), wantKey: KeySecret, wantErr: []string{"must not use range"}},
		{name: "template with range inside if", tweak: set(KeySecret, "{{ if .App.AppID }}{{ range 3 }}a{{ end }}{{ end }}"), wantKey: KeySecret, wantErr: []string{"must not use range"}},
		{name: "template defining templates", tweak: set(KeySecret, `{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`), wantKey: KeySecret, wantErr: []string{"must not define templates"}},
		{name: "template with if is fine", tweak: set(KeySecret, `{{ if .App.DisplayName }}{{ .App.DisplayName | slug }}{{ else }}app{{ end }}-secret`)},
		{name: "template rendering a huge name", tweak: set(KeySecret, `{{ printf "%05000d" 1 }}`), wantKey: KeySecret, wantErr: []string{"renders more than 1024 characters"}},
		{name: "template renders empty", tweak: set(KeySecret, `{{ "" }}`), wantKey: KeySecret, wantErr: []string{"it is empty"}},
		{name: "adopt not a bool", tweak: set(KeyAdopt, "yes"), wantKey: KeyAdopt, wantErr: []string{"must be true or false, got string"}},
		{name: "content type too long", tweak: set(KeyContentType, string(make([]byte, 256))), wantKey: KeyContentType, wantErr: []string{"256 characters"}},
		{name: "connection not a string", tweak: set(KeyConnection, true), wantKey: KeyConnection, wantErr: []string{"must be a string"}},
		{name: "pkcs12 format", tweak: set(KeyCertificateFormat, FormatPKCS12)},
		{name: "pem format", tweak: set(KeyCertificateFormat, FormatPEM)},
		{name: "as secret spelled out", tweak: set(KeyAs, AsSecret)},
		{name: "as certificate", tweak: tweak(func(s map[string]any) {
			delete(s, KeySecret)
			s[KeyAs], s[KeyCertificate], s[KeyCertificateFormat] = AsCertificate, "{{ .App.DisplayName | slug }}-tls", FormatPKCS12
		})},
		{name: "unknown format", tweak: set(KeyCertificateFormat, "der"), wantKey: KeyCertificateFormat, wantErr: []string{`is "der"`, "pkcs12"}},
		{name: "unknown as", tweak: set(KeyAs, "key"), wantKey: KeyAs, wantErr: []string{`is "key"`}},
		{name: "as certificate needs a certificate name", tweak: set(KeyAs, AsCertificate), wantErr: []string{"certificate: is required", "secret: does not apply"}},
		{name: "certificate name on a secret sink", tweak: set(KeyCertificate, "x"), wantKey: KeyCertificate, wantErr: []string{"does not apply to an as: secret sink"}},
		{name: "content type on a certificate sink", tweak: tweak(func(s map[string]any) {
			delete(s, KeySecret)
			s[KeyAs], s[KeyCertificate], s[KeyContentType] = AsCertificate, "x", "text/plain"
		}), wantKey: KeyContentType, wantErr: []string{"does not apply"}},
		{name: "bad certificate name", tweak: tweak(func(s map[string]any) {
			delete(s, KeySecret)
			s[KeyAs], s[KeyCertificate] = AsCertificate, "a_b"
		}), wantKey: KeyCertificate, wantErr: []string{"not a valid Key Vault"}},
		{name: "wrong type", tweak: func(s domain.SinkSpec) domain.SinkSpec { s.Type = "vercel"; return s }, wantErr: []string{`spec type is "vercel"`}},
		{name: "several problems at once", tweak: tweak(func(s map[string]any) { delete(s, KeyVaultURL); s[KeyAdopt] = 1 }),
			wantKey: KeyVaultURL, wantErr: []string{"vault_url: is required", "adopt: must be true or false"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := validSpec()
			if tc.tweak != nil {
				spec = tc.tweak(spec)
			}
			err := (Kind{}).CheckSpec(spec)
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.wantErr {
				require.Contains(t, err.Error(), w)
			}
			var se *SpecError
			require.True(t, errors.As(err, &se), "want a *SpecError, got %T", err)
			if tc.wantKey != "" {
				require.Equal(t, tc.wantKey, se.Key)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	app := domain.Application{TenantID: "tid-1", ObjectID: "oid-1", AppID: "11111111-2222-3333-4444-555555555555", DisplayName: "Payroll API"}
	cases := []struct {
		name     string
		tweak    func(domain.SinkSpec) domain.SinkSpec
		app      func(*domain.Application)
		policyCn string
		wantName string
		wantURL  string
		wantConn string
		wantErr  []string
	}{
		{name: "slug of display name", wantName: "payroll-api-secret", wantURL: "https://payroll-kv.vault.azure.net/", wantConn: "policy-conn"},
		{name: "spec connection wins", tweak: set(KeyConnection, "kv-writer"), wantName: "payroll-api-secret", wantURL: "https://payroll-kv.vault.azure.net/", wantConn: "kv-writer"},
		{name: "url normalised", tweak: set(KeyVaultURL, "https://Payroll-KV.vault.azure.net"), wantName: "payroll-api-secret", wantURL: "https://payroll-kv.vault.azure.net/", wantConn: "policy-conn"},
		{name: "tenant and client id", tweak: set(KeySecret, "{{ .TenantID }}-{{ .ClientID }}"), wantName: "tid-1-11111111-2222-3333-4444-555555555555", wantConn: "policy-conn", wantURL: "https://payroll-kv.vault.azure.net/"},
		{name: "display name with spaces unslugged", tweak: set(KeySecret, "{{ .App.DisplayName }}-secret"),
			wantErr: []string{`"Payroll API-secret"`, `template "{{ .App.DisplayName }}-secret"`, `' '`, "slug"}},
		{name: "display name with underscore", tweak: set(KeySecret, "{{ .App.DisplayName }}"), app: func(a *domain.Application) { a.DisplayName = "payroll_api" },
			wantErr: []string{`secret name "payroll_api"`, `'_'`, "{{ .App.DisplayName | slug }}"}},
		{name: "name too long", tweak: set(KeySecret, "{{ .App.DisplayName | slug }}"), app: func(a *domain.Application) { a.DisplayName = strings.Repeat("a", 130) },
			wantErr: []string{"130 characters long"}},
		{name: "slug of only symbols renders empty", app: func(a *domain.Application) { a.DisplayName = "!!!" }, tweak: set(KeySecret, "{{ .App.DisplayName | slug }}"),
			wantErr: []string{"it is empty"}},
		{name: "no connection anywhere", policyCn: "-", wantErr: []string{"connection: no connection"}},
		{name: "invalid spec", tweak: del(KeyVaultURL), wantErr: []string{"vault_url: is required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := validSpec()
			if tc.tweak != nil {
				spec = tc.tweak(spec)
			}
			a := app
			if tc.app != nil {
				tc.app(&a)
			}
			cn := "policy-conn"
			if tc.policyCn == "-" {
				cn = ""
			}
			var gotConn, gotURL string
			b := newBuilder(nil, func(_ domain.OrgID, connection, vaultURL string) (SecretsAPI, error) {
				gotConn, gotURL = connection, vaultURL
				return newFakeVault(vaultURL), nil
			})
			s, err := b.Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: cn, App: a})
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					require.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			ks := s.(*Sink)
			require.Equal(t, tc.wantName, ks.SecretName())
			require.Equal(t, tc.wantURL, ks.VaultURL())
			require.Equal(t, tc.wantURL, gotURL)
			require.Equal(t, tc.wantConn, gotConn)
			require.Contains(t, s.Describe(), tc.wantName)
			require.Equal(t, "keyvault:"+tc.wantURL+"secrets/"+tc.wantName, s.Target().String())
		})
	}
}

func TestBuildClientsError(t *testing.T) {
	t.Parallel()
	b := newBuilder(nil, func(domain.OrgID, string, string) (SecretsAPI, error) { return nil, errors.New("no such connection") })
	_, err := b.Build(context.Background(), sink.BuildRequest{Spec: validSpec(), Connection: "missing", App: domain.Application{AppID: "a", DisplayName: "x"}})
	require.ErrorContains(t, err, `(connection "missing"): no such connection`)

	_, err = Kind{}.NewBuilder(sink.Deps{})
	require.ErrorContains(t, err, "needs token credentials")
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Payroll API":           "payroll-api",
		"Payroll API (prod)_v2": "payroll-api-prod-v2",
		"  --lead--trail--  ":   "lead-trail",
		"a__b..c":               "a-b-c",
		"Ünïcode Åpp":           "n-code-pp",
		"already-fine-123":      "already-fine-123",
		"":                      "",
		"___":                   "",
	} {
		require.Equal(t, want, Slug(in), "Slug(%q)", in)
	}
}

// FuzzSlug: whatever a display name holds, slug gives a valid name fragment.
func FuzzSlug(f *testing.F) {
	for _, s := range []string{"Payroll API", "a__b", "Ünïcode", "", "-", strings.Repeat("x ", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Slug(s)
		if got == "" {
			return
		}
		require.Regexp(t, `^[0-9a-z]+(-[0-9a-z]+)*$`, got)
		require.Equal(t, got, Slug(got), "slug is idempotent")
	})
}

// FuzzCheckSpec: a configured template or URL never panics the checker, and
// an accepted spec always builds or fails with an error.
func FuzzCheckSpec(f *testing.F) {
	f.Add("https://kv.vault.azure.net/", "{{ .App.DisplayName | slug }}", "Payroll API")
	f.Add("https://kv/", "{{ .App.Name }}", "x")
	f.Add("http://x", "{{", "")
	f.Fuzz(func(t *testing.T, vaultURL, tmpl, display string) {
		spec := domain.SinkSpec{Type: Type, Settings: map[string]any{KeyVaultURL: vaultURL, KeySecret: tmpl}}
		if (Kind{}).CheckSpec(spec) != nil {
			return
		}
		b := newBuilder(nil, func(_ domain.OrgID, _, u string) (SecretsAPI, error) { return newFakeVault(u), nil })
		req := sink.BuildRequest{Spec: spec, Connection: "c", App: domain.Application{AppID: "a", DisplayName: display}}
		s, err := b.Build(context.Background(), req)
		if err == nil {
			require.Regexp(t, `^[0-9a-z-]{1,127}$`, s.(*Sink).SecretName())
			// The target round-trips and pins the same sink.
			parsed, err := sink.ParseTargetID(s.Target().String())
			require.NoError(t, err)
			require.Equal(t, s.Target(), parsed)
			req.Pinned = parsed
			again, err := b.Build(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, s.Target(), again.Target())
		}
	})
}
