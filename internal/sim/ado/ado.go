// Package ado is the simulated Azure DevOps (REST api-version 7.1): one
// organization backed by an Entra tenant of the simulator, its projects,
// azurerm service connections and variable groups, with Azure DevOps' two
// ways in (a personal access token as Basic auth, or an Entra token for
// Azure DevOps' application id) and its habits: a bad PAT gets 203 and an
// HTML sign-in page, a service connection's key and a secret variable's
// value never read back, a PUT replaces the whole object.
//
// It serves on a listener of its own, at https://127.0.0.1:PORT/{org}/…,
// the paths of https://dev.azure.com/{org}/…. Values live in memory only.
package ado

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// Names of what the demo seeds.
const (
	DemoOrganization  = "contoso"
	DemoProject       = "payments"
	DemoEndpointName  = "api-payments-prod"
	DemoGroupName     = "payments-secrets"
	DemoVariable      = "API_PAYMENTS_CLIENT_SECRET"
	demoApp           = "api-payments"
	maxBody           = 256 * 1024
	serviceName       = "ado"
	typeKeyBadRequest = "ArgumentException"
)

// access is what an identity may do in the organization.
type access int

const (
	accessNone access = iota
	accessRead
	accessFull
)

type identity struct {
	id, name string
	access   access
}

// endpoint is a service connection as stored: the JSON object exactly as
// last written (every field kept, the key removed) and the key.
type endpoint struct {
	raw map[string]any
	key string
	// rev counts writes, for tests reading through the control routes; the
	// REST API has no such field.
	rev int
}

type variable struct {
	value    string
	isSecret bool
	// extra keeps a variable's other fields (isReadOnly …) as sent.
	extra map[string]any
	rev   int
}

type group struct {
	id         int
	raw        map[string]any // every field but variables and the server's
	vars       map[string]*variable
	createdBy  map[string]any
	createdOn  time.Time
	modifiedBy map[string]any
	modifiedOn time.Time
}

type project struct{ id, name string }

// Service is the Azure DevOps service.
type Service struct {
	*core.Core
	l *core.Listener

	mu        sync.Mutex
	org       string
	tenantID  string
	projects  []*project
	members   map[string]*identity // Entra object id -> identity
	pats      map[[32]byte]*identity
	endpoints map[string]*endpoint
	groups    map[int]*group
	nextGroup int
	info      simfile.AzureDevOps
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// Register seeds the organization and asks for the service's listener.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.members = map[string]*identity{}
	s.pats = map[[32]byte]*identity{}
	s.endpoints = map[string]*endpoint{}
	s.groups = map[int]*group{}
	s.nextGroup = 1
	if err := s.seed(); err != nil {
		return err
	}
	s.l = r.Listen("ado", true, s.WithFaults(nil, http.HandlerFunc(s.serve)))
	return nil
}

// Started records the organization's URL in sim.json.
func (s *Service) Started(info *simfile.Info) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.URL = "https://" + s.l.HostPort() + "/" + s.org
	ai := s.info
	if info.CAFile != "" {
		path := filepath.Join(filepath.Dir(info.CAFile), PATFile)
		if err := simfile.WriteFileAtomic(path, []byte(ai.PAT+"\n"), 0o600); err != nil {
			return fmt.Errorf("ado: write %s: %w", PATFile, err)
		}
		ai.PATFile = path
	}
	info.AzureDevOps = &ai
	return nil
}

// PATFile is the file beside sim.json holding the administrator's PAT.
const PATFile = "ado-pat"

// seed makes the organization on the demo's contoso tenant (or the first
// tenant of a bulk seed), with the rotation identity as a member and one
// service connection and one variable group for an application rotor
// rotates.
func (s *Service) seed() error {
	w := s.World()
	w.RLock()
	defer w.RUnlock()
	var t *core.Tenant
	if t = w.TenantLocked("contoso"); t == nil {
		ts := w.TenantsLocked()
		if len(ts) == 0 {
			return fmt.Errorf("ado: no tenant to back the organization")
		}
		t = ts[0]
	}
	s.org, s.tenantID = DemoOrganization, t.ID
	p := &project{id: uuid.NewString(), name: DemoProject}
	s.projects = []*project{p}
	if sp := t.SPByAppID(t.RotationClientID); sp != nil {
		s.members[sp.ObjectID] = &identity{id: sp.ObjectID, name: sp.DisplayName, access: accessFull}
	}
	var app *core.Application
	for _, a := range t.Apps {
		if a.DisplayName == demoApp {
			app = a
			break
		}
	}
	if rot := t.SPByAppID(t.RotationClientID); app == nil && rot != nil {
		for _, a := range t.Apps {
			if a.OwnedBy(rot.ObjectID) {
				app = a
				break
			}
		}
	}
	info := simfile.AzureDevOps{Organization: s.org, Project: p.name, TenantID: t.ID, Resource: core.AzureDevOpsResource}
	var err error
	for _, x := range []struct {
		dst  *string
		name string
		acc  access
	}{{&info.PAT, "Ada Admin", accessFull}, {&info.ReadOnlyPAT, "Rita Reader", accessRead}, {&info.NoAccessPAT, "Otto Outsider", accessNone}} {
		if *x.dst, err = core.RandomToken(39); err != nil {
			return fmt.Errorf("ado: PAT: %w", err)
		}
		s.pats[core.HashSecret(*x.dst)] = &identity{id: uuid.NewString(), name: x.name, access: x.acc}
	}
	if app != nil {
		info.AppID, info.AppName = app.AppID, app.DisplayName
		id := uuid.NewString()
		s.endpoints[id] = &endpoint{raw: NewAzureRMEndpoint(id, DemoEndpointName, app.AppID, t.ID, p), key: "seeded-by-a-person"}
		info.EndpointID, info.EndpointName = id, DemoEndpointName
	}
	now := s.Clock().Now().UTC()
	g := &group{id: s.nextGroup, createdOn: now, modifiedOn: now, createdBy: identityRef("Ada Admin"), modifiedBy: identityRef("Ada Admin"),
		raw: map[string]any{"name": DemoGroupName, "description": "Secrets of the payments pipelines", "type": "Vsts",
			"variableGroupProjectReferences": []any{projectRef(p, DemoGroupName)}},
		vars: map[string]*variable{
			"PAYMENTS_REGION":   {value: "westeurope"},
			"SQL_PASSWORD":      {value: "someone-elses-sql-password", isSecret: true},
			"PAYMENTS_TIMEOUT":  {value: "30s"},
			"WEBHOOK_SIGNATURE": {value: "someone-elses-signing-key", isSecret: true},
		}}
	s.nextGroup++
	s.groups[g.id] = g
	info.VariableGroupID, info.VariableGroupName, info.Variable = g.id, DemoGroupName, DemoVariable
	s.info = info
	return nil
}

// NewAzureRMEndpoint is the JSON object of an azurerm service connection
// with a service principal and key (the key not included), as Azure DevOps
// returns it.
func NewAzureRMEndpoint(id, name, clientID, tenantID string, p *project) map[string]any {
	ref := map[string]any{"name": name, "description": "", "projectReference": map[string]any{"id": p.id, "name": p.name}}
	return map[string]any{
		"id": id, "name": name, "type": "azurerm", "url": "https://management.azure.com/",
		"description": "Deploys the payments API",
		"createdBy":   identityRef("Ada Admin"),
		"authorization": map[string]any{"scheme": "ServicePrincipal", "parameters": map[string]any{
			"authenticationType": "spnKey", "serviceprincipalid": clientID, "tenantid": tenantID}},
		"data": map[string]any{"subscriptionId": "00000000-0000-0000-0000-000000000001", "subscriptionName": "Payments Prod",
			"environment": "AzureCloud", "scopeLevel": "Subscription", "creationMode": "Manual"},
		"isShared": false, "isReady": true, "owner": "Library",
		"serviceEndpointProjectReferences": []any{ref},
	}
}

func identityRef(name string) map[string]any {
	return map[string]any{"displayName": name, "id": uuid.NewString(), "uniqueName": strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@contoso.com"}
}

func projectRef(p *project, name string) map[string]any {
	return map[string]any{"name": name, "description": "", "projectReference": map[string]any{"id": p.id, "name": p.name}}
}

// adoError is Azure DevOps' error body.
func adoError(w http.ResponseWriter, status int, typeKey, msg string) {
	core.WriteJSON(w, status, core.PlainJSON, map[string]any{
		"$id": "1", "innerException": nil, "message": msg,
		"typeName": "Microsoft.VisualStudio.Services.WebApi." + typeKey + ", Microsoft.VisualStudio.Services.WebApi",
		"typeKey":  typeKey, "errorCode": 0, "eventId": 3000,
	})
}

// signInPage is what Azure DevOps answers a request whose PAT it does not
// know: 203 Non-Authoritative Information with its HTML sign-in page.
func signInPage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNonAuthoritativeInfo)
	_, _ = io.WriteString(w, "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body>Sign in to your account</body></html>")
}

// authenticate finds who is calling; it writes the refusal itself.
func (s *Service) authenticate(w http.ResponseWriter, r *http.Request) (*identity, bool) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(strings.TrimSpace(h), " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			signInPage(w)
			return nil, false
		}
		_, pat, _ := strings.Cut(string(b), ":")
		s.mu.Lock()
		id := s.pats[core.HashSecret(pat)]
		s.mu.Unlock()
		if id == nil {
			signInPage(w)
			return nil, false
		}
		return s.member(w, id)
	case strings.EqualFold(scheme, "Bearer"):
		caller, err := s.Authenticate(r, core.AzureDevOpsResource)
		if err != nil {
			adoError(w, http.StatusUnauthorized, "UnauthorizedRequestException", "TF400813: The user is not authorized to access this resource. "+err.Error())
			return nil, false
		}
		s.mu.Lock()
		id := s.members[caller.ObjectID]
		tenant := s.tenantID
		s.mu.Unlock()
		if caller.TenantID != tenant || id == nil {
			adoError(w, http.StatusUnauthorized, "UnauthorizedRequestException",
				fmt.Sprintf("TF400813: The user '%s' is not authorized to access this resource.", caller.ObjectID))
			return nil, false
		}
		return s.member(w, id)
	}
	w.Header().Set("WWW-Authenticate", `Bearer authorization_uri=`+s.AuthorityHost()+s.tenantID+`, Basic realm="https://dev.azure.com/"`)
	adoError(w, http.StatusUnauthorized, "UnauthorizedRequestException", "TF400813: The user is not authorized to access this resource.")
	return nil, false
}

func (s *Service) member(w http.ResponseWriter, id *identity) (*identity, bool) {
	if id.access == accessNone {
		adoError(w, http.StatusUnauthorized, "UnauthorizedRequestException",
			fmt.Sprintf("TF400813: The user '%s' is not authorized to access this resource.", id.name))
		return nil, false
	}
	return id, true
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ActivityId", uuid.NewString())
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 2 && parts[0] == "_sim" && parts[1] == "ado" {
		s.serveControl(w, r, parts[2:])
		return
	}
	if len(parts) < 3 || !strings.EqualFold(parts[0], s.org) {
		adoError(w, http.StatusNotFound, "AccountNotFoundException", "TF400898: The organization was not found.")
		return
	}
	id, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if v := r.URL.Query().Get("api-version"); v == "" {
		adoError(w, http.StatusBadRequest, "VssVersionNotSpecifiedException", "No api-version was supplied for the "+r.Method+" request.")
		return
	}
	rest := parts[1:]
	var p *project
	if rest[0] != "_apis" {
		if p = s.project(rest[0]); p == nil {
			adoError(w, http.StatusNotFound, "ProjectDoesNotExistWithNameException", fmt.Sprintf("TF200016: The following project does not exist: %s.", rest[0]))
			return
		}
		rest = rest[1:]
	}
	if len(rest) < 3 || rest[0] != "_apis" {
		adoError(w, http.StatusNotFound, "ApiResourceNotFoundException", "API resource location was not found.")
		return
	}
	area := rest[1] + "/" + rest[2]
	var itemID string
	if len(rest) == 4 {
		itemID = rest[3]
	} else if len(rest) > 4 {
		adoError(w, http.StatusNotFound, "ApiResourceNotFoundException", "API resource location was not found.")
		return
	}
	write := r.Method != http.MethodGet
	if write && id.access < accessFull {
		adoError(w, http.StatusForbidden, "AccessCheckException",
			fmt.Sprintf("Access Denied: %s needs the following permission(s) on the resource to perform this action: Administer", id.name))
		return
	}
	switch {
	case area == "serviceendpoint/endpoints" && r.Method == http.MethodGet && p != nil && itemID == "":
		s.listEndpoints(w, r, p)
	case area == "serviceendpoint/endpoints" && r.Method == http.MethodGet && p != nil:
		s.getEndpoint(w, p, itemID)
	case area == "serviceendpoint/endpoints" && r.Method == http.MethodPut && p == nil && itemID != "":
		s.putEndpoint(w, r, itemID)
	case area == "distributedtask/variablegroups" && r.Method == http.MethodGet && p != nil && itemID == "":
		s.listGroups(w, r, p)
	case area == "distributedtask/variablegroups" && r.Method == http.MethodGet && p != nil:
		s.getGroup(w, p, itemID)
	case area == "distributedtask/variablegroups" && r.Method == http.MethodPut && p == nil && itemID != "":
		s.putGroup(w, r, id, itemID)
	default:
		adoError(w, http.StatusNotFound, "ApiResourceNotFoundException", fmt.Sprintf("API resource location was not found for %s %s.", r.Method, r.URL.Path))
	}
}

func (s *Service) project(nameOrID string) *project {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.projects {
		if strings.EqualFold(p.name, nameOrID) || strings.EqualFold(p.id, nameOrID) {
			return p
		}
	}
	return nil
}

// inProject reports whether refs (serviceEndpointProjectReferences or
// variableGroupProjectReferences) name p.
func inProject(refs any, p *project) bool {
	list, _ := refs.([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		pr, _ := m["projectReference"].(map[string]any)
		if id, _ := pr["id"].(string); strings.EqualFold(id, p.id) {
			return true
		}
		if name, _ := pr["name"].(string); strings.EqualFold(name, p.name) {
			return true
		}
	}
	return false
}

// masked is the endpoint as GET shows it: the key is never returned.
func (e *endpoint) masked() map[string]any {
	out := deepCopy(e.raw)
	if a, ok := out["authorization"].(map[string]any); ok {
		if ps, ok := a["parameters"].(map[string]any); ok {
			delete(ps, "serviceprincipalkey")
		}
	}
	return out
}

func (s *Service) listEndpoints(w http.ResponseWriter, r *http.Request, p *project) {
	typ := r.URL.Query().Get("type")
	var names []string
	if n := r.URL.Query().Get("endpointNames"); n != "" {
		names = strings.Split(n, ",")
	}
	s.mu.Lock()
	var out []any
	for _, id := range core.SortedKeys(s.endpoints) {
		e := s.endpoints[id]
		if !inProject(e.raw["serviceEndpointProjectReferences"], p) {
			continue
		}
		if t, _ := e.raw["type"].(string); typ != "" && !strings.EqualFold(t, typ) {
			continue
		}
		if n, _ := e.raw["name"].(string); names != nil && !slices.ContainsFunc(names, func(x string) bool { return strings.EqualFold(x, n) }) {
			continue
		}
		out = append(out, e.masked())
	}
	s.mu.Unlock()
	if out == nil {
		out = []any{}
	}
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{"count": len(out), "value": out})
}

// getEndpoint answers as Azure DevOps does for an id it does not know in
// the project: 200 with an empty body (null).
func (s *Service) getEndpoint(w http.ResponseWriter, p *project, id string) {
	s.mu.Lock()
	e := s.endpoints[strings.ToLower(id)]
	var body any
	if e != nil && inProject(e.raw["serviceEndpointProjectReferences"], p) {
		body = e.masked()
	}
	s.mu.Unlock()
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, body)
}

func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var m map[string]any
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(b) > maxBody {
		err = fmt.Errorf("too large")
	}
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || m == nil {
		msg := "The request body could not be read as a JSON object."
		if err != nil {
			msg = "The request body is not valid JSON: " + core.JSONErrorMessage(err)
		}
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, msg)
		return nil, false
	}
	return m, true
}

// putEndpoint replaces the connection with the body: the whole object, the
// id unchanged. Fields it does not know are kept as sent; a body that
// drops what every connection needs is refused. A key left out (or null or
// empty) keeps the stored one.
func (s *Service) putEndpoint(w http.ResponseWriter, r *http.Request, id string) {
	id = strings.ToLower(id)
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.endpoints[id]
	if e == nil {
		adoError(w, http.StatusNotFound, "ServiceEndpointNotFoundException", fmt.Sprintf("Service connection with id %s does not exist.", id))
		return
	}
	if bid, _ := body["id"].(string); !strings.EqualFold(bid, id) {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, "The id of the service connection in the body must be the id in the URL.")
		return
	}
	if t, _ := body["type"].(string); !strings.EqualFold(t, e.raw["type"].(string)) {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, "The type of a service connection cannot be changed.")
		return
	}
	if n, _ := body["name"].(string); n == "" {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, "Value cannot be null.\r\nParameter name: endpoint.Name")
		return
	}
	auth, _ := body["authorization"].(map[string]any)
	scheme, _ := auth["scheme"].(string)
	if scheme == "" {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, "Value cannot be null.\r\nParameter name: endpoint.Authorization.Scheme")
		return
	}
	if refs, _ := body["serviceEndpointProjectReferences"].([]any); len(refs) == 0 {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, "Value cannot be null.\r\nParameter name: endpoint.ServiceEndpointProjectReferences")
		return
	}
	key := e.key
	if ps, ok := auth["parameters"].(map[string]any); ok {
		if k, _ := ps["serviceprincipalkey"].(string); k != "" {
			key = k
		}
		delete(ps, "serviceprincipalkey")
	}
	body["id"] = id
	e.raw, e.key = body, key
	e.rev++
	s.RecordConsumer(serviceName, fmt.Sprintf("%s/%s/serviceendpoint/%s", s.org, s.projectOf(body), id), "", key)
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, e.masked())
}

// projectOf names the first project a connection or group is shared with.
func (s *Service) projectOf(obj map[string]any) string {
	for _, p := range s.projects {
		if inProject(obj["serviceEndpointProjectReferences"], p) || inProject(obj["variableGroupProjectReferences"], p) {
			return p.name
		}
	}
	return "-"
}

func (g *group) view() map[string]any {
	out := deepCopy(g.raw)
	vars := map[string]any{}
	for name, v := range g.vars {
		m := deepCopy(v.extra)
		if m == nil {
			m = map[string]any{}
		}
		if v.isSecret {
			m["value"], m["isSecret"] = nil, true
		} else {
			m["value"] = v.value
		}
		vars[name] = m
	}
	out["id"] = g.id
	out["variables"] = vars
	out["createdBy"], out["createdOn"] = g.createdBy, g.createdOn.Format(time.RFC3339Nano)
	out["modifiedBy"], out["modifiedOn"] = g.modifiedBy, g.modifiedOn.Format(time.RFC3339Nano)
	if _, ok := out["isShared"]; !ok {
		out["isShared"] = false
	}
	return out
}

func (s *Service) listGroups(w http.ResponseWriter, r *http.Request, p *project) {
	name := r.URL.Query().Get("groupName")
	s.mu.Lock()
	ids := make([]int, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := []any{}
	for _, id := range ids {
		g := s.groups[id]
		n, _ := g.raw["name"].(string)
		if !inProject(g.raw["variableGroupProjectReferences"], p) || (name != "" && !strings.EqualFold(n, name)) {
			continue
		}
		out = append(out, g.view())
	}
	s.mu.Unlock()
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{"count": len(out), "value": out})
}

func (s *Service) getGroup(w http.ResponseWriter, p *project, sid string) {
	id, err := strconv.Atoi(sid)
	if err != nil {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, fmt.Sprintf("The value '%s' is not a valid variable group id.", sid))
		return
	}
	s.mu.Lock()
	g := s.groups[id]
	var body any
	if g != nil && inProject(g.raw["variableGroupProjectReferences"], p) {
		body = g.view()
	}
	s.mu.Unlock()
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, body)
}

// putGroup replaces the group with the body: its variables replace the
// set (a variable not sent is deleted), a secret sent with value null
// keeps its value. A body without project references is refused with
// 401, as Azure DevOps was reported to answer.
func (s *Service) putGroup(w http.ResponseWriter, r *http.Request, who *identity, sid string) {
	id, err := strconv.Atoi(sid)
	if err != nil {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, fmt.Sprintf("The value '%s' is not a valid variable group id.", sid))
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[id]
	if g == nil {
		adoError(w, http.StatusNotFound, "VariableGroupNotFoundException", fmt.Sprintf("Variable group with id %d does not exist.", id))
		return
	}
	if refs, _ := body["variableGroupProjectReferences"].([]any); len(refs) == 0 {
		adoError(w, http.StatusUnauthorized, "UnauthorizedRequestException",
			fmt.Sprintf("TF400813: The user '%s' is not authorized to access this resource.", who.name))
		return
	}
	if n, _ := body["name"].(string); n == "" {
		adoError(w, http.StatusBadRequest, typeKeyBadRequest, "Value cannot be null.\r\nParameter name: variableGroupParameters.Name")
		return
	}
	sent, _ := body["variables"].(map[string]any)
	vars := map[string]*variable{}
	var written []string
	for name, x := range sent {
		m, _ := x.(map[string]any)
		v := &variable{extra: map[string]any{}}
		for k, val := range m {
			if k != "value" && k != "isSecret" {
				v.extra[k] = val
			}
		}
		v.isSecret, _ = m["isSecret"].(bool)
		old := g.vars[name]
		val, isString := m["value"].(string)
		switch {
		case v.isSecret && !isString && old != nil && old.isSecret:
			v.value, v.rev = old.value, old.rev // null keeps a secret
		case isString:
			v.value = val
			if old != nil {
				v.rev = old.rev
			}
			if old == nil || old.value != val || old.isSecret != v.isSecret {
				v.rev++
			}
			if v.isSecret {
				written = append(written, name)
			}
		}
		vars[name] = v
	}
	for k := range body {
		switch k {
		case "id", "variables", "createdBy", "createdOn", "modifiedBy", "modifiedOn":
			delete(body, k)
		}
	}
	g.raw, g.vars = body, vars
	g.modifiedOn = s.later(g.modifiedOn)
	g.modifiedBy = identityRef(who.name)
	target := fmt.Sprintf("%s/%s/variablegroup/%d", s.org, s.projectOf(body), id)
	for _, name := range written {
		s.RecordConsumer(serviceName, target, name, vars[name].value)
	}
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, g.view())
}

// later is now, or just after prev when the clock has not moved, so that
// every write shows a new modifiedOn.
func (s *Service) later(prev time.Time) time.Time {
	now := s.Clock().Now().UTC()
	if !now.After(prev) {
		now = prev.Add(100 * time.Nanosecond)
	}
	return now
}

func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (s *Service) isAdmin(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.AdminToken())) == 1
}
