package vercel

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Setting keys of a "vercel" sink spec.
const (
	KeyProject         = "project"
	KeyTeamID          = "team_id"
	KeyKey             = "key"
	KeyType            = "type"
	KeyTargets         = "targets"
	KeyGitBranch       = "git_branch"
	KeyToken           = "token"
	KeyRedeploy        = "redeploy"
	KeyRedeployTimeout = "redeploy_timeout"
	KeyAPIURL          = "api_url"
	KeyAdopt           = sink.KeyAdopt
)

var knownKeys = []string{KeyAdopt, KeyAPIURL, KeyGitBranch, KeyKey, KeyProject, KeyRedeploy, KeyRedeployTimeout, KeyTargets, KeyTeamID, KeyToken, KeyType, sink.KeyCertificateFormat}

// DefaultAPIURL is Vercel's REST API.
const DefaultAPIURL = "https://api.vercel.com"

// DefaultRedeployTimeout bounds the wait for a redeploy to be READY.
const DefaultRedeployTimeout = 15 * time.Minute

// The variable types rotor writes: encrypted (readable by project members
// in the dashboard) or sensitive (write-only once saved; not allowed in
// the development target).
const (
	TypeEncrypted = "encrypted"
	TypeSensitive = "sensitive"
)

// The targets (environments) a variable applies to.
var allTargets = []string{"development", "preview", "production"}

// DefaultTargets are the targets a spec without targets writes.
var DefaultTargets = []string{"preview", "production"}

var (
	envKeyRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	projectRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	teamIDRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	gitBranchR = regexp.MustCompile(`^[^\s~^:?*\[\\]{1,250}$`)
)

// TemplateData is what the key template sees, as in the Key Vault sink:
// {{ .App.DisplayName }}, {{ .App.AppID }}, {{ .App.ObjectID }},
// {{ .TenantID }}, {{ .ClientID }}.
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
}

var templateFuncs = template.FuncMap{
	"envname": EnvName,
	"upper":   strings.ToUpper,
	"lower":   strings.ToLower,
}

// EnvName turns s into an environment variable name fragment: upper case,
// every run of characters outside [A-Z0-9] one '_', none at either end.
// "Payroll API (prod)" becomes "PAYROLL_API_PROD".
func EnvName(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToUpper(s) {
		if (r >= '0' && r <= '9') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
		}
		under = true
	}
	return strings.TrimSuffix(b.String(), "_")
}

// SpecError is a problem with one setting of a sink spec.
type SpecError struct {
	Key string
	Msg string
}

// Error names the setting.
func (e *SpecError) Error() string {
	if e.Key == "" {
		return "vercel sink: " + e.Msg
	}
	return fmt.Sprintf("vercel sink: %s: %s", e.Key, e.Msg)
}

// Permanent: a spec does not mend itself.
func (e *SpecError) Permanent() bool { return true }

// settings is a checked spec.
type settings struct {
	project         string
	teamID          string
	keyTmpl         *template.Template
	keySrc          string
	typ             string
	targets         []string
	gitBranch       string
	token           sink.SecretRef
	redeploy        bool
	redeployTimeout time.Duration
	apiURL          string
	adopt           bool
	// certFormat is what of a certificate credential the variable holds.
	certFormat sink.CertificateFormat
}

var sampleApp = TemplateData{
	App: domain.Application{TenantID: "00000000-0000-0000-0000-0000000000aa", ObjectID: "00000000-0000-0000-0000-0000000000bb",
		AppID: "00000000-0000-0000-0000-0000000000cc", DisplayName: "sample-app"},
	TenantID: "00000000-0000-0000-0000-0000000000aa", ClientID: "00000000-0000-0000-0000-0000000000cc",
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
		slices.Sort(unknown)
		bad("", "unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))
	}
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
	boolean := func(key string) bool {
		v, ok := spec.Settings[key]
		if !ok || v == nil {
			return false
		}
		b, ok := v.(bool)
		if !ok {
			bad(key, "must be true or false, got %T %v", v, v)
		}
		return b
	}

	s := settings{typ: TypeEncrypted, targets: DefaultTargets, apiURL: DefaultAPIURL, redeployTimeout: DefaultRedeployTimeout}
	if f, err := sink.CertificateFormatOf(spec); err != nil {
		bad(sink.KeyCertificateFormat, "%s", strings.TrimPrefix(err.Error(), sink.KeyCertificateFormat+": "))
	} else {
		s.certFormat = f
	}
	if v, ok := str(KeyProject, true); ok {
		if !projectRE.MatchString(v) {
			bad(KeyProject, "%q is not a Vercel project id (prj_…) or name (letters, digits, '.', '_', '-', at most 100)", v)
		} else {
			s.project = v
		}
	}
	if v, ok := str(KeyTeamID, false); ok {
		if !teamIDRE.MatchString(v) {
			bad(KeyTeamID, "%q is not a Vercel team id (team_…)", v)
		} else {
			s.teamID = v
		}
	}
	if v, ok := str(KeyKey, true); ok {
		t, err := parseTemplate(v)
		if err != nil {
			bad(KeyKey, "template %q %v", v, err)
		} else if name, err := render(t, sampleApp); err != nil {
			bad(KeyKey, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .App.ObjectID, .TenantID, .ClientID; functions: envname, upper, lower)", v, err)
		} else if !envKeyRE.MatchString(name) {
			bad(KeyKey, "%s", keyProblem(name, v))
		} else {
			s.keyTmpl, s.keySrc = t, v
		}
	}
	if v, ok := str(KeyType, false); ok {
		if v != TypeEncrypted && v != TypeSensitive {
			bad(KeyType, "must be %q (the default) or %q, not %q", TypeEncrypted, TypeSensitive, v)
		} else {
			s.typ = v
		}
	}
	if v, ok := spec.Settings[KeyTargets]; ok && v != nil {
		if ts, err := parseTargets(v); err != nil {
			bad(KeyTargets, "%v", err)
		} else {
			s.targets = ts
		}
	}
	if s.typ == TypeSensitive && slices.Contains(s.targets, "development") {
		bad(KeyTargets, "a sensitive variable cannot target development (Vercel refuses it); drop development or use type: encrypted")
	}
	if v, ok := str(KeyGitBranch, false); ok {
		switch {
		case !gitBranchR.MatchString(v):
			bad(KeyGitBranch, "%q is not a Git branch name", v)
		case !slices.Equal(s.targets, []string{"preview"}):
			bad(KeyGitBranch, "applies to preview only: set targets: [preview] (Vercel refuses a branch on other targets)")
		default:
			s.gitBranch = v
		}
	}
	if v, ok := spec.Settings[KeyToken]; !ok || v == nil {
		bad(KeyToken, "is required: a reference to a Vercel access token, e.g. {env: VERCEL_TOKEN}")
	} else if ref, err := sink.ParseSecretRef(v); err != nil {
		bad(KeyToken, "%v", err)
	} else {
		s.token = ref
	}
	s.redeploy = boolean(KeyRedeploy)
	if s.redeploy && !slices.Contains(s.targets, "production") {
		bad(KeyRedeploy, "redeploys production, but the variable's targets do not include production: add it to targets, or turn redeploy off")
	}
	if v, ok := str(KeyRedeployTimeout, false); ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(KeyRedeployTimeout, "%q is not a duration such as 10m", v)
		case d < 10*time.Second || d > 2*time.Hour:
			bad(KeyRedeployTimeout, "must be between 10s and 2h, not %s", d)
		default:
			s.redeployTimeout = d
		}
		if !s.redeploy {
			bad(KeyRedeployTimeout, "means nothing without redeploy: true")
		}
	}
	if v, ok := str(KeyAPIURL, false); ok {
		if u, err := checkAPIURL(v); err != nil {
			bad(KeyAPIURL, "%v", err)
		} else {
			s.apiURL = u
		}
	}
	s.adopt = boolean(KeyAdopt)
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

// parseTargets reads a list of distinct targets, returned sorted.
func parseTargets(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		if ss, isStrings := v.([]string); isStrings {
			for _, x := range ss {
				list = append(list, x)
			}
		} else {
			return nil, fmt.Errorf("must be a list of %s", strings.Join(allTargets, ", "))
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("must name at least one of %s", strings.Join(allTargets, ", "))
	}
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		if !slices.Contains(allTargets, s) {
			return nil, fmt.Errorf("%v is not a target: use %s", x, strings.Join(allTargets, ", "))
		}
		if slices.Contains(out, s) {
			return nil, fmt.Errorf("%s is named twice", s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}

// checkAPIURL accepts "https://host[:port][/]" and returns it without the
// trailing slash.
func checkAPIURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "https":
		return "", fmt.Errorf("%q must be an https URL such as %s", raw, DefaultAPIURL)
	case u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return "", fmt.Errorf("%q must be the API's base URL only, such as %s", raw, DefaultAPIURL)
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// parseTemplate parses a key template; like the Key Vault sink's, it
// refuses loops and sub-templates, which a name never needs.
func parseTemplate(src string) (*template.Template, error) {
	t, err := template.New(KeyKey).Funcs(templateFuncs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates (define/block)")
	}
	if t.Tree != nil {
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
	w := &limitWriter{n: 1024}
	if err := t.Execute(w, data); err != nil {
		return "", err
	}
	return strings.TrimSpace(w.b.String()), nil
}

func keyProblem(name, tmpl string) string {
	return fmt.Sprintf("variable name %q (rendered from template %q) is not a valid environment variable name: "+
		"use letters, digits and '_', not starting with a digit; pipe names through envname, e.g. "+
		`"{{ .App.DisplayName | envname }}_CLIENT_SECRET"`, name, tmpl)
}
