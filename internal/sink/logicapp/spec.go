package logicapp

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Setting keys of a "logicapp" sink spec.
const (
	KeySubscriptionID = "subscription_id"
	KeyResourceGroup  = "resource_group"
	// KeyConnections lists API connection names; KeyConnectionName is one
	// (a template may follow the application). Exactly one of them.
	KeyConnections    = "connections"
	KeyConnectionName = "connection_name"
	// KeyConnection is rotor's connection (the identity), not an API
	// connection.
	KeyConnection = "connection"
	KeyAdopt      = sink.KeyAdopt
)

var knownKeys = []string{KeyAdopt, KeyConnection, KeyConnectionName, KeyConnections, KeyResourceGroup, KeySubscriptionID}

var (
	guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	rgPattern   = regexp.MustCompile(`^[-\w._()]{1,90}$`)
	// namePattern is an API connection's name (ARM resource name
	// characters; no commas, which the target id joins names with).
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][-\w.()]{0,79}$`)
)

// SpecError is a problem with one setting of a sink spec.
type SpecError struct {
	Key string
	Msg string
}

func (e *SpecError) Error() string {
	if e.Key == "" {
		return "logicapp sink: " + e.Msg
	}
	return fmt.Sprintf("logicapp sink: %s: %s", e.Key, e.Msg)
}

type settings struct {
	subscriptionID, resourceGroup string
	names                         []string // fixed list, or
	nameTmpl                      *template.Template
	nameSrc                       string
	adopt                         bool
	connection                    string
}

// TemplateData is what the connection_name template sees.
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
}

// Slug turns s into a name fragment: lower case, every run of characters
// outside [0-9a-z-] one '-', none at either end.
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = true
	}
	return strings.TrimSuffix(b.String(), "-")
}

var templateFuncs = template.FuncMap{"slug": Slug, "lower": strings.ToLower}

var sampleApp = domain.Application{TenantID: "00000000-0000-0000-0000-0000000000aa", ObjectID: "00000000-0000-0000-0000-0000000000bb",
	AppID: "00000000-0000-0000-0000-0000000000cc", DisplayName: "sample-app"}

type limitWriter struct{ b strings.Builder }

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > 256 {
		return 0, errors.New("renders more than 256 characters")
	}
	return w.b.Write(p)
}

func render(t *template.Template, app domain.Application) (string, error) {
	w := &limitWriter{}
	if err := t.Execute(w, TemplateData{App: app, TenantID: app.TenantID, ClientID: app.AppID}); err != nil {
		return "", err
	}
	return strings.TrimSpace(w.b.String()), nil
}

func parseSpec(spec domain.SinkSpec) (settings, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &SpecError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if spec.Type != Type {
		bad("", "spec type is %q, not %q", spec.Type, Type)
	}
	var unknown []string
	for k := range spec.Settings {
		if !slices.Contains(knownKeys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		errs = append(errs, &SpecError{Msg: fmt.Sprintf("unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))})
	}
	var s settings
	str := func(key string, required bool) (string, bool) {
		v, ok := spec.Settings[key]
		if !ok || v == nil {
			if required {
				bad(key, "is required")
			}
			return "", false
		}
		sv, ok := v.(string)
		if !ok {
			bad(key, "must be a string, got %T", v)
			return "", false
		}
		if strings.TrimSpace(sv) == "" {
			bad(key, "must not be empty")
			return "", false
		}
		return strings.TrimSpace(sv), true
	}
	if v, ok := str(KeySubscriptionID, true); ok {
		if !guidPattern.MatchString(v) {
			bad(KeySubscriptionID, "%q is not a subscription id (a GUID)", v)
		}
		s.subscriptionID = strings.ToLower(v)
	}
	if v, ok := str(KeyResourceGroup, true); ok {
		if !rgPattern.MatchString(v) || strings.HasSuffix(v, ".") {
			bad(KeyResourceGroup, "%q is not a resource group name", v)
		}
		s.resourceGroup = v
	}
	list, hasList := spec.Settings[KeyConnections]
	one, hasOne := spec.Settings[KeyConnectionName]
	switch {
	case hasList && hasOne:
		bad(KeyConnections, "set connections (a list of names) or connection_name (one name, may be a template), not both")
	case !hasList && !hasOne:
		bad(KeyConnections, "is required (or connection_name): the API connections to keep the secret in")
	case hasList:
		items, ok := list.([]any)
		if !ok || len(items) == 0 {
			bad(KeyConnections, "must be a non-empty list of API connection names, got %T", list)
			break
		}
		seen := map[string]bool{}
		for _, it := range items {
			n, ok := it.(string)
			switch {
			case !ok:
				bad(KeyConnections, "every item must be a name, got %T", it)
			case !namePattern.MatchString(strings.TrimSpace(n)):
				bad(KeyConnections, "%q is not an API connection name", n)
			case seen[strings.ToLower(strings.TrimSpace(n))]:
				bad(KeyConnections, "%q is listed twice", n)
			default:
				seen[strings.ToLower(strings.TrimSpace(n))] = true
				s.names = append(s.names, strings.TrimSpace(n))
			}
		}
	default:
		if _, ok := one.(string); !ok {
			bad(KeyConnectionName, "must be a string, got %T", one)
			break
		}
		v, _ := str(KeyConnectionName, true)
		if v == "" {
			break
		}
		t, err := template.New(KeyConnectionName).Funcs(templateFuncs).Option("missingkey=error").Parse(v)
		switch {
		case err != nil:
			bad(KeyConnectionName, "template %q does not parse: %v", v, err)
		case len(t.Templates()) > 1:
			bad(KeyConnectionName, "template %q must not define templates", v)
		case noLoops(t) != nil:
			bad(KeyConnectionName, "template %q %v", v, noLoops(t))
		default:
			if name, err := render(t, sampleApp); err != nil {
				bad(KeyConnectionName, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .App.ObjectID, .TenantID, .ClientID; functions: slug, lower)", v, err)
			} else if !namePattern.MatchString(name) {
				bad(KeyConnectionName, "%q (rendered from %q for a sample application) is not an API connection name", name, v)
			} else {
				s.nameTmpl, s.nameSrc = t, v
			}
		}
	}
	if v, ok := spec.Settings[KeyAdopt]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			bad(KeyAdopt, "must be true or false, got %T %v", v, v)
		}
		s.adopt = b
	}
	if v, ok := str(KeyConnection, false); ok {
		s.connection = v
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

// namesFor is the API connections of app, sorted.
func (st settings) namesFor(app domain.Application) ([]string, error) {
	if st.nameTmpl == nil {
		out := slices.Clone(st.names)
		sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
		return out, nil
	}
	name, err := render(st.nameTmpl, app)
	if err != nil {
		return nil, &SpecError{Key: KeyConnectionName, Msg: fmt.Sprintf("template %q for application %q: %v", st.nameSrc, app.DisplayName, err)}
	}
	if !namePattern.MatchString(name) {
		return nil, &SpecError{Key: KeyConnectionName, Msg: fmt.Sprintf("%q (rendered from %q for application %q) is not an API connection name; pipe names through slug", name, st.nameSrc, app.DisplayName)}
	}
	return []string{name}, nil
}

// noLoops refuses range and template calls: a name needs neither, and
// without them rendering a configured template always ends quickly (Go
// templates can range over an integer).
func noLoops(t *template.Template) error {
	if t.Tree == nil {
		return nil
	}
	return nametmpl.NoLoops(t.Tree.Root)
}
