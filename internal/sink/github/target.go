package github

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/rotor-dev/rotor/internal/sink"
)

// Target is one Actions secret, canonical: owner, repository, environment
// and organization lower-cased (GitHub compares them without case), the
// name upper-cased (GitHub stores it so), the API URL with a trailing
// slash.
type Target struct {
	APIURL string
	Scope  Scope
	Owner  string
	Repo   string
	Env    string
	Org    string
	Name   string
}

// ID is the target's sink.TargetID: "github:" and the secret's REST URL,
// e.g. github:https://api.github.com/repos/contoso/storefront/actions/secrets/STOREFRONT_SECRET.
func (t Target) ID() (sink.TargetID, error) {
	return sink.NewTargetID(Type, t.APIURL+t.Path())
}

// Path is the secret's REST path under the API URL, as GitHub documents
// it (environment secrets under /repos/{owner}/{repo}/environments/…).
func (t Target) Path() string {
	switch t.Scope {
	case ScopeOrganization:
		return "orgs/" + t.Org + "/actions/secrets/" + t.Name
	case ScopeEnvironment:
		return "repos/" + t.Owner + "/" + t.Repo + "/environments/" + url.PathEscape(t.Env) + "/secrets/" + t.Name
	}
	return "repos/" + t.Owner + "/" + t.Repo + "/actions/secrets/" + t.Name
}

// Describe names the secret for people.
func (t Target) Describe() string {
	switch t.Scope {
	case ScopeOrganization:
		return fmt.Sprintf("GitHub organization secret %s of %s", t.Name, t.Org)
	case ScopeEnvironment:
		return fmt.Sprintf("GitHub environment secret %s of %s/%s (environment %s)", t.Name, t.Owner, t.Repo, t.Env)
	}
	return fmt.Sprintf("GitHub repository secret %s of %s/%s", t.Name, t.Owner, t.Repo)
}

// consumer is the simulator's consumer-list name of the target, for logs
// and tests: owner/repo/NAME, owner/repo/env/ENV/NAME or org/ORG/NAME.
func (t Target) consumer() string {
	switch t.Scope {
	case ScopeOrganization:
		return "org/" + t.Org + "/" + t.Name
	case ScopeEnvironment:
		return t.Owner + "/" + t.Repo + "/env/" + t.Env + "/" + t.Name
	}
	return t.Owner + "/" + t.Repo + "/" + t.Name
}

var targetPattern = regexp.MustCompile(`^(https://[^?#]+?/)(?:repos/([^/]+)/([^/]+)/(?:actions/secrets|environments/([^/]+)/secrets)/([A-Z0-9_]+)|orgs/([^/]+)/actions/secrets/([A-Z0-9_]+))$`)

// ParseTarget reads a github TargetID back.
func ParseTarget(id sink.TargetID) (Target, error) {
	if id.Kind() != Type {
		return Target{}, fmt.Errorf("%w: %s is not a %s target", sink.ErrBadTargetID, id, Type)
	}
	m := targetPattern.FindStringSubmatch(id.Ref())
	if m == nil {
		return Target{}, fmt.Errorf("%w: %s is not a GitHub Actions secret URL", sink.ErrBadTargetID, id)
	}
	t := Target{APIURL: m[1]}
	switch {
	case m[6] != "":
		t.Scope, t.Org, t.Name = ScopeOrganization, m[6], m[7]
	case m[4] != "":
		env, err := url.PathUnescape(m[4])
		if err != nil {
			return Target{}, fmt.Errorf("%w: %s: environment: %v", sink.ErrBadTargetID, id, err)
		}
		t.Scope, t.Owner, t.Repo, t.Env, t.Name = ScopeEnvironment, m[2], m[3], env, m[5]
	default:
		t.Scope, t.Owner, t.Repo, t.Name = ScopeRepository, m[2], m[3], m[5]
	}
	if back, err := t.ID(); err != nil || back != id {
		return Target{}, fmt.Errorf("%w: %s is not canonical", sink.ErrBadTargetID, id)
	}
	return t, nil
}

// target is what s resolves to for data.
func (s settings) target(data TemplateData) (Target, error) {
	name, err := render(s.nameTmpl, data)
	if err != nil {
		return Target{}, &SpecError{Key: KeyName, Msg: fmt.Sprintf("template fails for application %q: %v", data.App.DisplayName, err)}
	}
	if err := nameOK(name); err != nil {
		return Target{}, &SpecError{Key: KeyName, Msg: fmt.Sprintf("secret name %q for application %q %v", name, data.App.DisplayName, err)}
	}
	return Target{
		APIURL: s.apiURL, Scope: s.scope, Name: name,
		Owner: strings.ToLower(s.owner), Repo: strings.ToLower(s.repo), Env: strings.ToLower(s.env), Org: strings.ToLower(s.org),
	}, nil
}
