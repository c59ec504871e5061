// Package vaultname renders the name of the Key Vault object (key or
// certificate) that holds an application's certificate credential when its
// private key lives in Key Vault (certificate.key_source, docs/adr/0037):
// a text/template over the application, like the Key Vault sink's secret
// names, checked against Key Vault's naming rule.
package vaultname

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
)

// Data is what a template sees: {{ .App.DisplayName }}, {{ .App.AppID }},
// {{ .App.ObjectID }}.
type Data struct {
	App domain.Application
}

var funcs = template.FuncMap{"slug": Slug, "lower": strings.ToLower}

// Slug turns s into a valid Key Vault name fragment: lower case, every run
// of characters outside [0-9a-z] replaced by one '-', no leading or
// trailing '-'. "Payroll API (prod)_v2" becomes "payroll-api-prod-v2".
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// parseTemplate parses src, refusing loops and sub-templates: a name needs
// neither, and without them rendering always ends quickly.
func parseTemplate(src string) (*template.Template, error) {
	t, err := template.New("vault_name").Funcs(funcs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template %q does not parse: %v", src, err)
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("template %q must not define templates", src)
	}
	if t.Tree != nil {
		if err := nametmpl.NoLoops(t.Tree.Root); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Check parses tmpl and renders it for a sample application, so a mistake
// is found when rotor.yaml is read rather than at the first rotation.
func Check(tmpl string) error {
	_, err := Render(tmpl, domain.Application{DisplayName: "sample-app", AppID: "00000000-0000-0000-0000-000000000000", ObjectID: "00000000-0000-0000-0000-000000000001"})
	return err
}

// Render is the object name for app; "" tmpl is domain.DefaultVaultName.
// The error says why the name is not one Key Vault accepts
// (^[0-9a-zA-Z-]{1,127}$).
func Render(tmpl string, app domain.Application) (string, error) {
	if strings.TrimSpace(tmpl) == "" {
		tmpl = domain.DefaultVaultName
	}
	t, err := parseTemplate(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&limited{b: &b, n: 1024}, Data{App: app}); err != nil {
		return "", fmt.Errorf("template %q: %v", tmpl, err)
	}
	name := strings.TrimSpace(b.String())
	switch {
	case name == "":
		return "", fmt.Errorf("template %q renders an empty name for application %q", tmpl, app.DisplayName)
	case len(name) > 127:
		return "", fmt.Errorf("template %q renders a name of %d characters for application %q (Key Vault allows 127)", tmpl, len(name), app.DisplayName)
	}
	for _, r := range name {
		if !((r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '-') {
			return "", fmt.Errorf("template %q renders %q for application %q, which Key Vault refuses: only letters, digits and '-' (use | slug)", tmpl, name, app.DisplayName)
		}
	}
	return name, nil
}

type limited struct {
	b *strings.Builder
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.n {
		return 0, errors.New("the name is too long")
	}
	return l.b.Write(p)
}
