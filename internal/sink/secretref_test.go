package sink_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink"
)

func TestParseSecretRef(t *testing.T) {
	t.Parallel()
	kv := func(url, name string) map[string]any {
		return map[string]any{"keyvault": map[string]any{"vault_url": url, "secret": name}}
	}
	for _, tc := range []struct {
		name    string
		in      any
		want    sink.SecretRef
		str     string
		wantErr string
	}{
		{name: "env", in: map[string]any{"env": "ADO_PAT"}, want: sink.SecretRef{Env: "ADO_PAT"}, str: "environment variable ADO_PAT"},
		{name: "file", in: map[string]any{"file": "secrets/pat"}, want: sink.SecretRef{File: "secrets/pat"}, str: "file secrets/pat"},
		{name: "keyvault", in: kv("https://kv.vault.azure.net/", "ado-pat"),
			want: sink.SecretRef{KeyVault: &sink.KeyVaultRef{VaultURL: "https://kv.vault.azure.net/", Secret: "ado-pat"}},
			str:  `Key Vault secret "ado-pat" in https://kv.vault.azure.net/`},
		{name: "inline secret refused without echo", in: "ghp_pastedToken123", wantErr: "must be a reference, not the secret itself"},
		{name: "nil", in: nil, wantErr: "is empty"},
		{name: "list", in: []any{"x"}, wantErr: "wrong shape"},
		{name: "two keys", in: map[string]any{"env": "A", "file": "b"}, wantErr: "exactly one key, has 2 (env, file)"},
		{name: "bad env name", in: map[string]any{"env": "ghp_x y"}, wantErr: "env must name an environment variable"},
		{name: "empty file", in: map[string]any{"file": " "}, wantErr: "file must name a file"},
		{name: "unknown key", in: map[string]any{"value": "x"}, wantErr: `unknown key "value"`},
		{name: "keyvault http", in: kv("http://kv", "x"), wantErr: "https URL"},
		{name: "keyvault bad name", in: kv("https://kv.vault.azure.net/", "a_b"), wantErr: "Key Vault secret name"},
		{name: "keyvault extra key", in: map[string]any{"keyvault": map[string]any{"vault_url": "https://kv/", "secret": "x", "version": "1"}}, wantErr: `unknown key "version"`},
		{name: "keyvault scalar", in: map[string]any{"keyvault": "x"}, wantErr: "keyvault must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := sink.ParseSecretRef(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				if s, ok := tc.in.(string); ok {
					require.NotContains(t, err.Error(), s, "a pasted secret is not repeated")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.str, got.String())
		})
	}
}

// FuzzParseSecretRef: sink settings come from rotor.yaml and the API;
// parsing never panics and never repeats the input in an error.
func FuzzParseSecretRef(f *testing.F) {
	f.Add("env", "ADO_PAT", "")
	f.Add("file", "/run/secrets/x", "")
	f.Add("keyvault", "https://kv.vault.azure.net/", "name")
	f.Add("inline", "ghp_secretvalue", "")
	f.Fuzz(func(t *testing.T, key, a, b string) {
		var in any
		switch key {
		case "keyvault":
			in = map[string]any{key: map[string]any{"vault_url": a, "secret": b}}
		case "inline":
			in = a
		default:
			in = map[string]any{key: a}
		}
		ref, err := sink.ParseSecretRef(in)
		if err != nil {
			if len(a) > 8 && key == "inline" {
				require.NotContains(t, err.Error(), a)
			}
			return
		}
		n := 0
		for _, set := range []bool{ref.Env != "", ref.File != "", ref.KeyVault != nil} {
			if set {
				n++
			}
		}
		require.Equal(t, 1, n, "exactly one source")
	})
}
