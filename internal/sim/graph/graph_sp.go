package graph

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file serves /servicePrincipals: create (how a multi-tenant app gets
// its stub in another tenant), get, a filtered list, and ownedObjects (how an
// OwnedBy identity finds the apps it manages).
//
// Reading service principals needs any of the application permissions the
// simulator models: an OwnedBy identity must be able to find its own
// service principal's object id to list what it owns.

const spTypeName = "microsoft.graph.servicePrincipal"

var spProps = []string{
	"id", "deletedDateTime", "accountEnabled", "appId", "appDisplayName",
	"appOwnerOrganizationId", "displayName", "servicePrincipalNames", "servicePrincipalType",
}

var spFilterProps = []string{"id", "appId", "displayName"}

// spTypeOf is servicePrincipalType.
func spTypeOf(sp *core.ServicePrincipal) string {
	if sp.ManagedIdentity {
		return "ManagedIdentity"
	}
	return "Application"
}

// renderSP renders a service principal. The owning tenant is found from
// the world (callers hold its lock): the caller's tenant first, as that is
// where nearly every app lives.
func (g *graphCall) renderSP(t *core.Tenant, sp *core.ServicePrincipal) jsonObj {
	var appDisplay, owner any
	if a := t.AppByAppID(sp.AppID); a != nil {
		appDisplay, owner = a.DisplayName, t.ID
	} else {
		for _, ot := range g.s.World().TenantsLocked() {
			if a := ot.AppByAppID(sp.AppID); a != nil {
				appDisplay, owner = a.DisplayName, ot.ID
				break
			}
		}
	}
	return jsonObj{
		{"id", sp.ObjectID},
		{"deletedDateTime", nil},
		{"accountEnabled", true},
		{"appId", sp.AppID},
		{"appDisplayName", appDisplay},
		{"appOwnerOrganizationId", owner},
		{"displayName", sp.DisplayName},
		{"servicePrincipalNames", []string{sp.AppID}},
		{"servicePrincipalType", spTypeOf(sp)},
	}
}

// findSP resolves a key segment (object id, or appId=… / id=…).
func findSP(t *core.Tenant, key string) (*core.ServicePrincipal, *reply) {
	var sp *core.ServicePrincipal
	val := key
	if v, ok := strings.CutPrefix(key, "appId="); ok {
		val = v
		if sp = t.SPByAppID(v); sp == nil {
			sp = t.SPByAppID(strings.ToLower(v))
		}
	} else {
		val = strings.TrimPrefix(key, "id=")
		if sp = t.SPs[val]; sp == nil {
			sp = t.SPs[strings.ToLower(val)]
		}
	}
	if sp != nil {
		return sp, nil
	}
	if !isGUID(val) {
		rp := errReply(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Invalid object identifier '%s'.", val))
		return nil, &rp
	}
	rp := notFoundReply(val)
	return nil, &rp
}

func spField(sp *core.ServicePrincipal) filterField {
	return func(name string) (string, bool) {
		switch name {
		case "id":
			return sp.ObjectID, true
		case "appId":
			return sp.AppID, true
		case "displayName":
			return sp.DisplayName, true
		}
		return "", false
	}
}

func (g *graphCall) getServicePrincipal(key string) {
	if !g.requireAny() {
		return
	}
	sel, err := parseSelect(g.r.URL.Query(), spTypeName, spProps)
	if err != nil {
		g.queryFail(err)
		return
	}
	if !g.admit(costGet, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		sp, rp := findSP(t, key)
		if rp != nil {
			return *rp
		}
		ctx := graphMetadata + "servicePrincipals/$entity"
		if sel != nil {
			ctx = selectContext(graphMetadata+"servicePrincipals", sel) + "/$entity"
		}
		return okReply(http.StatusOK, append(jsonObj{{"@odata.context", ctx}}, project(g.renderSP(t, sp), sel)...))
	})
}

// listServicePrincipals serves GET /servicePrincipals. Service principals
// are kept in a map, so pages walk them in object-id order and the cursor
// is the next id; "appId eq" and "id eq" filters use the indexes.
func (g *graphCall) listServicePrincipals() {
	lq, ok := g.listQuery(spTypeName, spProps, spFilterProps)
	if !ok {
		return
	}
	sel, top, filter, count, cur := lq.sel, lq.top, lq.filter, lq.count, lq.cur
	cost := lq.cost()
	if !g.admit(cost, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		var matches []*core.ServicePrincipal
		if prop, val, ok := filter.EqualityKey(); ok && (prop == "id" || prop == "appId") {
			key := val
			if prop == "appId" {
				key = "appId=" + val
			}
			if sp, rp := findSP(t, key); rp == nil {
				matches = append(matches, sp)
			}
		} else {
			for _, sp := range t.SPs {
				if filter.Match(spField(sp)) {
					matches = append(matches, sp)
				}
			}
			sort.Slice(matches, func(i, j int) bool { return matches[i].ObjectID < matches[j].ObjectID })
		}
		start := 0
		if cur != nil {
			start = sort.Search(len(matches), func(i int) bool { return matches[i].ObjectID >= cur.ID })
		}
		end := min(start+top, len(matches))
		items := make([]jsonObj, 0, end-start)
		for _, sp := range matches[start:end] {
			items = append(items, project(g.renderSP(t, sp), sel))
		}
		body := jsonObj{{"@odata.context", selectContext(graphMetadata+"servicePrincipals", sel)}}
		if count {
			body = append(body, kv{"@odata.count", len(matches)})
		}
		if end < len(matches) {
			body = append(body, kv{"@odata.nextLink", nextLink(g.r, encodeSkiptoken(cursor{Index: end, ID: matches[end].ObjectID}))})
		}
		body = append(body, kv{"value", items})
		return okReply(http.StatusOK, body)
	})
}

// createServicePrincipal serves POST /servicePrincipals {"appId"}: the app
// must live in the caller's tenant, or be a multi-tenant app of another.
func (g *graphCall) createServicePrincipal() {
	if !g.acc.canCreate() {
		g.deny()
		return
	}
	var in struct {
		AppID string `json:"appId"`
	}
	if !g.decode(&in, false) {
		return
	}
	if !isGUID(in.AppID) {
		g.fail(http.StatusBadRequest, codeBadRequest, "Property 'appId' is required and must be a GUID.")
		return
	}
	appID := strings.ToLower(in.AppID)
	if !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		if t.SPByAppID(appID) != nil {
			return errReply(http.StatusConflict, codeConflict, fmt.Sprintf(
				"The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", appID))
		}
		app := t.AppByAppID(appID)
		if app == nil {
			for _, ot := range g.s.World().TenantsLocked() {
				if a := ot.AppByAppID(appID); a != nil && isMultiTenant(a) {
					app = a
					break
				}
			}
		}
		if app == nil {
			return errReply(http.StatusBadRequest, codeBadRequest, fmt.Sprintf(
				"The appId '%s' of the service principal does not reference a valid application object.", appID))
		}
		sp := &core.ServicePrincipal{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: app.DisplayName}
		t.AddSP(sp)
		g.s.Logger().Debug("graph: service principal created", "tenant", t.ID, "app", sp.AppID, "sp", sp.ObjectID, "by", g.caller.AppID)
		return okReply(http.StatusCreated, append(jsonObj{{"@odata.context", graphMetadata + "servicePrincipals/$entity"}}, g.renderSP(t, sp)...))
	})
}

// listOwnedObjects serves GET /servicePrincipals/{id}/ownedObjects (the
// applications the service principal owns), paged like /applications.
func (g *graphCall) listOwnedObjects(key string) {
	g.listApps(appListSpec{context: graphMetadata + "directoryObjects", ownerKey: key, typed: true})
}
