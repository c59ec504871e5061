package sink_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink"
)

func TestTargetID(t *testing.T) {
	t.Parallel()
	const kv = "keyvault:https://myvault.vault.azure.net/secrets/web-storefront-secret"
	for _, tc := range []struct {
		name, in string
		kind     string
		ref      string
		wantErr  string
	}{
		{name: "key vault", in: kv, kind: "keyvault", ref: "https://myvault.vault.azure.net/secrets/web-storefront-secret"},
		{name: "locator with colons", in: "adovariables:org:project:group:var", kind: "adovariables", ref: "org:project:group:var"},
		{name: "empty is zero", in: ""},
		{name: "no colon", in: "keyvault", wantErr: "want kind:locator"},
		{name: "empty kind", in: ":x", wantErr: "kind"},
		{name: "upper-case kind", in: "KeyVault:x", wantErr: "lower-case"},
		{name: "kind with dash", in: "key-vault:x", wantErr: "lower-case"},
		{name: "empty locator", in: "keyvault:", wantErr: "empty locator"},
		{name: "space", in: "keyvault:a b", wantErr: `contains ' '`},
		{name: "newline", in: "keyvault:a\nb", wantErr: `contains '\n'`},
		{name: "invalid utf-8", in: "keyvault:a\xffb", wantErr: "contains"},
		{name: "too long", in: "keyvault:" + strings.Repeat("a", 2049), wantErr: "2049 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := sink.ParseTargetID(tc.in)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, sink.ErrBadTargetID)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.in, got.String())
			require.Equal(t, tc.kind, got.Kind())
			require.Equal(t, tc.ref, got.Ref())
			require.Equal(t, tc.in == "", got.IsZero())
		})
	}

	a, err := sink.ParseTargetID(kv)
	require.NoError(t, err)
	b, err := sink.NewTargetID("keyvault", "https://myvault.vault.azure.net/secrets/web-storefront-secret")
	require.NoError(t, err)
	require.True(t, a == b, "one target, one value: comparable with ==")

	raw, err := json.Marshal(map[string]sink.TargetID{"t": a})
	require.NoError(t, err)
	require.JSONEq(t, `{"t":"`+kv+`"}`, string(raw))
	var back map[string]sink.TargetID
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, a, back["t"])
	require.Error(t, json.Unmarshal([]byte(`{"t":"bad id"}`), &back))
}

// FuzzParseTargetID: stored ids are read back with ParseTargetID; whatever
// a row holds, parsing never panics, and what parses round-trips exactly.
func FuzzParseTargetID(f *testing.F) {
	for _, s := range []string{"keyvault:https://kv.vault.azure.net/secrets/x", "", ":", "a:b:c", "k:\x00", "k:é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := sink.ParseTargetID(s)
		if err != nil {
			require.True(t, id.IsZero())
			return
		}
		require.Equal(t, s, id.String())
		again, err := sink.ParseTargetID(id.String())
		require.NoError(t, err)
		require.Equal(t, id, again)
	})
}
