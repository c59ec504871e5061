package config

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse: the configuration is outside input. Whatever the bytes,
// Parse does not panic or hang, and returns either a Config or a
// *ValidationError — never both, never neither, never another error —
// and a problem never shows the secret that came from the environment.
func FuzzParse(f *testing.F) {
	b := setup(f)
	valid, err := yaml.Marshal(base())
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		string(valid),
		strings.NewReplacer("<tenant id>", tenantID, "<client id>", clientID, "<vault url>", vaultURL).Replace(verbatim),
		"",
		"---\n",
		"listen: [",
		"- a\n- b\n",
		"just a string",
		"listen: &l 127.0.0.1:8080\norganization: *l\n",
		"x: &d {cloud: sim}\nconnections:\n  - <<: *d\n    name: a\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		string(valid) + "---\nlisten: :9090\n",
		"listen: ':99999'\nrotation: {concurrency_per_tenant: 100000000000, jitter: -1s, plan_interval: 0s}\n",
		"connections:\n  - name: c\n    tenant_id: t.onmicrosoft.com\n    client_id: 1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9\n    client_secret: inline\n",
		"connections:\n  - name: c\n    tenant_id: x\n    managed_identity: {client_id: [1]}\n    client_secret: {keyvault: {vault_url: 1, secret: [x]}}\n",
		"policies:\n  - name: p\n    sinks: [{keyvault: [1]}, 3, {a: 1, b: 2}]\n    lifetime: 1d1d1d\n",
		"database: {url: 'sqlite://?'}\ndata_dir: \"\\0\"\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, b.dir, b.opts)
		switch {
		case err == nil && cfg == nil:
			t.Fatal("neither a Config nor an error")
		case err != nil && cfg != nil:
			t.Fatalf("both a Config and an error: %v", err)
		case err != nil:
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, not a *ValidationError: %v", err, err)
			}
			if len(ve.Problems) == 0 {
				t.Fatal("a ValidationError without problems")
			}
			if !strings.Contains(string(data), theSecret) && strings.Contains(err.Error(), theSecret) {
				t.Fatalf("the environment's secret is in a problem: %v", err)
			}
		default:
			for _, n := range cfg.Notes {
				if strings.Contains(n, theSecret) {
					t.Fatalf("the environment's secret is in a note: %s", n)
				}
			}
		}
	})
}
