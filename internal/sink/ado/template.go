package ado

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
)

// TemplateData is what a name template sees, as in the Key Vault sink:
// {{ .App.DisplayName }}, {{ .App.AppID }}, {{ .TenantID }}, {{ .ClientID }}.
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
}

var funcs = template.FuncMap{
	"slug":  keyvault.Slug,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	// snake is slug with '_' for '-': "API Payments" → "api_payments",
	// the usual shape of a pipeline variable.
	"snake": func(s string) string { return strings.ReplaceAll(keyvault.Slug(s), "-", "_") },
}

// SampleApp renders templates when no application is at hand (CheckSpec).
var SampleApp = domain.Application{
	TenantID: "00000000-0000-0000-0000-0000000000aa", ObjectID: "00000000-0000-0000-0000-0000000000bb",
	AppID: "00000000-0000-0000-0000-0000000000cc", DisplayName: "sample-app",
}

// ParseTemplate parses a name template: no loops, no sub-templates, so
// rendering a configured template always ends quickly.
func ParseTemplate(name, src string) (*template.Template, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates")
	}
	if t.Tree != nil {
		if err := nametmpl.NoLoops(t.Tree.Root); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Render renders t for app, trimmed; at most 1024 bytes.
func Render(t *template.Template, app domain.Application) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, TemplateData{App: app, TenantID: app.TenantID, ClientID: app.AppID}); err != nil {
		return "", err
	}
	if b.Len() > 1024 {
		return "", errors.New("renders more than 1024 characters")
	}
	return strings.TrimSpace(b.String()), nil
}
