package ado

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// The control routes under /_sim/ado/ (admin token) are the test double's
// back door: they read what the REST API never shows (a connection's key,
// a secret variable's value) and change things as a person in the portal
// would, for tests and the demo.
//
//	POST /_sim/ado/endpoints            {"name","client_id","tenant_id","key"} -> the connection
//	GET  /_sim/ado/endpoints/{id}       the stored object with "key" and "rev"
//	PUT  /_sim/ado/endpoints/{id}       {"client_id"?,"key"?,"description"?}: a person's edit
//	POST /_sim/ado/variablegroups       {"name","variables":{N:{value,isSecret}}} -> {"id"}
//	GET  /_sim/ado/variablegroups/{id}  with values and each variable's "rev"
//	PUT  /_sim/ado/variablegroups/{id}/variables/{name}  {"value","isSecret"}: a person's edit
func (s *Service) serveControl(w http.ResponseWriter, r *http.Request, parts []string) {
	if !s.isAdmin(r) {
		adoError(w, http.StatusUnauthorized, "UnauthorizedRequestException", "the control API needs the admin token")
		return
	}
	var body struct {
		Name        string                    `json:"name"`
		ClientID    string                    `json:"client_id"`
		TenantID    string                    `json:"tenant_id"`
		Key         *string                   `json:"key"`
		Description *string                   `json:"description"`
		Value       string                    `json:"value"`
		IsSecret    bool                      `json:"isSecret"`
		Variables   map[string]map[string]any `json:"variables"`
	}
	if r.Method != http.MethodGet {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			adoError(w, http.StatusBadRequest, typeKeyBadRequest, "bad control body: "+core.JSONErrorMessage(err))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[0]
	now := s.Clock().Now().UTC()
	switch {
	case len(parts) == 1 && parts[0] == "endpoints" && r.Method == http.MethodPost:
		id := uuid.NewString()
		tenant := body.TenantID
		if tenant == "" {
			tenant = s.tenantID
		}
		e := &endpoint{raw: NewAzureRMEndpoint(id, body.Name, body.ClientID, tenant, p)}
		if body.Key != nil {
			e.key = *body.Key
		}
		s.endpoints[id] = e
		core.WriteJSON(w, http.StatusCreated, core.PlainJSON, e.masked())
	case len(parts) == 2 && parts[0] == "endpoints":
		e := s.endpoints[strings.ToLower(parts[1])]
		if e == nil {
			adoError(w, http.StatusNotFound, "ServiceEndpointNotFoundException", "no such connection")
			return
		}
		if r.Method == http.MethodPut {
			ps := e.raw["authorization"].(map[string]any)["parameters"].(map[string]any)
			if body.ClientID != "" {
				ps["serviceprincipalid"] = body.ClientID
			}
			if body.Key != nil {
				e.key = *body.Key
			}
			if body.Description != nil {
				e.raw["description"] = *body.Description
			}
			e.rev++
		}
		out := deepCopy(e.raw)
		out["key"], out["rev"] = e.key, e.rev
		core.WriteJSON(w, http.StatusOK, core.PlainJSON, out)
	case len(parts) == 1 && parts[0] == "variablegroups" && r.Method == http.MethodPost:
		g := &group{id: s.nextGroup, createdOn: now, modifiedOn: now, createdBy: identityRef("Ada Admin"), modifiedBy: identityRef("Ada Admin"),
			raw:  map[string]any{"name": body.Name, "type": "Vsts", "variableGroupProjectReferences": []any{projectRef(p, body.Name)}},
			vars: map[string]*variable{}}
		for n, v := range body.Variables {
			val, _ := v["value"].(string)
			sec, _ := v["isSecret"].(bool)
			g.vars[n] = &variable{value: val, isSecret: sec, rev: 1}
		}
		s.nextGroup++
		s.groups[g.id] = g
		core.WriteJSON(w, http.StatusCreated, core.PlainJSON, map[string]any{"id": g.id})
	case len(parts) >= 2 && parts[0] == "variablegroups":
		id, _ := strconv.Atoi(parts[1])
		g := s.groups[id]
		if g == nil {
			adoError(w, http.StatusNotFound, "VariableGroupNotFoundException", "no such group")
			return
		}
		if len(parts) == 4 && parts[2] == "variables" && r.Method == http.MethodPut {
			v := g.vars[parts[3]]
			if v == nil {
				v = &variable{}
				g.vars[parts[3]] = v
			}
			v.value, v.isSecret = body.Value, body.IsSecret
			v.rev++
			g.modifiedOn = s.later(g.modifiedOn)
		}
		out := g.view()
		vars := map[string]any{}
		for n, v := range g.vars {
			vars[n] = map[string]any{"value": v.value, "isSecret": v.isSecret, "rev": v.rev}
		}
		out["variables"] = vars
		core.WriteJSON(w, http.StatusOK, core.PlainJSON, out)
	default:
		adoError(w, http.StatusNotFound, "ApiResourceNotFoundException", fmt.Sprintf("no control route %s %s", r.Method, r.URL.Path))
	}
}
