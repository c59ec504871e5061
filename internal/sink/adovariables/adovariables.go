// Package adovariables is the "adovariables" sink: it puts a rotated
// client secret into one secret variable of an Azure DevOps variable group
// (Library), leaving every other variable of the group as it was.
//
//	sinks:
//	  - type: adovariables
//	    organization_url: https://dev.azure.com/contoso
//	    project: payments
//	    group: payments-secrets       # the group's id, or its name
//	    variable: "{{ .App.DisplayName | snake | upper }}_CLIENT_SECRET"
//	    pat: {env: ADO_PAT}           # or: entra: true / connection: NAME
//	    adopt: false
//
// A variable group's PUT replaces the whole group: a variable not sent is
// deleted. So the sink reads the group and sends back every variable:
// plain ones as read, other secrets as {"isSecret": true, "value": null}
// (Azure DevOps keeps a secret's value when it is sent as null; secrets
// never read back), the project references as read, and its own variable
// with the new value and isSecret true.
//
// Ownership. A secret variable's value cannot be read, and a variable
// carries no marker, so the variable is rotor's when rotor delivered to it
// (BuildRequest.Last, or this sink's own write); a variable that exists
// without that is someone else's and is refused unless adopt: true. A
// variable that does not exist yet is added.
//
// Version is the group's modifiedOn while the variable exists ("" when it
// does not): Azure DevOps keeps no per-variable version, so drift means
// "the group changed since rotor's delivery", by anyone, to any variable.
// A delivery is skipped when rotor's last delivery was the same credential
// and the group is unchanged since; after any other change the sink writes
// again (the same value: harmless).
package adovariables

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/ado"
)

// Type is the spec type.
const Type = "adovariables"

// Spec keys of this kind (besides ado.CommonKeys).
const (
	KeyGroup    = "group"
	KeyVariable = "variable"
)

var knownKeys = append([]string{KeyGroup, KeyVariable, sink.KeyCertificateFormat}, ado.CommonKeys...)

// variableNameRE is what Azure DevOps accepts as a variable name: letters,
// digits, '.', '_' and '-' (no spaces), not starting with "system.".
var variableNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,256}$`)

// Kind is the "adovariables" sink kind.
type Kind struct{}

var (
	_ sink.Kind          = Kind{}
	_ sink.SharedTargets = Kind{}
	_ sink.Builder       = (*Builder)(nil)
	_ sink.Discoverer    = (*Builder)(nil)
	_ sink.Sink          = (*Sink)(nil)
	_ sink.Validator     = (*Sink)(nil)
	_ sink.Holder        = (*Sink)(nil)
	_ sink.VersionReader = (*Sink)(nil)
)

// Type returns "adovariables".
func (Kind) Type() string { return Type }

// CheckSpec checks every setting without I/O, all problems at once.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// SharesTarget: a variable name that follows no property of the
// application is one target for every application.
func (Kind) SharesTarget(spec domain.SinkSpec) bool {
	st, err := parseSpec(spec)
	if err != nil {
		return false
	}
	a, errA := st.resolve(domain.Application{AppID: "a1", DisplayName: "first-app", TenantID: "t1"})
	b, errB := st.resolve(domain.Application{AppID: "b2", DisplayName: "second-app", TenantID: "t2"})
	return errA == nil && errB == nil && a == b
}

// NewBuilder returns the builder.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Secrets == nil && deps.Credentials == nil {
		return nil, errors.New("adovariables sink needs a secret resolver (pat) or token credentials (entra)")
	}
	return &Builder{deps: deps}, nil
}

type settings struct {
	ado.Common
	groupID   int
	groupName string
	varTmpl   *template.Template
	varSrc    string
	// certFormat is what of a certificate credential the variable holds.
	certFormat sink.CertificateFormat
}

func parseSpec(spec domain.SinkSpec) (settings, error) {
	p := &ado.Spec{Kind: Type, Settings: spec.Settings}
	if spec.Type != Type {
		p.Bad("", "spec type is %q, not %q", spec.Type, Type)
	}
	p.Unknown(knownKeys)
	st := settings{Common: p.Common()}
	if f, err := sink.CertificateFormatOf(spec); err != nil {
		p.Bad(sink.KeyCertificateFormat, "%s", strings.TrimPrefix(err.Error(), sink.KeyCertificateFormat+": "))
	} else {
		st.certFormat = f
	}
	if v, ok := p.String(KeyGroup, true); ok {
		if n, err := strconv.Atoi(v); err == nil {
			if n <= 0 {
				p.Bad(KeyGroup, "%d is not a variable group id", n)
			}
			st.groupID = n
		} else {
			st.groupName = v
		}
	}
	if v, ok := p.String(KeyVariable, true); ok {
		t, err := ado.ParseTemplate(KeyVariable, v)
		if err != nil {
			p.Bad(KeyVariable, "template %q %v", v, err)
		} else if name, err := ado.Render(t, ado.SampleApp); err != nil {
			p.Bad(KeyVariable, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .TenantID, .ClientID; functions: slug, snake, lower, upper)", v, err)
		} else if msg := nameProblem(name); msg != "" {
			p.Bad(KeyVariable, "template %q renders %q for a sample application: %s", v, name, msg)
		} else {
			st.varTmpl, st.varSrc = t, v
		}
	}
	if err := p.Err(); err != nil {
		return settings{}, err
	}
	return st, nil
}

func nameProblem(name string) string {
	switch {
	case !variableNameRE.MatchString(name):
		return "a variable name is 1-256 letters, digits, '.', '_' or '-' (pipe names through snake or slug)"
	case strings.HasPrefix(strings.ToLower(name), "system."):
		return "names starting with system. are Azure DevOps' own"
	}
	return ""
}

// ref is where a target points.
type ref struct {
	orgURL, project string
	groupID         int
	groupName       string
	variable        string
}

func (r ref) target() (sink.TargetID, error) {
	g := strconv.Itoa(r.groupID)
	if r.groupID == 0 {
		g = "name/" + strings.ReplaceAll(url.PathEscape(strings.ToLower(r.groupName)), "%2F", "/")
	}
	return sink.NewTargetID(Type, fmt.Sprintf("%s/%s/variablegroup/%s/variables/%s", r.orgURL,
		strings.ToLower(url.PathEscape(r.project)), g, strings.ToLower(r.variable)))
}

func (st settings) resolve(app domain.Application) (ref, error) {
	name, err := ado.Render(st.varTmpl, app)
	if err == nil {
		if msg := nameProblem(name); msg != "" {
			err = errors.New(msg)
		}
	}
	if err != nil {
		return ref{}, &ado.SpecError{Kind: Type, Key: KeyVariable, Msg: fmt.Sprintf("template %q for application %q: %v", st.varSrc, app.DisplayName, err)}
	}
	return ref{orgURL: st.OrgURL, project: st.Project, groupID: st.groupID, groupName: st.groupName, variable: name}, nil
}

// ParseTarget reads a target id back. The variable comes back in lower
// case: Azure DevOps matches variable names without regard to case.
func ParseTarget(t sink.TargetID) (orgURL, project string, groupID int, groupName, variable string, err error) {
	bad := func(why string) error { return fmt.Errorf("%s is not an %s target: %s", t, Type, why) }
	if t.Kind() != Type {
		return "", "", 0, "", "", bad("wrong kind")
	}
	s := t.Ref()
	i := strings.Index(s, "/variablegroup/")
	if i < 0 {
		return "", "", 0, "", "", bad("no /variablegroup/ in the locator")
	}
	base, rest := s[:i], s[i+len("/variablegroup/"):]
	j := strings.LastIndex(rest, "/variables/")
	if j < 0 {
		return "", "", 0, "", "", bad("no /variables/ after the group in the locator")
	}
	g, variable := rest[:j], rest[j+len("/variables/"):]
	k := strings.LastIndex(base, "/")
	if k < 0 {
		return "", "", 0, "", "", bad("no project")
	}
	orgURL = base[:k]
	if project, err = url.PathUnescape(base[k+1:]); err != nil {
		return "", "", 0, "", "", bad(err.Error())
	}
	if n, ok := strings.CutPrefix(g, "name/"); ok {
		groupName, err = url.PathUnescape(n)
	} else if groupID, err = strconv.Atoi(g); err != nil {
		err = bad("group id " + g)
	}
	return orgURL, project, groupID, groupName, variable, err
}

// Builder builds the sinks.
type Builder struct{ deps sink.Deps }

// Resolve is the target the spec names for req.App today; no I/O.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	r, err := st.resolve(req.App)
	if err != nil {
		return sink.TargetID{}, err
	}
	return r.target()
}

// Build makes the sink, on req.Pinned when set. The variable is written
// under the name the template renders when that is the pinned name in
// another case, else under the pinned name.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	r, err := st.resolve(req.App)
	if err != nil {
		return nil, err
	}
	if !req.Pinned.IsZero() {
		org, project, gid, gname, variable, err := ParseTarget(req.Pinned)
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(variable, r.variable) {
			r.variable = variable
		}
		r.orgURL, r.project, r.groupID, r.groupName = org, project, gid, gname
		st.OrgURL = org
	}
	tid, err := r.target()
	if err != nil {
		return nil, err
	}
	cl, err := ado.NewClient(b.deps, req.App.Org, req.Connection, st.Common)
	if err != nil {
		return nil, err
	}
	return &Sink{c: cl, ref: r, tid: tid, adopt: st.Adopt, last: req.Last, certFormat: st.certFormat}, nil
}

// DiscoverKeys: the variable groups of the spec's project.
func (b *Builder) DiscoverKeys() []string { return []string{KeyGroup} }

// Discover lists the project's variable groups (id, name, how many
// variables). It needs organization_url, project and a way to sign in.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	if q.Key != KeyGroup {
		return nil, fmt.Errorf("adovariables can list %s, not %q", KeyGroup, q.Key)
	}
	p := &ado.Spec{Kind: Type, Settings: q.Spec.Settings}
	c := p.Common()
	if err := p.Err(); err != nil {
		return nil, err
	}
	cl, err := ado.NewClient(b.deps, q.Org, q.Connection, c)
	if err != nil {
		return nil, err
	}
	var list struct {
		Value []group `json:"value"`
	}
	if _, err := cl.Do(ctx, ado.Call{Op: "list variable groups", Method: http.MethodGet,
		Path: "/" + url.PathEscape(c.Project) + "/_apis/distributedtask/variablegroups", Out: &list}); err != nil {
		return nil, err
	}
	out := make([]sink.Choice, 0, len(list.Value))
	for _, g := range list.Value {
		out = append(out, sink.Choice{Value: strconv.Itoa(g.ID), Label: g.Name,
			Detail: fmt.Sprintf("%s · %d variables", g.Type, len(g.Variables))})
	}
	return out, nil
}

// group is a variable group as read. Every field the PUT sends back is
// kept as the raw JSON Azure DevOps gave, so nothing rotor does not know
// is lost or reshaped.
type group struct {
	ID           int                       `json:"id"`
	Name         string                    `json:"name"`
	Type         string                    `json:"type"`
	Description  any                       `json:"description"`
	ProviderData any                       `json:"providerData"`
	Variables    map[string]map[string]any `json:"variables"`
	ProjectRefs  any                       `json:"variableGroupProjectReferences"`
	ModifiedOn   string                    `json:"modifiedOn"`
}

// find returns the group's variable named name (any case) and its key.
func (g *group) find(name string) (string, map[string]any) {
	for k, v := range g.Variables {
		if strings.EqualFold(k, name) {
			return k, v
		}
	}
	return "", nil
}

func isSecret(v map[string]any) bool { b, _ := v["isSecret"].(bool); return b }

// Sink writes one variable of one group.
type Sink struct {
	c     *ado.Client
	ref   ref
	tid   sink.TargetID
	adopt bool
	last  *sink.Delivered
	// certFormat is what of a certificate credential the variable holds.
	certFormat sink.CertificateFormat

	mu      sync.Mutex
	groupID int
	// wroteKey and wroteVersion are what this sink's last write left;
	// attempted says it tried, so a retry is not refused as foreign.
	wroteKey, wroteVersion string
	attempted              bool
}

// Target is the variable's target id.
func (s *Sink) Target() sink.TargetID { return s.tid }

// Describe names the variable for people.
func (s *Sink) Describe() string {
	g := fmt.Sprintf("variable group %d", s.ref.groupID)
	if s.ref.groupID == 0 {
		g = fmt.Sprintf("variable group %q", s.ref.groupName)
	}
	return fmt.Sprintf("Azure DevOps variable %s in %s of %s/%s", s.ref.variable, g, s.ref.orgURL, s.ref.project)
}

func (s *Sink) projectPath() string { return "/" + url.PathEscape(s.ref.project) }

// FailedError is a permanent refusal: the group is missing, or the
// variable is someone else's.
type FailedError struct{ Msg string }

func (e *FailedError) Error() string   { return e.Msg }
func (e *FailedError) Permanent() bool { return true }

// ForeignError says the variable exists and rotor never delivered to it.
type ForeignError struct{ FailedError }

func (s *Sink) read(ctx context.Context) (*group, error) {
	s.mu.Lock()
	id := s.groupID
	s.mu.Unlock()
	if id == 0 {
		id = s.ref.groupID
	}
	if id == 0 {
		var list struct {
			Value []group `json:"value"`
		}
		if _, err := s.c.Do(ctx, ado.Call{Op: "find the variable group by name", Method: http.MethodGet,
			Path: s.projectPath() + "/_apis/distributedtask/variablegroups", Query: url.Values{"groupName": {s.ref.groupName}}, Out: &list}); err != nil {
			return nil, err
		}
		var found []group
		for _, g := range list.Value {
			if strings.EqualFold(g.Name, s.ref.groupName) {
				found = append(found, g)
			}
		}
		switch len(found) {
		case 0:
			return nil, nil
		case 1:
			id = found[0].ID
		default:
			return nil, &FailedError{Msg: fmt.Sprintf("%d variable groups are named %q in project %s: name the one to write by its id", len(found), s.ref.groupName, s.ref.project)}
		}
		s.mu.Lock()
		s.groupID = id
		s.mu.Unlock()
	}
	var g group
	found, err := s.c.Do(ctx, ado.Call{Op: fmt.Sprintf("read variable group %d", id), Method: http.MethodGet,
		Path: fmt.Sprintf("%s/_apis/distributedtask/variablegroups/%d", s.projectPath(), id), Out: &g})
	if err != nil || !found {
		return nil, err
	}
	return &g, nil
}

func (s *Sink) missing() error {
	return &FailedError{Msg: fmt.Sprintf("the variable group of %s does not exist or is not shared with the project (or %s may not see it): rotor adds a variable to an existing group and never creates one",
		s.Describe(), s.c.Who())}
}

// owned says whether rotor may write the variable: absent, delivered by
// rotor before, or adopt.
func (s *Sink) owned(g *group) error {
	name, v := g.find(s.ref.variable)
	if v == nil {
		return nil
	}
	s.mu.Lock()
	attempted := s.attempted
	s.mu.Unlock()
	if s.last != nil || attempted || s.adopt {
		return nil
	}
	kind := "plain"
	if isSecret(v) {
		kind = "secret"
	}
	return &ForeignError{FailedError{Msg: fmt.Sprintf("variable %s (%s) already exists in variable group %q and rotor never delivered to it: it is someone else's; set adopt: true to take it over",
		name, kind, g.Name)}}
}

// Deliver sets the variable to d's secret, keeping every other variable.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	cred, err := sink.SecretOrEncoded("adovariables", d.Material, s.certFormat)
	if err != nil {
		return sink.Result{}, err
	}
	g, err := s.read(ctx)
	if err != nil {
		return sink.Result{}, err
	}
	if g == nil {
		return sink.Result{}, s.missing()
	}
	if err := s.owned(g); err != nil {
		return sink.Result{}, err
	}
	loc := fmt.Sprintf("%s/%s/_library?itemType=VariableGroups&view=VariableGroupView&variableGroupId=%d#%s", s.ref.orgURL, s.ref.project, g.ID, s.ref.variable)
	name, cur := g.find(s.ref.variable)
	if cur != nil && isSecret(cur) && s.holdsAt(d.KeyID, g.ModifiedOn) {
		return sink.Result{Changed: false, Location: loc, Version: g.ModifiedOn}, nil
	}
	if name == "" {
		name = s.ref.variable
	}
	vars := make(map[string]any, len(g.Variables)+1)
	for k, v := range g.Variables {
		out := make(map[string]any, len(v))
		for kk, vv := range v {
			out[kk] = vv
		}
		if isSecret(v) {
			out["value"] = nil // keeps the secret's value
		}
		vars[k] = out
	}
	mine := map[string]any{}
	for k, v := range cur {
		mine[k] = v
	}
	mine["value"], mine["isSecret"] = cred.Reveal(), true
	vars[name] = mine
	body := map[string]any{
		"name": g.Name, "type": g.Type, "description": g.Description, "providerData": g.ProviderData,
		"variables": vars, "variableGroupProjectReferences": g.ProjectRefs,
	}
	s.mu.Lock()
	s.attempted = true
	s.mu.Unlock()
	var after group
	if _, err := s.c.Do(ctx, ado.Call{Op: fmt.Sprintf("update variable group %d", g.ID), Method: http.MethodPut,
		Path: fmt.Sprintf("/_apis/distributedtask/variablegroups/%d", g.ID), In: body, Out: &after, Secret: cred.Reveal()}); err != nil {
		return sink.Result{}, err
	}
	v := after.ModifiedOn
	if v == "" {
		return sink.Result{}, sink.Transient(errors.New("the variable group's answer to the update carried no modifiedOn"))
	}
	s.mu.Lock()
	s.wroteKey, s.wroteVersion = d.KeyID, v
	s.mu.Unlock()
	note := ""
	if cur == nil {
		note = "added the variable to the group"
	} else if s.last == nil && s.adopt {
		note = "adopted a variable rotor did not create"
	}
	return sink.Result{Changed: true, Location: loc, Note: note, Version: v}, nil
}

func (s *Sink) holdsAt(keyID, v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wroteKey != "" {
		return s.wroteKey == keyID && s.wroteVersion == v
	}
	return s.last != nil && s.last.KeyID == keyID && s.last.Version == v
}

// Holds is best effort, since a secret's value never reads back: the
// variable exists as a secret and rotor's last delivery to it (this
// sink's or the recorded one) was keyID. A change to the group since is
// assumed to have kept the value: for recovery, wrongly saying "held"
// only keeps a credential until its overlap ends, while wrongly saying
// "not held" would remove one a pipeline uses.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	g, err := s.read(ctx)
	if err != nil || g == nil {
		return false, err
	}
	if _, v := g.find(s.ref.variable); v == nil || !isSecret(v) {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wroteKey != "" {
		return s.wroteKey == keyID, nil
	}
	return s.last != nil && s.last.KeyID == keyID, nil
}

// Version is the group's modifiedOn while the variable exists, "" when it
// (or the group) does not.
func (s *Sink) Version(ctx context.Context) (string, error) {
	g, err := s.read(ctx)
	if err != nil || g == nil {
		return "", err
	}
	if _, v := g.find(s.ref.variable); v == nil {
		return "", nil
	}
	return g.ModifiedOn, nil
}

// Validate reads the group: it exists, the identity may read it, and the
// variable is absent, rotor's, or adopt is set. Azure DevOps has no dry
// run: whether the identity may update the group shows at the first
// delivery.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	g, err := s.read(ctx)
	switch {
	case err != nil && ado.IsDenied(err):
		return sink.Failed(fmt.Sprintf("Azure DevOps refused %s: give it access to project %s (and the Administrator role on the variable group; a PAT needs scope vso.variablegroups_manage): %v", s.c.Who(), s.ref.project, err), err)
	case err != nil:
		return sink.FromError(err, "")
	case g == nil:
		err := s.missing()
		return sink.Failed(err.Error(), err)
	}
	if err := s.owned(g); err != nil {
		return sink.Failed(err.Error(), err)
	}
	what := fmt.Sprintf("variable group %q (%d) is readable", g.Name, g.ID)
	if _, v := g.find(s.ref.variable); v == nil {
		what += "; the first delivery adds variable " + s.ref.variable
	} else {
		what += "; variable " + s.ref.variable + " is rotor's to write"
	}
	return sink.Ready(what + "; Azure DevOps has no dry run, so whether " + s.c.Who() + " may update the group (Administrator role on it) shows at the first delivery")
}
