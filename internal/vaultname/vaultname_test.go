package vaultname

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

func TestRender(t *testing.T) {
	t.Parallel()
	app := domain.Application{DisplayName: "Payroll API (prod)_v2", AppID: "11111111-2222-3333-4444-555555555555"}
	for _, tc := range []struct {
		name, tmpl, want, err string
	}{
		{name: "default", tmpl: "", want: "payroll-api-prod-v2-cert"},
		{name: "app id", tmpl: "cert-{{ .App.AppID }}", want: "cert-11111111-2222-3333-4444-555555555555"},
		{name: "literal", tmpl: "signing", want: "signing"},
		{name: "unslugged", tmpl: "{{ .App.DisplayName }}", err: "which Key Vault refuses"},
		{name: "range", tmpl: "{{ range 3 }}x{{ end }}", err: "must not use range"},
		{name: "unknown field", tmpl: "{{ .App.Nope }}", err: "Nope"},
		{name: "empty", tmpl: "{{ if false }}x{{ end }}", err: "empty name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tc.tmpl, app)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
