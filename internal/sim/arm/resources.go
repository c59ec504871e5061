package arm

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// This file is what the resource-group-scoped surfaces (Automation,
// automation.go; Logic Apps API connections, webconnections.go) share:
// their in-memory state, the routing of
// /subscriptions/{s}/resourceGroups/{rg}/providers/{namespace}/…, ARM's
// role checks for reads and writes, and the cross-tenant check of
// x-ms-authorization-auxiliary. The state lives here rather than in core's
// World because only ARM serves it; it has its own lock, always taken
// after the world's when both are held.

// Roles the seed assigns on Automation accounts and API connections. Any
// role reads (as every built-in role does); these also write.
const (
	RoleContributor = "Contributor"
	RoleOwner       = "Owner"
	// RoleAutomationOperator may start jobs (and read them), not change
	// runbooks.
	RoleAutomationOperator = "Automation Operator"
	// RoleLogicAppContributor may change Logic Apps and their connections.
	RoleLogicAppContributor = "Logic App Contributor"
)

// resources is the state of the resource-group-scoped surfaces.
type resources struct {
	mu sync.Mutex
	// accounts by lower-case resource id.
	accounts map[string]*AutomationAccount
	// connections by lower-case resource id.
	connections map[string]*APIConnection
}

// services maps each running simulator's core to its ARM service, for Of.
var services sync.Map // *core.Core → *Service

// Of returns the ARM service of a simulator core (a test's sim.Server.Core),
// for arranging and inspecting Automation accounts and API connections
// the way someone with the portal would; nil when c has none.
func Of(c *core.Core) *Service {
	v, ok := services.Load(c)
	if !ok {
		return nil
	}
	return v.(*Service)
}

// rgPath is a parsed resource-group-scoped path:
// /subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{rest…}.
type rgPath struct {
	sub, rg, ns string
	rest        []string
}

func parseRGPath(segs []string) (rgPath, bool) {
	if len(segs) < 6 || !strings.EqualFold(segs[0], "subscriptions") || !strings.EqualFold(segs[2], "resourceGroups") ||
		!strings.EqualFold(segs[4], "providers") {
		return rgPath{}, false
	}
	return rgPath{sub: segs[1], rg: segs[3], ns: segs[5], rest: segs[6:]}, true
}

// rgID is the resource group's id as ARM spells it.
func (p rgPath) rgID() string { return "/subscriptions/" + p.sub + "/resourceGroups/" + p.rg }

// serveResource routes the resource-group-scoped surfaces; false when the
// path is none of theirs.
func (c *call) serveResource(segs []string) bool {
	p, ok := parseRGPath(segs)
	if !ok {
		return false
	}
	switch {
	case strings.EqualFold(p.ns, "Microsoft.Automation") && len(p.rest) >= 2 && strings.EqualFold(p.rest[0], "automationAccounts"):
		if c.apiVersion(automationVersions, "automationAccounts") {
			c.serveAutomation(p)
		}
		return true
	case strings.EqualFold(p.ns, "Microsoft.Web") && len(p.rest) >= 1 && strings.EqualFold(p.rest[0], "connections"):
		if c.apiVersion(connectionVersions, "connections") {
			c.serveConnections(p)
		}
		return true
	}
	return false
}

// authorize checks, under the world's read lock, that the caller may
// perform action on resourceID in subscription sub: a role covering it for
// a read, one of writeRoles for a write. It returns the refusal to write
// once the lock is released, or nil.
func (c *call) authorize(sub, resourceID, action string, writeRoles []string) (*core.Tenant, func()) {
	t, _, fail := c.subscription(sub, action)
	if fail != nil {
		return nil, fail
	}
	ok := false
	for _, a := range t.RoleAssignments {
		if a.PrincipalID != c.caller.ObjectID || !covers(a.Scope, resourceID) {
			continue
		}
		if writeRoles == nil {
			ok = true
			break
		}
		for _, r := range writeRoles {
			if strings.EqualFold(a.Role, r) {
				ok = true
			}
		}
	}
	if !ok {
		return nil, c.denied(action, resourceID)
	}
	return t, nil
}

// denied is ARM's 403 AuthorizationFailed for action on scope.
func (c *call) denied(action, scope string) func() {
	msg := fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. "+
		"If access was recently granted, please refresh your credentials.", c.caller.AppID, c.caller.ObjectID, action, scope)
	return func() { armError(c.w, http.StatusForbidden, "AuthorizationFailed", msg) }
}

// covers reports whether scope is id or one of its ancestors, ignoring
// case (core's scopeCovers, which is unexported).
func covers(scope, id string) bool {
	scope, id = strings.TrimSuffix(strings.ToLower(scope), "/"), strings.TrimSuffix(strings.ToLower(id), "/")
	return scope != "" && (id == scope || strings.HasPrefix(id, scope+"/"))
}

// maxAuxiliaryTokens is ARM's limit on x-ms-authorization-auxiliary.
const maxAuxiliaryTokens = 3

// checkAuxiliary enforces a resource linked to another tenant: the request
// must carry, in x-ms-authorization-auxiliary, a valid ARM token of the
// same application issued by linkedTenant (at most three tokens,
// comma-separated, each "Bearer <jwt>"). Missing → 403
// LinkedAuthorizationFailed; more than three → 400; an invalid or expired
// one → 401. It returns true when the request may go on. Callers hold no
// lock.
func (c *call) checkAuxiliary(linkedTenant, resourceID string) bool {
	if linkedTenant == "" {
		return true
	}
	h := c.r.Header.Get("x-ms-authorization-auxiliary")
	var toks []string
	for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == ',' || r == ';' }) {
		if p := strings.TrimSpace(part); p != "" {
			toks = append(toks, p)
		}
	}
	if len(toks) > maxAuxiliaryTokens {
		armError(c.w, http.StatusBadRequest, "AuxiliaryTokenCountExceeded",
			fmt.Sprintf("The request has %d auxiliary tokens in the 'x-ms-authorization-auxiliary' header; at most %d are allowed.", len(toks), maxAuxiliaryTokens))
		return false
	}
	for _, tok := range toks {
		r := c.r.Clone(c.r.Context())
		r.Header = http.Header{"Authorization": {tok}}
		aux, err := c.s.Authenticate(r, core.ARMResource)
		if err != nil {
			msg := "The access token in the 'x-ms-authorization-auxiliary' header is invalid."
			if ae, ok := err.(*core.AuthError); ok && ae.Message != "" {
				msg = "The access token in the 'x-ms-authorization-auxiliary' header is invalid: " + ae.Message
			}
			armUnauthorized(c.w, "InvalidAuthenticationToken", msg)
			return false
		}
		if strings.EqualFold(aux.TenantID, linkedTenant) && aux.AppID == c.caller.AppID {
			return true
		}
	}
	armError(c.w, http.StatusForbidden, "LinkedAuthorizationFailed", fmt.Sprintf(
		"The client '%s' with object id '%s' has permission to perform action on scope '%s'; however, it does not have permission on the linked tenant '%s': "+
			"the request needs a token of the same client for that tenant in the 'x-ms-authorization-auxiliary' header.",
		c.caller.AppID, c.caller.ObjectID, resourceID, linkedTenant))
	return false
}

// seedResources seeds every tenant's Automation account and API
// connections; the first tenant's linked connection points at the second
// tenant when there is one.
func (s *Service) seedResources() {
	s.res.accounts = map[string]*AutomationAccount{}
	s.res.connections = map[string]*APIConnection{}
	w := s.World()
	w.Lock()
	defer w.Unlock()
	ts := w.TenantsLocked()
	for i, t := range ts {
		linked := ""
		if i == 0 && len(ts) > 1 {
			linked = ts[1].ID
		}
		s.seedAutomation(t)
		s.seedConnections(t, linked)
	}
}

// publishedResources lists the seeded resources for sim.json.
func (s *Service) publishedResources() []simfile.ARMResource {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	var out []simfile.ARMResource
	for _, k := range core.SortedKeys(s.res.accounts) {
		a := s.res.accounts[k]
		var runbooks []string
		for _, n := range core.SortedKeys(a.runbooks) {
			runbooks = append(runbooks, a.runbooks[n].Name)
		}
		out = append(out, simfile.ARMResource{Type: "Microsoft.Automation/automationAccounts", TenantID: a.TenantID, ID: a.ResourceID(),
			Runbooks: runbooks, WorkerGroups: append([]string(nil), a.workerGroups...)})
	}
	for _, k := range core.SortedKeys(s.res.connections) {
		c := s.res.connections[k]
		out = append(out, simfile.ARMResource{Type: "Microsoft.Web/connections", TenantID: c.TenantID, ID: c.ResourceID(), API: c.API, LinkedTenant: c.LinkedTenant})
	}
	return out
}

// RegisterInTenant makes the application appID of tenant home usable in
// tenant other, as a multi-tenant application's service principal there
// would be: the simulator's token endpoint finds clients only among the
// tenant's own applications, so the application is registered in other
// with the same client id and the same passwords. Tests use it for
// cross-tenant requests (x-ms-authorization-auxiliary). Callers hold no
// lock.
func (s *Service) RegisterInTenant(appID, home, other string) error {
	w := s.World()
	w.Lock()
	defer w.Unlock()
	h, o := w.TenantLocked(home), w.TenantLocked(other)
	if h == nil || o == nil {
		return fmt.Errorf("no tenant %s or %s", home, other)
	}
	app := h.AppByAppID(appID)
	if app == nil {
		return fmt.Errorf("tenant %s has no application %s", home, appID)
	}
	if o.AppByAppID(appID) != nil {
		return nil
	}
	cp := &core.Application{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: app.DisplayName, SignInAudience: "AzureADMultipleOrgs",
		CreatedDateTime: app.CreatedDateTime, Passwords: app.Passwords}
	o.AddApp(cp)
	o.AddSP(&core.ServicePrincipal{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: app.DisplayName})
	return nil
}
