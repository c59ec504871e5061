package automation

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

// Setting keys of an "automation" sink spec.
const (
	KeySubscriptionID = "subscription_id"
	KeyResourceGroup  = "resource_group"
	KeyAccount        = "account"
	KeyRunbook        = "runbook"
	KeyRunOn          = "run_on"
	KeyParameters     = "parameters"
	KeyPassSecret     = "pass_secret"
	KeyTimeout        = "timeout"
	KeyConnection     = "connection"
)

var knownKeys = []string{KeyAccount, KeyConnection, KeyParameters, KeyPassSecret, KeyResourceGroup, KeyRunOn, KeyRunbook, KeySubscriptionID, KeyTimeout, sink.KeyCertificateFormat}

// DefaultTimeout is how long a delivery waits for its job by default;
// MaxTimeout bounds the setting (Automation's fair share stops a cloud job
// after three hours).
const (
	DefaultTimeout = 10 * time.Minute
	MaxTimeout     = 3 * time.Hour
)

// ParamClientSecret is the runbook parameter that receives the secret.
const ParamClientSecret = "ClientSecret"

var (
	guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// rgPattern is ARM's resource group name rule.
	rgPattern = regexp.MustCompile(`^[-\w._()]{1,90}$`)
	// accountPattern: 6-50 letters, digits and hyphens, starting with a
	// letter (Automation's rule).
	accountPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$`)
	// runbookPattern: a letter, then up to 62 letters, digits, '-' or '_'.
	runbookPattern = regexp.MustCompile(`^[A-Za-z][-\w]{0,62}$`)
	// groupPattern is a hybrid worker group's name rule (as resource names).
	groupPattern = regexp.MustCompile(`^[-\w._ ]{1,128}$`)
	// paramPattern is a PowerShell parameter name.
	paramPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// SpecError is a problem with one setting of a sink spec.
type SpecError struct {
	// Key is the setting; empty for the spec as a whole.
	Key string
	Msg string
}

func (e *SpecError) Error() string {
	if e.Key == "" {
		return "automation sink: " + e.Msg
	}
	return fmt.Sprintf("automation sink: %s: %s", e.Key, e.Msg)
}

// settings is a checked spec.
type settings struct {
	// certFormat is what of a certificate credential the parameter holds.
	certFormat                             sink.CertificateFormat
	subscriptionID, resourceGroup, account string
	runbookTmpl                            *template.Template
	runbookSrc                             string
	runOn                                  string
	parameters                             map[string]string
	passSecret                             bool
	timeout                                time.Duration
	connection                             string
}

// TemplateData is what the runbook template sees.
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
}

var sampleApp = domain.Application{TenantID: "00000000-0000-0000-0000-0000000000aa", ObjectID: "00000000-0000-0000-0000-0000000000bb",
	AppID: "00000000-0000-0000-0000-0000000000cc", DisplayName: "sample-app"}

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

// maxRendered bounds a rendered name.
const maxRendered = 256

type limitWriter struct{ b strings.Builder }

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxRendered {
		return 0, fmt.Errorf("renders more than %d characters", maxRendered)
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
		msg := fmt.Sprintf("unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))
		if slices.Contains(unknown, "adopt") {
			msg += "; adopt means nothing here: a job is started, not a stored target taken over"
		}
		errs = append(errs, &SpecError{Msg: msg})
	}
	s := settings{passSecret: true, timeout: DefaultTimeout}
	if f, err := sink.CertificateFormatOf(spec); err != nil {
		bad(sink.KeyCertificateFormat, "%s", strings.TrimPrefix(err.Error(), sink.KeyCertificateFormat+": "))
	} else {
		s.certFormat = f
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
	if v, ok := str(KeySubscriptionID, true); ok {
		if !guidPattern.MatchString(v) {
			bad(KeySubscriptionID, "%q is not a subscription id (a GUID)", v)
		}
		s.subscriptionID = strings.ToLower(v)
	}
	if v, ok := str(KeyResourceGroup, true); ok {
		if !rgPattern.MatchString(v) || strings.HasSuffix(v, ".") {
			bad(KeyResourceGroup, "%q is not a resource group name (1-90 letters, digits, '-', '_', '.', '(', ')', not ending in '.')", v)
		}
		s.resourceGroup = v
	}
	if v, ok := str(KeyAccount, true); ok {
		if !accountPattern.MatchString(v) {
			bad(KeyAccount, "%q is not an Automation account name (6-50 letters, digits and '-', starting with a letter)", v)
		}
		s.account = v
	}
	if v, ok := str(KeyRunbook, true); ok {
		t, err := template.New(KeyRunbook).Funcs(templateFuncs).Option("missingkey=error").Parse(v)
		switch {
		case err != nil:
			bad(KeyRunbook, "template %q does not parse: %v", v, err)
		case len(t.Templates()) > 1:
			bad(KeyRunbook, "template %q must not define templates", v)
		case noLoops(t) != nil:
			bad(KeyRunbook, "template %q %v", v, noLoops(t))
		default:
			if name, err := render(t, sampleApp); err != nil {
				bad(KeyRunbook, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .App.ObjectID, .TenantID, .ClientID; functions: slug, lower)", v, err)
			} else if !runbookPattern.MatchString(name) {
				bad(KeyRunbook, "%q (rendered from %q for a sample application) is not a runbook name: a letter, then up to 62 letters, digits, '-' or '_'", name, v)
			} else {
				s.runbookTmpl, s.runbookSrc = t, v
			}
		}
	}
	if v, ok := str(KeyRunOn, false); ok {
		if !groupPattern.MatchString(v) {
			bad(KeyRunOn, "%q is not a hybrid worker group name", v)
		}
		s.runOn = v
	}
	if v, ok := spec.Settings[KeyPassSecret]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			bad(KeyPassSecret, "must be true or false, got %T %v", v, v)
		} else {
			s.passSecret = b
		}
	}
	if v, ok := spec.Settings[KeyParameters]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			bad(KeyParameters, "must be a map of parameter names to strings, got %T", v)
		} else {
			s.parameters = map[string]string{}
			for _, k := range sortedKeys(m) {
				sv, ok := m[k].(string)
				switch {
				case !paramPattern.MatchString(k):
					bad(KeyParameters, "%q is not a runbook parameter name", k)
				case strings.EqualFold(k, ParamClientSecret):
					bad(KeyParameters, "%s is the secret's parameter (pass_secret); it cannot be set here", k)
				case !ok:
					bad(KeyParameters, "%s must be a string, got %T", k, m[k])
				default:
					s.parameters[k] = sv
				}
			}
		}
	}
	if v, ok := str(KeyTimeout, false); ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(KeyTimeout, "%q is not a duration such as 10m", v)
		case d < time.Second || d > MaxTimeout:
			bad(KeyTimeout, "%s must be between 1s and %s", v, MaxTimeout)
		default:
			s.timeout = d
		}
	}
	if v, ok := str(KeyConnection, false); ok {
		s.connection = v
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// runbookFor renders the runbook name for app.
func (st settings) runbookFor(app domain.Application) (string, error) {
	name, err := render(st.runbookTmpl, app)
	if err != nil {
		return "", &SpecError{Key: KeyRunbook, Msg: fmt.Sprintf("template %q for application %q: %v", st.runbookSrc, app.DisplayName, err)}
	}
	if !runbookPattern.MatchString(name) {
		return "", &SpecError{Key: KeyRunbook, Msg: fmt.Sprintf("%q (rendered from %q for application %q) is not a runbook name: a letter, then up to 62 letters, digits, '-' or '_'; pipe names through slug",
			name, st.runbookSrc, app.DisplayName)}
	}
	return name, nil
}

// accountPath is the account's resource path.
func (st settings) accountPath() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Automation/automationAccounts/%s", st.subscriptionID, st.resourceGroup, st.account)
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
