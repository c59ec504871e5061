package adogit

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"filippo.io/age"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Setting keys of an "adogit" sink spec.
const (
	KeyOrganizationURL = "organization_url"
	KeyProject         = "project"
	KeyRepository      = "repository"
	KeyBranch          = "branch"
	KeyPath            = "path"
	KeyKey             = "key"
	KeyMetadataKey     = "metadata_key"
	KeyRecipients      = "recipients"
	KeyPAT             = "pat"
	KeyConnection      = "connection"
	KeyCommitMessage   = "commit_message"
	KeyAdopt           = sink.KeyAdopt
)

var knownKeys = []string{KeyAdopt, KeyBranch, sink.KeyCertificateFormat, KeyCommitMessage, KeyConnection, KeyKey, KeyMetadataKey,
	KeyOrganizationURL, KeyPAT, KeyPath, KeyProject, KeyRecipients, KeyRepository}

// DefaultBranch is the branch a spec without one writes to.
const DefaultBranch = "main"

// DefaultCommitMessage is the commit message template a spec without one
// uses. It sees the template data plus .KeyID and .ExpiresOn, never a value.
const DefaultCommitMessage = "rotor: rotate the client secret of {{ .App.DisplayName }} (key {{ .KeyID }})"

// metadataLeaf is the default metadata_key's last segment: the sibling
// mapping "rotor" of the secret's key (azure.clientSecret → azure.rotor).
const metadataLeaf = "rotor"

var (
	// nameSegment is what a project, repository, YAML key segment or
	// organization name may be made of here: no characters a target id or
	// URL would have to escape.
	nameSegment   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	keySegment    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	branchPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)
	pathPattern   = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)
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
		return "adogit sink: " + e.Msg
	}
	return fmt.Sprintf("adogit sink: %s: %s", e.Key, e.Msg)
}

// Permanent is true: a bad spec stays bad until a person edits it.
func (e *SpecError) Permanent() bool { return true }

// TemplateData is what the path, key, metadata_key and commit_message
// templates see.
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
	// KeyID and ExpiresOn are set for commit_message only.
	KeyID     string
	ExpiresOn string
}

var templateFuncs = template.FuncMap{"slug": Slug, "lower": strings.ToLower}

// Slug turns s into a name fragment: lower case, every run of characters
// outside [0-9a-z-] one '-', no leading or trailing '-'.
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

// settings is a checked spec.
type settings struct {
	// certFormat is what of a certificate credential the value is.
	certFormat sink.CertificateFormat
	orgURL     string // https://host/org, no trailing slash
	project    string
	repository string
	branch     string
	pathTmpl   *template.Template
	keyTmpl    *template.Template
	metaTmpl   *template.Template // nil: the key's sibling "rotor"
	msgTmpl    *template.Template
	recipients []age.Recipient
	recipSrc   []string
	pat        *sink.SecretRef
	connection string
	adopt      bool
}

var sampleApp = domain.Application{TenantID: "00000000-0000-0000-0000-0000000000aa", ObjectID: "00000000-0000-0000-0000-0000000000bb",
	AppID: "00000000-0000-0000-0000-0000000000cc", DisplayName: "sample-app"}

func data(app domain.Application) TemplateData {
	return TemplateData{App: app, TenantID: app.TenantID, ClientID: app.AppID}
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
	s := settings{branch: DefaultBranch}
	if f, err := sink.CertificateFormatOf(spec); err != nil {
		bad(sink.KeyCertificateFormat, "%s", strings.TrimPrefix(err.Error(), sink.KeyCertificateFormat+": "))
	} else {
		s.certFormat = f
	}
	if v, ok := str(KeyOrganizationURL, true); ok {
		u, err := checkOrgURL(v)
		if err != nil {
			bad(KeyOrganizationURL, "%v", err)
		}
		s.orgURL = u
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{KeyProject, &s.project}, {KeyRepository, &s.repository}} {
		if v, ok := str(k.key, true); ok {
			if !nameSegment.MatchString(v) {
				bad(k.key, "%q must be a name of letters, digits, '.', '_' and '-'", v)
			}
			*k.dst = v
		}
	}
	if v, ok := str(KeyBranch, false); ok {
		v = strings.TrimPrefix(v, "refs/heads/")
		if !branchPattern.MatchString(v) || strings.Contains(v, "..") || strings.HasSuffix(v, "/") {
			bad(KeyBranch, "%q is not a branch name rotor writes to (letters, digits, '.', '_', '-' and '/')", v)
		}
		s.branch = v
	}
	tmpl := func(key string, required bool, check func(string) error) *template.Template {
		v, ok := str(key, required)
		if !ok {
			return nil
		}
		t, err := parseTemplate(key, v)
		if err != nil {
			bad(key, "template %q %v", v, err)
			return nil
		}
		out, err := render(t, data(sampleApp))
		if err != nil {
			bad(key, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .App.ObjectID, .TenantID, .ClientID; functions: slug, lower)", v, err)
			return nil
		}
		if check != nil {
			if err := check(out); err != nil {
				bad(key, "%q (rendered from %q for a sample application) %v", out, v, err)
				return nil
			}
		}
		return t
	}
	s.pathTmpl = tmpl(KeyPath, true, checkPath)
	s.keyTmpl = tmpl(KeyKey, true, checkKeyPath)
	s.metaTmpl = tmpl(KeyMetadataKey, false, checkKeyPath)
	if s.msgTmpl = tmpl(KeyCommitMessage, false, nil); s.msgTmpl == nil {
		s.msgTmpl = template.Must(parseTemplate(KeyCommitMessage, DefaultCommitMessage))
	}
	if v, ok := spec.Settings[KeyRecipients]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			bad(KeyRecipients, "must be a list of age recipients (age1…), got %T", v)
		}
		for i, item := range list {
			rs, _ := item.(string)
			r, err := age.ParseX25519Recipient(strings.TrimSpace(rs))
			if err != nil {
				// The error of age may repeat the input; a recipient is
				// public, but say only which entry is wrong.
				bad(KeyRecipients, "entry %d is not an age X25519 recipient (age1…)", i+1)
				continue
			}
			s.recipients = append(s.recipients, r)
			s.recipSrc = append(s.recipSrc, r.String())
		}
	}
	if v, ok := spec.Settings[KeyPAT]; ok {
		ref, err := sink.ParseSecretRef(v)
		if err != nil {
			bad(KeyPAT, "%v", err)
		} else {
			s.pat = &ref
		}
	}
	if v, ok := str(KeyConnection, false); ok {
		s.connection = v
	}
	if v, ok := spec.Settings[KeyAdopt]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			bad(KeyAdopt, "must be true or false, got %T", v)
		}
		s.adopt = b
	}
	if s.pat != nil && s.connection != "" {
		bad(KeyPAT, "and %s are two ways to authenticate; set one", KeyConnection)
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	if _, err := s.resolve(sampleApp); err != nil {
		return settings{}, err
	}
	return s, nil
}

// checkOrgURL accepts https://host/org[/] and returns it without the slash.
func checkOrgURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", raw)
	}
	org := strings.Trim(u.Path, "/")
	switch {
	case u.Scheme != "https" || u.Host == "":
		return "", fmt.Errorf("%q must be an https URL such as https://dev.azure.com/contoso", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must not carry user information, a query or a fragment", raw)
	case !nameSegment.MatchString(org):
		return "", fmt.Errorf("%q must name the organization in its path, e.g. https://dev.azure.com/contoso", raw)
	case !azureDevOpsHost(u.Hostname()):
		return "", fmt.Errorf("%q is not an Azure DevOps Services host: rotor sends its PAT or token only to dev.azure.com, *.visualstudio.com or loopback (the simulator)", raw)
	}
	return "https://" + strings.ToLower(u.Host) + "/" + org, nil
}

// azureDevOpsHost reports whether host is where Azure DevOps Services
// lives, or loopback (rotor's simulator). A sink sends its credential (a
// PAT, an Entra token for Azure DevOps) to organization_url: a spec, or a
// picker's query, must not be able to send it anywhere else.
func azureDevOpsHost(host string) bool {
	host = strings.ToLower(host)
	if host == "dev.azure.com" || strings.HasSuffix(host, ".visualstudio.com") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkPath(p string) error {
	if !pathPattern.MatchString(p) || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return errors.New("is not a file path rotor writes: /dir/file.yaml of letters, digits, '.', '_' and '-'")
	}
	return nil
}

// checkKeyPath checks a dotted YAML path: segments of letters, digits, '_'
// and '-'.
func checkKeyPath(p string) error {
	for _, seg := range strings.Split(p, ".") {
		if !keySegment.MatchString(seg) {
			return errors.New("is not a YAML key path rotor writes: dot-separated keys of letters, digits, '_' and '-' (e.g. azure.clientSecret)")
		}
	}
	return nil
}

func parseTemplate(name, src string) (*template.Template, error) {
	t, err := template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(src)
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

func render(t *template.Template, d TemplateData) (string, error) {
	b := &limitWriter{n: 1024}
	if err := t.Execute(b, d); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.b.String()), nil
}

// Target is what one sink writes: a key of a YAML file on a branch, with
// its metadata key.
type Target struct {
	OrgURL, Project, Repository, Branch, Path, Key, MetadataKey string
}

// ID is the target's sink.TargetID: the file's Azure DevOps web URL (so the
// UI links somewhere useful) with the keys, e.g.
//
//	adogit:https://dev.azure.com/contoso/payments/_git/deploy?path=/charts/payments/values.yaml&version=GBmain&key=azure.clientSecret&meta=azure.rotor
func (t Target) ID() (sink.TargetID, error) {
	return sink.NewTargetID(Type, fmt.Sprintf("%s/%s/_git/%s?path=%s&version=GB%s&key=%s&meta=%s",
		t.OrgURL, t.Project, t.Repository, t.Path, t.Branch, t.Key, t.MetadataKey))
}

// ParseTarget reads a target id back.
func ParseTarget(id sink.TargetID) (Target, error) {
	bad := func() (Target, error) {
		return Target{}, fmt.Errorf("%w: %q is not an adogit target", sink.ErrBadTargetID, id)
	}
	if id.Kind() != Type {
		return bad()
	}
	base, query, ok := strings.Cut(id.Ref(), "?")
	if !ok {
		return bad()
	}
	left, repo, ok := strings.Cut(base, "/_git/")
	if !ok {
		return bad()
	}
	i := strings.LastIndex(left, "/")
	if i < 0 {
		return bad()
	}
	t := Target{OrgURL: left[:i], Project: left[i+1:], Repository: repo}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "path":
			t.Path = v
		case "version":
			t.Branch = strings.TrimPrefix(v, "GB")
		case "key":
			t.Key = v
		case "meta":
			t.MetadataKey = v
		}
	}
	if _, err := checkOrgURL(t.OrgURL); err != nil || t.Project == "" || t.Repository == "" || t.Branch == "" ||
		checkPath(t.Path) != nil || checkKeyPath(t.Key) != nil || checkKeyPath(t.MetadataKey) != nil {
		return bad()
	}
	return t, nil
}

// resolve renders the spec's target for app.
func (s settings) resolve(app domain.Application) (Target, error) {
	d := data(app)
	p, err := render(s.pathTmpl, d)
	if err == nil {
		err = checkPath(p)
	}
	if err != nil {
		return Target{}, &SpecError{Key: KeyPath, Msg: fmt.Sprintf("for application %q: %v", app.DisplayName, err)}
	}
	k, err := render(s.keyTmpl, d)
	if err == nil {
		err = checkKeyPath(k)
	}
	if err != nil {
		return Target{}, &SpecError{Key: KeyKey, Msg: fmt.Sprintf("for application %q: %v", app.DisplayName, err)}
	}
	var m string
	if s.metaTmpl == nil {
		if i := strings.LastIndex(k, "."); i >= 0 {
			m = k[:i+1] + metadataLeaf
		} else {
			m = metadataLeaf
		}
	} else {
		m, err = render(s.metaTmpl, d)
		if err == nil {
			err = checkKeyPath(m)
		}
		if err != nil {
			return Target{}, &SpecError{Key: KeyMetadataKey, Msg: fmt.Sprintf("for application %q: %v", app.DisplayName, err)}
		}
	}
	if m == k {
		return Target{}, &SpecError{Key: KeyMetadataKey, Msg: fmt.Sprintf("%q is the secret's own key; name another", m)}
	}
	return Target{OrgURL: s.orgURL, Project: s.project, Repository: s.repository, Branch: s.branch, Path: p, Key: k, MetadataKey: m}, nil
}
