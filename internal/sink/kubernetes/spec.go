package kubernetes

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Setting keys of a "kubernetes" sink spec.
const (
	KeyKubeconfig     = "kubeconfig"
	KeyContext        = "context"
	KeyNamespace      = "namespace"
	KeySecret         = "secret"
	KeyKey            = "key"
	KeyClientIDKey    = "client_id_key"
	KeyTenantIDKey    = "tenant_id_key"
	KeyRestart        = "restart"
	KeyRolloutTimeout = "rollout_timeout"
	KeyAdopt          = sink.KeyAdopt
)

// Defaults.
const (
	DefaultKey            = "clientSecret"
	DefaultRolloutTimeout = 5 * time.Minute
)

var knownKeys = []string{KeyAdopt, KeyClientIDKey, KeyContext, KeyKey, KeyKubeconfig, KeyNamespace, KeyRestart, KeyRolloutTimeout, KeySecret, KeyTenantIDKey}

// Workload kinds a spec may restart.
var workloadKinds = []string{"DaemonSet", "Deployment", "StatefulSet"}

var (
	// dns1123Label is a namespace name.
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// dns1123Subdomain is a Secret's or a workload's name.
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// configKey is a Secret data key.
	configKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// SpecError is a problem with one setting of a sink spec.
type SpecError struct {
	// Key is the setting; empty for the spec as a whole.
	Key string
	Msg string
}

// Error names the setting.
func (e *SpecError) Error() string {
	if e.Key == "" {
		return "kubernetes sink: " + e.Msg
	}
	return fmt.Sprintf("kubernetes sink: %s: %s", e.Key, e.Msg)
}

// Workload is a Deployment, StatefulSet or DaemonSet the sink restarts
// once the Secret holds the new credential.
type Workload struct {
	Kind string
	Name string
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

// settings is a checked spec.
type settings struct {
	kubeconfig, context, namespace string
	nameTmpl                       *template.Template
	key, clientIDKey, tenantIDKey  string
	restart                        []Workload
	rolloutTimeout                 time.Duration
	adopt                          bool
}

// TemplateData is what the secret name template sees.
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
}

var sampleApp = TemplateData{
	App: domain.Application{TenantID: "00000000-0000-0000-0000-0000000000aa", ObjectID: "00000000-0000-0000-0000-0000000000bb",
		AppID: "00000000-0000-0000-0000-0000000000cc", DisplayName: "sample-app"},
	TenantID: "00000000-0000-0000-0000-0000000000aa", ClientID: "00000000-0000-0000-0000-0000000000cc",
}

var templateFuncs = template.FuncMap{"slug": Slug, "lower": strings.ToLower}

// Slug turns s into a DNS-1123 name fragment: lower case, every run of
// characters outside [0-9a-z] one '-', none at either end.
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

// parseSpec checks every setting and returns all problems at once.
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
		bad("", "unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))
	}
	str := func(key string, required bool) string {
		v, ok := spec.Settings[key]
		if !ok || v == nil {
			if required {
				bad(key, "is required")
			}
			return ""
		}
		sv, ok := v.(string)
		switch {
		case !ok:
			bad(key, "must be a string, got %T", v)
			return ""
		case strings.TrimSpace(sv) == "":
			bad(key, "must not be empty (leave it out instead)")
			return ""
		}
		return strings.TrimSpace(sv)
	}
	s := settings{key: DefaultKey, rolloutTimeout: DefaultRolloutTimeout}
	s.kubeconfig = str(KeyKubeconfig, false)
	if s.kubeconfig != "" && strings.ContainsAny(s.kubeconfig, " \t\n@") {
		bad(KeyKubeconfig, "path %q must not contain spaces or '@' (it is part of the target's id)", s.kubeconfig)
	}
	s.context = str(KeyContext, false)
	if s.context != "" && s.kubeconfig == "" {
		bad(KeyContext, "names a kubeconfig context, so kubeconfig must be set too (without it the sink runs in-cluster)")
	}
	if s.context != "" && strings.ContainsAny(s.context, " \t\n@,") {
		bad(KeyContext, "%q must not contain spaces, ',' or '@'", s.context)
	}
	if ns := str(KeyNamespace, true); ns != "" {
		if !dns1123Label.MatchString(ns) || len(ns) > 63 {
			bad(KeyNamespace, "%q is not a namespace name (a DNS-1123 label: at most 63 characters of a-z, 0-9 and '-')", ns)
		} else {
			s.namespace = ns
		}
	}
	if src := str(KeySecret, true); src != "" {
		t, err := parseTemplate(src)
		if err != nil {
			bad(KeySecret, "template %q %v", src, err)
		} else if name, err := render(t, sampleApp); err != nil {
			bad(KeySecret, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .App.ObjectID, .TenantID, .ClientID; functions: slug, lower)", src, err)
		} else if msg := nameProblem(name); msg != "" {
			bad(KeySecret, "template %q renders %q for a sample application: %s; pipe names through slug, e.g. \"{{ .App.DisplayName | slug }}-azure\"", src, name, msg)
		} else {
			s.nameTmpl = t
		}
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{KeyKey, &s.key}, {KeyClientIDKey, &s.clientIDKey}, {KeyTenantIDKey, &s.tenantIDKey}} {
		if v := str(k.key, false); v != "" {
			if !configKey.MatchString(v) || len(v) > 253 {
				bad(k.key, "%q is not a Secret data key (letters, digits, '-', '_' and '.')", v)
				continue
			}
			*k.dst = v
		}
	}
	seenKeys := map[string]string{}
	for _, k := range []struct{ key, v string }{{KeyKey, s.key}, {KeyClientIDKey, s.clientIDKey}, {KeyTenantIDKey, s.tenantIDKey}} {
		if k.v == "" {
			continue
		}
		if other, dup := seenKeys[k.v]; dup {
			bad(k.key, "%q is also %s: each value needs its own data key", k.v, other)
		}
		seenKeys[k.v] = k.key
	}
	if v, ok := spec.Settings[KeyRestart]; ok && v != nil {
		s.restart = parseRestart(v, bad)
	}
	if v := str(KeyRolloutTimeout, false); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(KeyRolloutTimeout, "%q is not a duration such as 5m or 90s", v)
		case d <= 0 || d > time.Hour:
			bad(KeyRolloutTimeout, "%s must be more than 0 and at most 1h", v)
		default:
			s.rolloutTimeout = d
		}
	}
	if v, ok := spec.Settings[KeyAdopt]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			bad(KeyAdopt, "must be true or false, got %T", v)
		}
		s.adopt = b
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

func parseRestart(v any, bad func(key, format string, args ...any)) []Workload {
	list, ok := v.([]any)
	if !ok {
		bad(KeyRestart, "must be a list of {kind: Deployment|StatefulSet|DaemonSet, name: NAME}, got %T", v)
		return nil
	}
	var out []Workload
	seen := map[Workload]bool{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			bad(KeyRestart, "item %d must be {kind: …, name: …}, got %T", i, item)
			continue
		}
		var w Workload
		for k, val := range m {
			sv, _ := val.(string)
			switch k {
			case "kind":
				w.Kind = sv
			case "name":
				w.Name = sv
			default:
				bad(KeyRestart, "item %d: unknown key %q (known: kind, name)", i, k)
			}
		}
		if !slices.Contains(workloadKinds, w.Kind) {
			bad(KeyRestart, "item %d: kind %q must be one of %s", i, w.Kind, strings.Join(workloadKinds, ", "))
			continue
		}
		if msg := nameProblem(w.Name); msg != "" {
			bad(KeyRestart, "item %d: name %q %s", i, w.Name, msg)
			continue
		}
		if seen[w] {
			bad(KeyRestart, "item %d: %s is listed twice", i, w)
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// nameProblem says why name is not an object name; "" when it is one.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 253:
		return fmt.Sprintf("is %d characters long (at most 253)", len(name))
	case !dns1123Subdomain.MatchString(name):
		return "is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
	}
	return ""
}

// parseTemplate parses a name template; a name needs no loops or
// sub-templates, and refusing them keeps rendering quick.
func parseTemplate(src string) (*template.Template, error) {
	t, err := template.New(KeySecret).Funcs(templateFuncs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates (define/block)")
	}
	if t.Tree != nil && t.Tree.Root != nil {
		if err := nametmpl.NoLoops(t.Tree.Root); err != nil {
			return nil, err
		}
	}
	return t, nil
}

type limitWriter struct {
	b strings.Builder
	n int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.n {
		return 0, errors.New("renders more than 1024 characters")
	}
	return w.b.Write(p)
}

func render(t *template.Template, data TemplateData) (string, error) {
	b := &limitWriter{n: 1024}
	if err := t.Execute(b, data); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.b.String()), nil
}

// secretName renders the Secret's name for app.
func (s settings) secretName(app domain.Application) (string, error) {
	name, err := render(s.nameTmpl, TemplateData{App: app, TenantID: app.TenantID, ClientID: app.AppID})
	if err != nil {
		return "", sink.Permanent(&SpecError{Key: KeySecret, Msg: fmt.Sprintf("template fails for application %q: %v", app.DisplayName, err)})
	}
	if msg := nameProblem(name); msg != "" {
		return "", sink.Permanent(&SpecError{Key: KeySecret, Msg: fmt.Sprintf("renders %q for application %q, which %s", name, app.DisplayName, msg)})
	}
	return name, nil
}

// cluster is the target id's cluster part: "in-cluster", or the
// kubeconfig path and context ("-" for its current context).
func (s settings) cluster() string {
	if s.kubeconfig == "" {
		return inCluster
	}
	ctx := s.context
	if ctx == "" {
		ctx = "-"
	}
	return "kubeconfig=" + s.kubeconfig + ",context=" + ctx
}

const inCluster = "in-cluster"
