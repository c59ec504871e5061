package github

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Setting keys of a "github" sink spec.
const (
	KeyScope                = "scope"
	KeyOwner                = "owner"
	KeyRepo                 = "repo"
	KeyEnvironment          = "environment"
	KeyOrg                  = "org"
	KeyVisibility           = "visibility"
	KeySelectedRepositories = "selected_repositories"
	KeyName                 = "name"
	KeyToken                = "token"
	KeyAPIURL               = "api_url"
	KeyAdopt                = sink.KeyAdopt
)

// Scope is where the secret lives.
type Scope string

// The three places an Actions secret can live.
const (
	ScopeRepository   Scope = "repository"
	ScopeEnvironment  Scope = "environment"
	ScopeOrganization Scope = "organization"
)

// DefaultAPIURL is GitHub.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Visibilities of an organization secret.
var visibilities = []string{"all", "private", "selected"}

var knownKeys = []string{KeyAdopt, KeyAPIURL, KeyEnvironment, KeyName, KeyOrg, KeyOwner, KeyRepo, KeyScope, KeySelectedRepositories, KeyToken, KeyVisibility, sink.KeyCertificateFormat}

// SpecError is a problem with one setting of a sink spec.
type SpecError struct {
	// Key is the setting; empty for the spec as a whole.
	Key string
	Msg string
}

// Error names the setting.
func (e *SpecError) Error() string {
	if e.Key == "" {
		return "github sink: " + e.Msg
	}
	return fmt.Sprintf("github sink: %s: %s", e.Key, e.Msg)
}

// TemplateData is what the name template sees, as in the Key Vault sink.
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
}

// templateFuncs are the functions a name template may call. slug here
// makes a GitHub secret name fragment (letters, digits, underscores),
// not Key Vault's dashes.
var templateFuncs = template.FuncMap{
	"slug":  Slug,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
}

// Slug turns s into a GitHub secret name fragment: upper case, every run
// of characters outside [0-9A-Z] replaced by one '_', none leading or
// trailing. "Payroll API (prod)" becomes "PAYROLL_API_PROD".
func Slug(s string) string {
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

// secretNamePattern is GitHub's rule for secret names, after upper-casing.
var secretNamePattern = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// nameOK reports whether name (upper case) is a name GitHub accepts.
func nameOK(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case strings.HasPrefix(name, "GITHUB_"):
		return errors.New("must not start with GITHUB_ (GitHub reserves it)")
	case !secretNamePattern.MatchString(name):
		return errors.New("may hold only letters, digits and underscores and must not start with a digit; pipe names through slug, e.g. \"{{ .App.DisplayName | slug }}_CLIENT_SECRET\"")
	}
	return nil
}

// loginPattern is a GitHub account or repository name.
var (
	loginPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	repoPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// settings is a checked spec.
type settings struct {
	// certFormat is what of a certificate credential the secret holds.
	certFormat sink.CertificateFormat
	scope      Scope
	owner      string
	repo       string
	env        string
	org        string
	visibility string
	selected   []string
	nameTmpl   *template.Template
	token      sink.SecretRef
	apiURL     string
	adopt      bool
}

var sampleApp = TemplateData{
	App: domain.Application{
		TenantID: "00000000-0000-0000-0000-0000000000aa", ObjectID: "00000000-0000-0000-0000-0000000000bb",
		AppID: "00000000-0000-0000-0000-0000000000cc", DisplayName: "sample-app",
	},
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
		sort.Strings(unknown)
		bad("", "unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))
	}
	str := func(key string) (string, bool) {
		v, ok := spec.Settings[key]
		if !ok || v == nil {
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
	s := settings{apiURL: DefaultAPIURL}
	if f, err := sink.CertificateFormatOf(spec); err != nil {
		bad(sink.KeyCertificateFormat, "%s", strings.TrimPrefix(err.Error(), sink.KeyCertificateFormat+": "))
	} else {
		s.certFormat = f
	}
	owner, hasOwner := str(KeyOwner)
	repo, hasRepo := str(KeyRepo)
	env, hasEnv := str(KeyEnvironment)
	org, hasOrg := str(KeyOrg)
	vis, hasVis := str(KeyVisibility)
	_, hasSel := spec.Settings[KeySelectedRepositories]

	// scope is optional: it follows from the keys given.
	switch sc, ok := str(KeyScope); {
	case ok && !slices.Contains([]Scope{ScopeRepository, ScopeEnvironment, ScopeOrganization}, Scope(sc)):
		bad(KeyScope, "must be %s, %s or %s, not %q", ScopeRepository, ScopeEnvironment, ScopeOrganization, sc)
	case ok:
		s.scope = Scope(sc)
	case hasEnv:
		s.scope = ScopeEnvironment
	case hasOrg:
		s.scope = ScopeOrganization
	default:
		s.scope = ScopeRepository
	}
	switch s.scope {
	case ScopeRepository, ScopeEnvironment:
		if !hasOwner {
			bad(KeyOwner, "is required for a %s secret (the user or organization owning the repository)", s.scope)
		} else if !loginPattern.MatchString(owner) {
			bad(KeyOwner, "%q is not a GitHub user or organization name", owner)
		}
		if !hasRepo {
			bad(KeyRepo, "is required for a %s secret", s.scope)
		} else if !repoPattern.MatchString(repo) {
			bad(KeyRepo, "%q is not a repository name", repo)
		}
		if s.scope == ScopeEnvironment && !hasEnv {
			bad(KeyEnvironment, "is required for an environment secret")
		}
		if s.scope == ScopeRepository && hasEnv {
			bad(KeyEnvironment, "is only for scope environment")
		}
		if hasOrg {
			bad(KeyOrg, "is only for scope organization (use owner and repo for a %s secret)", s.scope)
		}
		if hasVis || hasSel {
			bad(KeyVisibility, "visibility and selected_repositories are only for scope organization")
		}
		s.owner, s.repo, s.env = owner, repo, env
	case ScopeOrganization:
		if !hasOrg {
			bad(KeyOrg, "is required for an organization secret")
		} else if !loginPattern.MatchString(org) {
			bad(KeyOrg, "%q is not a GitHub organization name", org)
		}
		if hasOwner || hasRepo || hasEnv {
			bad("", "owner, repo and environment are not for scope organization (the secret belongs to org; choose its repositories with visibility)")
		}
		s.org, s.visibility = org, "private"
		if hasVis {
			if !slices.Contains(visibilities, vis) {
				bad(KeyVisibility, "must be all, private or selected, not %q", vis)
			}
			s.visibility = vis
		}
		if hasSel {
			list, ok := spec.Settings[KeySelectedRepositories].([]any)
			if !ok {
				bad(KeySelectedRepositories, "must be a list of repository names of %s", org)
			}
			for _, v := range list {
				n, ok := v.(string)
				if !ok || !repoPattern.MatchString(n) {
					bad(KeySelectedRepositories, "%v is not a repository name", v)
					continue
				}
				s.selected = append(s.selected, n)
			}
		}
		switch {
		case s.visibility == "selected" && len(s.selected) == 0:
			bad(KeySelectedRepositories, "must name at least one repository when visibility is selected")
		case s.visibility != "selected" && hasSel:
			bad(KeySelectedRepositories, "is only for visibility selected")
		}
	}

	if v, ok := str(KeyName); !ok {
		if _, present := spec.Settings[KeyName]; !present {
			bad(KeyName, "is required (the secret's name; a template such as \"{{ .App.DisplayName | slug }}_CLIENT_SECRET\")")
		}
	} else if t, err := parseTemplate(v); err != nil {
		bad(KeyName, "template %q %v", v, err)
	} else if name, err := render(t, sampleApp); err != nil {
		bad(KeyName, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .App.ObjectID, .TenantID, .ClientID; functions: slug, upper, lower)", v, err)
	} else if err := nameOK(name); err != nil {
		bad(KeyName, "secret name %q (rendered from %q) %v", name, v, err)
	} else {
		s.nameTmpl = t
	}

	if v, ok := spec.Settings[KeyToken]; !ok {
		bad(KeyToken, "is required: a reference to a GitHub token, e.g. {env: GITHUB_TOKEN}")
	} else if ref, err := sink.ParseSecretRef(v); err != nil {
		bad(KeyToken, "%v", err)
	} else {
		s.token = ref
	}
	if v, ok := str(KeyAPIURL); ok {
		u, err := checkAPIURL(v)
		if err != nil {
			bad(KeyAPIURL, "%v", err)
		}
		s.apiURL = u
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

// checkAPIURL accepts an https base URL (GitHub Enterprise Server's has a
// path, /api/v3/) and returns it with a trailing slash.
func checkAPIURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "https" || u.Host == "":
		return "", fmt.Errorf("%q must be an https URL such as %s", raw, DefaultAPIURL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must be a plain base URL (no user, query or fragment)", raw)
	}
	return "https://" + strings.ToLower(u.Host) + strings.TrimSuffix(u.Path, "/") + "/", nil
}

// parseTemplate parses a name template, refusing loops and sub-templates
// so that rendering always ends quickly.
func parseTemplate(src string) (*template.Template, error) {
	t, err := template.New(KeyName).Funcs(templateFuncs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates (define/block)")
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return t, nil
	}
	if err := nametmpl.NoLoops(t.Tree.Root); err != nil {
		return nil, err
	}
	return t, nil
}

const maxRendered = 1024

type limitWriter struct {
	b strings.Builder
	n int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.n {
		return 0, fmt.Errorf("renders more than %d characters", maxRendered)
	}
	return w.b.Write(p)
}

// render renders the name and upper-cases it, as GitHub stores it.
func render(t *template.Template, data TemplateData) (string, error) {
	b := &limitWriter{n: maxRendered}
	if err := t.Execute(b, data); err != nil {
		return "", err
	}
	return strings.ToUpper(strings.TrimSpace(b.b.String())), nil
}
