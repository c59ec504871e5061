// Package adoconnection is the "adoconnection" sink: it puts a rotated
// client secret into an Azure DevOps service connection of type azurerm
// (scheme ServicePrincipal, authenticationType spnKey), in place, by
// PUTting the connection back exactly as it read it with only the key set.
// A certificate credential goes in as authenticationType spnCertificate
// with servicePrincipalCertificate, the PEM private key and chain (a key
// connection is switched to it; a secret never goes into a certificate
// connection).
// It never deletes and recreates a connection: pipelines refer to its id.
//
//	sinks:
//	  - type: adoconnection
//	    organization_url: https://dev.azure.com/contoso
//	    project: payments
//	    endpoint: 7c4b0e5e-…            # the connection's id, or a name (template allowed)
//	    pat: {env: ADO_PAT}             # or: entra: true / connection: NAME
//	    adopt: false
//
// Ownership. A person creates a service connection; rotor only keeps its
// key. The connection is the application's, and so rotor's to write, when
// its service principal id and tenant id are the application's: a
// connection for another application is refused, permanently, since
// writing this application's key into it would break it. adopt: true takes
// such a connection over: the delivery points it at the application (its
// service principal id and tenant) and sets the key — the connection then
// signs in as the application, which is what adopting means.
//
// Idempotence and versions. The key never reads back (Azure DevOps masks
// it) and a connection has no revision field, so the sink's version is a
// digest of the connection as GET returns it (no key). A delivery is
// skipped when rotor's last delivery (BuildRequest.Last) was the same
// credential and the connection's digest is still the one that delivery
// left. Drift therefore means "someone edited the connection since rotor's
// delivery"; a key pasted by hand that changes nothing else is invisible
// to the API and so to rotor.
package adoconnection

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"text/template"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/ado"
)

// Type is the spec type.
const Type = "adoconnection"

// KeyEndpoint names the connection: its id, or its name (a template).
const KeyEndpoint = "endpoint"

var knownKeys = append([]string{KeyEndpoint}, ado.CommonKeys...)

// Kind is the "adoconnection" sink kind.
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

// Type returns "adoconnection".
func (Kind) Type() string { return Type }

// CheckSpec checks every setting without I/O, all problems at once.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// SharesTarget: a connection named by id, or by a name that follows no
// property of the application, is one target for every application.
func (Kind) SharesTarget(spec domain.SinkSpec) bool {
	st, err := parseSpec(spec)
	if err != nil {
		return false
	}
	a, errA := st.resolve(domain.Application{AppID: "a1", DisplayName: "first-app", TenantID: "t1"})
	b, errB := st.resolve(domain.Application{AppID: "b2", DisplayName: "second-app", TenantID: "t2"})
	return errA == nil && errB == nil && a == b
}

// NewBuilder returns the builder. A PAT needs deps.Secrets, Entra sign-in
// deps.Credentials; which one a spec uses is known only at Build.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Secrets == nil && deps.Credentials == nil {
		return nil, errors.New("adoconnection sink needs a secret resolver (pat) or token credentials (entra)")
	}
	return &Builder{deps: deps}, nil
}

type settings struct {
	ado.Common
	id       string // the endpoint's id, when the spec gives one
	nameTmpl *template.Template
	nameSrc  string
}

func parseSpec(spec domain.SinkSpec) (settings, error) {
	p := &ado.Spec{Kind: Type, Settings: spec.Settings}
	if spec.Type != Type {
		p.Bad("", "spec type is %q, not %q", spec.Type, Type)
	}
	p.Unknown(knownKeys)
	st := settings{Common: p.Common()}
	if v, ok := p.String(KeyEndpoint, true); ok {
		if _, err := uuid.Parse(v); err == nil {
			st.id = strings.ToLower(v)
		} else if t, err := ado.ParseTemplate(KeyEndpoint, v); err != nil {
			p.Bad(KeyEndpoint, "template %q %v", v, err)
		} else if name, err := ado.Render(t, ado.SampleApp); err != nil || name == "" {
			p.Bad(KeyEndpoint, "template %q does not render a connection name (fields: .App.DisplayName, .App.AppID, .TenantID, .ClientID; functions: slug, lower, upper, snake)", v)
		} else {
			st.nameTmpl, st.nameSrc = t, v
		}
	}
	if err := p.Err(); err != nil {
		return settings{}, err
	}
	return st, nil
}

// ref is where a target points: the connection's id, or its name.
type ref struct {
	orgURL, project string
	id, name        string
}

var spaceRE = regexp.MustCompile(`\s`)

func (r ref) target() (sink.TargetID, error) {
	loc := r.orgURL + "/" + strings.ToLower(url.PathEscape(r.project)) + "/serviceendpoint/"
	if r.id != "" {
		loc += r.id
	} else {
		loc += "name/" + spaceRE.ReplaceAllString(url.PathEscape(strings.ToLower(r.name)), "%20")
	}
	return sink.NewTargetID(Type, loc)
}

func (st settings) resolve(app domain.Application) (ref, error) {
	r := ref{orgURL: st.OrgURL, project: st.Project, id: st.id}
	if r.id == "" {
		name, err := ado.Render(st.nameTmpl, app)
		if err != nil || name == "" {
			return ref{}, &ado.SpecError{Kind: Type, Key: KeyEndpoint, Msg: fmt.Sprintf("template %q renders no name for application %q", st.nameSrc, app.DisplayName)}
		}
		r.name = name
	}
	return r, nil
}

// ParseTarget reads a target id back: organization URL, project, and the
// connection's id or name.
func ParseTarget(t sink.TargetID) (orgURL, project, id, name string, err error) {
	if t.Kind() != Type {
		return "", "", "", "", fmt.Errorf("%s is not an %s target", t, Type)
	}
	s := t.Ref()
	i := strings.Index(s, "/serviceendpoint/")
	if i < 0 {
		return "", "", "", "", fmt.Errorf("%s: no /serviceendpoint/ in the locator", t)
	}
	base, rest := s[:i], s[i+len("/serviceendpoint/"):]
	j := strings.LastIndex(base, "/")
	if j < 0 {
		return "", "", "", "", fmt.Errorf("%s: no project in the locator", t)
	}
	orgURL, project = base[:j], base[j+1:]
	if project, err = url.PathUnescape(project); err != nil {
		return "", "", "", "", fmt.Errorf("%s: %w", t, err)
	}
	if n, ok := strings.CutPrefix(rest, "name/"); ok {
		name, err = url.PathUnescape(n)
		return orgURL, project, "", name, err
	}
	return orgURL, project, rest, "", nil
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

// Build makes the sink, on req.Pinned when set.
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
		org, project, id, name, err := ParseTarget(req.Pinned)
		if err != nil {
			return nil, err
		}
		r = ref{orgURL: org, project: project, id: id, name: name}
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
	return &Sink{c: cl, ref: r, tid: tid, adopt: st.Adopt, app: req.App, last: req.Last, certs: req.Certificates()}, nil
}

// DiscoverKeys: the connections of the spec's project.
func (b *Builder) DiscoverKeys() []string { return []string{KeyEndpoint} }

// Discover lists the project's azurerm connections (id, name, the service
// principal they sign in as). It needs organization_url, project and a
// way to sign in in q.Spec.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	if q.Key != KeyEndpoint {
		return nil, fmt.Errorf("adoconnection can list %s, not %q", KeyEndpoint, q.Key)
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
		Value []endpoint `json:"value"`
	}
	if _, err := cl.Do(ctx, ado.Call{Op: "list service connections", Method: http.MethodGet,
		Path: "/" + url.PathEscape(c.Project) + "/_apis/serviceendpoint/endpoints", Query: url.Values{"type": {"azurerm"}}, Out: &list}); err != nil {
		return nil, err
	}
	out := make([]sink.Choice, 0, len(list.Value))
	for _, e := range list.Value {
		detail := "azurerm · " + e.scheme()
		if sp := e.param("serviceprincipalid"); sp != "" {
			detail += " · service principal " + sp
		}
		out = append(out, sink.Choice{Value: e.id(), Label: e.str("name"), Detail: detail})
	}
	return out, nil
}

// endpoint is a connection as read: the whole JSON object, so that a PUT
// sends back every field, known to rotor or not.
type endpoint map[string]any

func (e endpoint) str(k string) string { s, _ := e[k].(string); return s }
func (e endpoint) id() string          { return strings.ToLower(e.str("id")) }
func (e endpoint) auth() map[string]any {
	a, _ := e["authorization"].(map[string]any)
	return a
}
func (e endpoint) scheme() string { s, _ := e.auth()["scheme"].(string); return s }
func (e endpoint) params() map[string]any {
	p, _ := e.auth()["parameters"].(map[string]any)
	return p
}
func (e endpoint) param(k string) string { s, _ := e.params()[k].(string); return s }

// digest is the connection's version: a hash of what GET shows, less the
// masked key and the fields Azure DevOps computes on every read.
func (e endpoint) digest() string {
	c := deepCopy(e)
	delete(c, "isReady")
	delete(c, "operationStatus")
	delete(c, "isOutdated")
	if p := c.params(); p != nil {
		delete(p, "serviceprincipalkey")
	}
	b, _ := json.Marshal(map[string]any(c)) // maps marshal with sorted keys
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:12])
}

func deepCopy(e endpoint) endpoint {
	b, _ := json.Marshal(map[string]any(e))
	var out endpoint
	_ = json.Unmarshal(b, &out)
	return out
}

// Sink writes one connection's key.
type Sink struct {
	c     *ado.Client
	ref   ref
	tid   sink.TargetID
	adopt bool
	// certs: the policy rotates certificates (BuildRequest.Kind).
	certs bool
	app   domain.Application
	last  *sink.Delivered

	mu sync.Mutex
	id string // the connection's id, once known
	// wrote is the credential and digest this sink's last write left;
	// attempted says it tried, so a retry is not refused as foreign.
	wroteKey, wroteVersion string
	attempted              bool
}

// Target is the connection's target id.
func (s *Sink) Target() sink.TargetID { return s.tid }

// Describe names the connection for people.
func (s *Sink) Describe() string {
	what := "service connection " + s.ref.id
	if s.ref.id == "" {
		what = fmt.Sprintf("service connection %q", s.ref.name)
	}
	return fmt.Sprintf("Azure DevOps %s in %s/%s", what, s.ref.orgURL, s.ref.project)
}

func (s *Sink) projectPath() string { return "/" + url.PathEscape(s.ref.project) }

// FailedError is a permanent refusal of the connection as it is: another
// application's, the wrong type, missing.
type FailedError struct{ Msg string }

func (e *FailedError) Error() string   { return e.Msg }
func (e *FailedError) Permanent() bool { return true }

// ForeignError says the connection signs in as another application.
type ForeignError struct{ FailedError }

// read finds the connection (by name once, then by id) and reads it.
func (s *Sink) read(ctx context.Context) (endpoint, error) {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	if id == "" && s.ref.id != "" {
		id = s.ref.id
	}
	if id == "" {
		var list struct {
			Value []endpoint `json:"value"`
		}
		if _, err := s.c.Do(ctx, ado.Call{Op: "find the service connection by name", Method: http.MethodGet,
			Path: s.projectPath() + "/_apis/serviceendpoint/endpoints", Query: url.Values{"endpointNames": {s.ref.name}}, Out: &list}); err != nil {
			return nil, err
		}
		var found []endpoint
		for _, e := range list.Value {
			if strings.EqualFold(e.str("name"), s.ref.name) {
				found = append(found, e)
			}
		}
		switch len(found) {
		case 0:
			return nil, nil
		case 1:
			id = found[0].id()
		default:
			return nil, &FailedError{Msg: fmt.Sprintf("%d service connections are named %q in project %s: name the one to write by its id", len(found), s.ref.name, s.ref.project)}
		}
		s.mu.Lock()
		s.id = id
		s.mu.Unlock()
	}
	var e endpoint
	found, err := s.c.Do(ctx, ado.Call{Op: "read service connection " + id, Method: http.MethodGet,
		Path: s.projectPath() + "/_apis/serviceendpoint/endpoints/" + url.PathEscape(id), Out: &e})
	if err != nil || !found {
		return nil, err
	}
	return e, nil
}

func (s *Sink) missing() error {
	return &FailedError{Msg: fmt.Sprintf("%s does not exist or is not shared with the project (or %s may not see it): rotor updates an existing connection and never creates one",
		s.Describe(), s.c.Who())}
}

// Authentication types of an azurerm ServicePrincipal connection, as the
// service connection API names them (the Azure DevOps Terraform provider,
// Microsoft's own, sends the same).
const (
	authKey         = "spnKey"
	authCertificate = "spnCertificate"
	// paramCertificate is the write-only parameter of spnCertificate: the
	// PEM private key and certificate.
	paramCertificate = "servicePrincipalCertificate"
)

// check says whether rotor may write e for d's application: the right
// kind of connection, and the application's own (or adopt). cert: the
// delivery is a certificate, which a key connection may switch to; a
// client secret never goes into a certificate connection.
func (s *Sink) check(e endpoint, clientID, tenantID string, cert bool) (takeover bool, err error) {
	name := fmt.Sprintf("service connection %q (%s)", e.str("name"), e.id())
	if t := e.str("type"); !strings.EqualFold(t, "azurerm") {
		return false, &FailedError{Msg: fmt.Sprintf("%s is of type %q: rotor writes only azurerm connections", name, t)}
	}
	if sc := e.scheme(); !strings.EqualFold(sc, "ServicePrincipal") {
		return false, &FailedError{Msg: fmt.Sprintf("%s uses scheme %q: only a ServicePrincipal connection holds a client secret (workload identity federation needs none)", name, sc)}
	}
	switch at := e.param("authenticationType"); {
	case at == "" || strings.EqualFold(at, authKey):
	case strings.EqualFold(at, authCertificate) && cert:
	case strings.EqualFold(at, authCertificate):
		return false, &FailedError{Msg: fmt.Sprintf("%s authenticates with a certificate (%s), and this policy rotates client secrets: give the application a certificate policy, or switch the connection to a key", name, authCertificate)}
	default:
		return false, &FailedError{Msg: fmt.Sprintf("%s authenticates with %q, neither a key (%s) nor a certificate (%s)", name, at, authKey, authCertificate)}
	}
	sp, tenant := e.param("serviceprincipalid"), e.param("tenantid")
	if strings.EqualFold(sp, clientID) && strings.EqualFold(tenant, tenantID) {
		return false, nil
	}
	s.mu.Lock()
	attempted := s.attempted
	s.mu.Unlock()
	if s.adopt || attempted {
		return true, nil
	}
	return false, &ForeignError{FailedError{Msg: fmt.Sprintf("%s signs in as service principal %s of tenant %s, not as application %s (%s) of tenant %s: it is another application's connection; set adopt: true to point it at this application",
		name, sp, tenant, s.app.DisplayName, clientID, tenantID)}}
}

// Deliver sets the connection's key to d's secret, or — for a certificate
// — sets authenticationType spnCertificate and servicePrincipalCertificate
// to the PEM private key and chain (and drops any key), which is how Azure
// DevOps keeps a certificate connection.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	cert := d.Material.Certificate != nil
	var value string
	switch {
	case cert:
		v, err := d.Material.Certificate.PEM()
		if err != nil {
			return sink.Result{}, fmt.Errorf("adoconnection: a certificate connection needs the private key as PEM: %w", err)
		}
		value = v.Reveal()
	case d.Material.Secret.IsZero():
		return sink.Result{}, sink.Permanent(errors.New("adoconnection: the delivery carries no credential"))
	default:
		value = d.Material.Secret.Reveal()
	}
	e, err := s.read(ctx)
	if err != nil {
		return sink.Result{}, err
	}
	if e == nil {
		return sink.Result{}, s.missing()
	}
	takeover, err := s.check(e, d.ClientID, d.TenantID, cert)
	if err != nil {
		return sink.Result{}, err
	}
	loc := fmt.Sprintf("%s/%s/_settings/adminservices?resourceId=%s", s.ref.orgURL, s.ref.project, e.id())
	cur := e.digest()
	if !takeover && s.holdsAt(d.KeyID, cur) {
		return sink.Result{Changed: false, Location: loc, Version: cur}, nil
	}
	body := deepCopy(e)
	ps := body.params()
	note := ""
	if cert {
		if !strings.EqualFold(e.param("authenticationType"), authCertificate) {
			note = "switched the connection from a key (spnKey) to a certificate (spnCertificate)"
		}
		delete(ps, "serviceprincipalkey")
		ps["authenticationType"], ps[paramCertificate] = authCertificate, value
	} else {
		ps["serviceprincipalkey"] = value
	}
	if takeover {
		note = strings.TrimPrefix(note+"; ", "; ") + fmt.Sprintf("adopted the connection: it signed in as %s of tenant %s, now as the application", e.param("serviceprincipalid"), e.param("tenantid"))
		ps["serviceprincipalid"], ps["tenantid"] = d.ClientID, d.TenantID
	}
	s.mu.Lock()
	s.attempted = true
	s.mu.Unlock()
	if _, err := s.c.Do(ctx, ado.Call{Op: "update service connection " + e.id(), Method: http.MethodPut,
		Path: "/_apis/serviceendpoint/endpoints/" + url.PathEscape(e.id()), In: map[string]any(body), Secret: value}); err != nil {
		return sink.Result{}, err
	}
	after, err := s.read(ctx)
	if err != nil {
		return sink.Result{}, fmt.Errorf("read the connection back after updating it: %w", err)
	}
	if after == nil {
		return sink.Result{}, sink.Transient(errors.New("the connection was gone right after rotor updated it"))
	}
	v := after.digest()
	s.mu.Lock()
	s.wroteKey, s.wroteVersion = d.KeyID, v
	s.mu.Unlock()
	return sink.Result{Changed: true, Location: loc, Note: note, Version: v}, nil
}

// holdsAt: rotor's last write (this sink's, or the recorded one) was keyID
// and left the connection at version v.
func (s *Sink) holdsAt(keyID, v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wroteKey != "" {
		return s.wroteKey == keyID && s.wroteVersion == v
	}
	return s.last != nil && s.last.KeyID == keyID && s.last.Version == v
}

// Holds says whether the connection holds keyID, as far as can be told
// without the key: it is the application's connection and rotor's last
// delivery to it was keyID. An edit since then (another version) is
// assumed to have kept the key, the safe answer for recovery.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	e, err := s.read(ctx)
	if err != nil || e == nil {
		return false, err
	}
	if !strings.EqualFold(e.param("serviceprincipalid"), s.app.AppID) {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wroteKey != "" {
		return s.wroteKey == keyID, nil
	}
	return s.last != nil && s.last.KeyID == keyID, nil
}

// Version is the connection's digest; "" while rotor has never delivered
// to it (the connection exists, but holds no key of rotor's) or when it is
// gone.
func (s *Sink) Version(ctx context.Context) (string, error) {
	s.mu.Lock()
	none := s.last == nil && !s.attempted
	s.mu.Unlock()
	if none {
		return "", nil
	}
	e, err := s.read(ctx)
	if err != nil || e == nil {
		return "", err
	}
	return e.digest(), nil
}

// Validate reads the connection and says whether a delivery would be
// accepted by rotor's own checks. Azure DevOps has no dry run: whether the
// identity may update the connection shows only at the first delivery.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	e, err := s.read(ctx)
	switch {
	case err != nil && ado.IsDenied(err):
		return sink.Failed(fmt.Sprintf("Azure DevOps refused %s: give it access to project %s (and the Administrator role on the connection; a PAT needs scope vso.serviceendpoint_manage): %v", s.c.Who(), s.ref.project, err), err)
	case err != nil:
		return sink.FromError(err, "")
	case e == nil:
		err := s.missing()
		return sink.Failed(err.Error(), err)
	}
	takeover, err := s.check(e, s.app.AppID, s.app.TenantID, s.certs)
	if err != nil {
		return sink.Failed(err.Error(), err)
	}
	what := fmt.Sprintf("service connection %q (%s) signs in as application %s", e.str("name"), e.id(), s.app.AppID)
	if takeover {
		what = fmt.Sprintf("service connection %q (%s) signs in as %s; adopt is set, so the first delivery points it at application %s", e.str("name"), e.id(), e.param("serviceprincipalid"), s.app.AppID)
	}
	return sink.Ready(what + "; Azure DevOps has no dry run, so whether " + s.c.Who() + " may update it (Administrator role on the connection) shows at the first delivery")
}
