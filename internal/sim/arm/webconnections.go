package arm

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file is Logic Apps' API connections (Microsoft.Web/connections,
// api-version 2016-06-01): Get, Create Or Update (the full definition),
// and List by resource group. parameterValues are write-only for the
// secret parameters: GET returns the others (token:clientId,
// token:TenantId, token:grantType) and leaves out any whose name says
// secret or password. A PUT carrying token:clientSecret reports it as a
// consumer ("logicapp", "<resource id>", "token:clientSecret").

// connectionVersions are the Microsoft.Web/connections api-versions served.
var connectionVersions = []string{"2016-06-01"}

// ParamClientSecret and its siblings are the client-credentials parameters
// of the managed APIs that take a service principal.
const (
	ConnParamClientID     = "token:clientId"
	ConnParamClientSecret = "token:clientSecret"
	ConnParamTenantID     = "token:TenantId"
	ConnParamGrantType    = "token:grantType"
)

// APIConnection is a simulated Microsoft.Web/connections resource.
type APIConnection struct {
	TenantID, SubscriptionID, ResourceGroup, Name, Location string
	DisplayName                                             string
	// API is the managed API's name (keyvault, azureblob, office365 …).
	API  string
	Tags map[string]string
	// ParameterValues hold every value, secret ones included (in memory).
	ParameterValues map[string]string
	ETag            string
	Created         time.Time
	Changed         time.Time
	// LinkedTenant, when set, is another tenant the connection is linked
	// to: ARM wants an x-ms-authorization-auxiliary token of the caller's
	// application for it on every request.
	LinkedTenant string
}

// ResourceID is the connection's ARM id.
func (a *APIConnection) ResourceID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/connections/%s", a.SubscriptionID, a.ResourceGroup, a.Name)
}

// secretParam reports whether a parameter is write-only.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "secret") || strings.Contains(n, "password") || strings.Contains(n, "key")
}

// PutConnection creates or replaces a connection, as someone with the
// portal would, with a new etag; it records no consumer. Callers hold no
// lock.
func (s *Service) PutConnection(conn APIConnection) APIConnection {
	now := s.Clock().Now().UTC()
	cp := conn
	cp.Tags = maps.Clone(conn.Tags)
	cp.ParameterValues = maps.Clone(conn.ParameterValues)
	if cp.Location == "" {
		cp.Location = "westeurope"
	}
	if cp.DisplayName == "" {
		cp.DisplayName = cp.Name
	}
	cp.ETag = `"` + uuid.NewString() + `"`
	cp.Changed = now
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	if old := s.res.connections[strings.ToLower(cp.ResourceID())]; old != nil {
		cp.Created = old.Created
	} else {
		cp.Created = now
	}
	s.res.connections[strings.ToLower(cp.ResourceID())] = &cp
	out := cp
	out.Tags, out.ParameterValues = maps.Clone(cp.Tags), maps.Clone(cp.ParameterValues)
	return out
}

// Connection returns a copy of the connection with resource id id,
// secret values included.
func (s *Service) Connection(id string) (APIConnection, bool) {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	c := s.res.connections[strings.ToLower(id)]
	if c == nil {
		return APIConnection{}, false
	}
	out := *c
	out.Tags, out.ParameterValues = maps.Clone(c.Tags), maps.Clone(c.ParameterValues)
	return out, true
}

// The demo's API connections (every seeded tenant with a subscription has
// them in rg-logic; the first tenant's DemoConnectionLinked is linked to
// the second tenant, when there is one).
const (
	DemoConnectionResourceGroup = "rg-logic"
	DemoConnection              = "kv-payroll"
	DemoConnectionBlob          = "blob-archive"
	DemoConnectionOffice        = "o365-notify"
	DemoConnectionLinked        = "kv-partner"
)

// seedConnections seeds a tenant's API connections: a Key Vault and a blob
// connection that take a service principal, and an Office 365 one that
// signs in as a user. The rotation identity is Logic App Contributor on
// the resource group. Callers hold the world's read lock.
func (s *Service) seedConnections(t *core.Tenant, linked string) {
	if len(t.Subscriptions) == 0 {
		return
	}
	sub := t.Subscriptions[0]
	base := APIConnection{TenantID: t.ID, SubscriptionID: sub.ID, ResourceGroup: DemoConnectionResourceGroup}
	for _, c := range []struct{ name, api, linked string }{
		{DemoConnection, "keyvault", ""}, {DemoConnectionBlob, "azureblob", ""}, {DemoConnectionOffice, "office365", ""},
		{DemoConnectionLinked, "keyvault", linked},
	} {
		if c.name == DemoConnectionLinked && linked == "" {
			continue
		}
		conn := base
		conn.Name, conn.API, conn.LinkedTenant = c.name, c.api, c.linked
		conn.Tags = map[string]string{"env": "demo"}
		s.PutConnection(conn)
	}
	if sp := t.SPByAppID(t.RotationClientID); sp != nil {
		t.AssignRole(sp.ObjectID, RoleLogicAppContributor, base.rgID())
	}
}

func (a APIConnection) rgID() string {
	return "/subscriptions/" + a.SubscriptionID + "/resourceGroups/" + a.ResourceGroup
}

// connectionJSON is a connection as 2016-06-01 returns it: secret
// parameter values left out.
func connectionJSON(c *APIConnection) map[string]any {
	params := map[string]string{}
	for k, v := range c.ParameterValues {
		if !secretParam(k) {
			params[k] = v
		}
	}
	tags := maps.Clone(c.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{
		"id": c.ResourceID(), "name": c.Name, "type": "Microsoft.Web/connections", "location": c.Location, "etag": c.ETag, "tags": tags,
		"properties": map[string]any{
			"displayName": c.DisplayName,
			"api": map[string]any{
				"id":   fmt.Sprintf("/subscriptions/%s/providers/Microsoft.Web/locations/%s/managedApis/%s", c.SubscriptionID, c.Location, c.API),
				"name": c.API, "displayName": c.API, "type": "Microsoft.Web/locations/managedApis",
			},
			"parameterValues": params,
			"statuses":        []map[string]string{{"status": "Connected"}},
			"createdTime":     c.Created.Format(time.RFC3339Nano),
			"changedTime":     c.Changed.Format(time.RFC3339Nano),
		},
	}
}

// serveConnections serves …/providers/Microsoft.Web/connections[/{name}].
func (c *call) serveConnections(p rgPath) {
	if len(p.rest) > 2 || (c.r.Method != http.MethodGet && c.r.Method != http.MethodPut) || (c.r.Method == http.MethodPut && len(p.rest) != 2) {
		c.notImplemented()
		return
	}
	if len(p.rest) == 1 {
		c.listConnections(p)
		return
	}
	id := p.rgID() + "/providers/Microsoft.Web/connections/" + p.rest[1]
	action, writeRoles := "Microsoft.Web/connections/read", []string(nil)
	if c.r.Method == http.MethodPut {
		action, writeRoles = "Microsoft.Web/connections/write", []string{RoleOwner, RoleContributor, RoleLogicAppContributor}
	}
	w := c.s.World()
	w.RLock()
	_, fail := c.authorize(p.sub, id, action, writeRoles)
	w.RUnlock()
	if fail != nil {
		fail()
		return
	}
	res := &c.s.res
	res.mu.Lock()
	cur := res.connections[strings.ToLower(id)]
	linked := ""
	if cur != nil {
		linked = cur.LinkedTenant
	}
	res.mu.Unlock()
	if !c.checkAuxiliary(linked, id) {
		return
	}
	if c.r.Method == http.MethodGet {
		if cur == nil {
			armError(c.w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf(
				"The Resource 'Microsoft.Web/connections/%s' under resource group '%s' was not found.", p.rest[1], p.rg))
			return
		}
		res.mu.Lock()
		body := connectionJSON(cur)
		res.mu.Unlock()
		core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, body)
		return
	}
	var body struct {
		Location   string            `json:"location"`
		Tags       map[string]string `json:"tags"`
		Properties struct {
			DisplayName string `json:"displayName"`
			API         struct {
				ID string `json:"id"`
			} `json:"api"`
			ParameterValues map[string]any `json:"parameterValues"`
		} `json:"properties"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(c.w, c.r.Body, 1<<20)).Decode(&body); err != nil {
		armError(c.w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
		return
	}
	apiID := body.Properties.API.ID
	i := strings.LastIndex(strings.ToLower(apiID), "/managedapis/")
	if i < 0 || body.Location == "" {
		armError(c.w, http.StatusBadRequest, "InvalidRequestContent", "The connection needs a location and properties.api.id naming a managed API (…/managedApis/{api}).")
		return
	}
	conn := APIConnection{SubscriptionID: p.sub, ResourceGroup: p.rg, Name: p.rest[1], Location: body.Location,
		DisplayName: body.Properties.DisplayName, API: apiID[i+len("/managedapis/"):], Tags: body.Tags, ParameterValues: map[string]string{}}
	if cur != nil {
		conn.TenantID, conn.Name, conn.ResourceGroup, conn.LinkedTenant = cur.TenantID, cur.Name, cur.ResourceGroup, cur.LinkedTenant
	} else {
		conn.TenantID = c.caller.TenantID
	}
	for k, v := range body.Properties.ParameterValues {
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		conn.ParameterValues[k] = s
	}
	saved := c.s.PutConnection(conn)
	if v, ok := saved.ParameterValues[ConnParamClientSecret]; ok {
		c.s.RecordConsumer("logicapp", saved.ResourceID(), ConnParamClientSecret, v)
	}
	status := http.StatusOK
	if cur == nil {
		status = http.StatusCreated
	}
	core.WriteJSON(c.w, status, core.PlainJSON, connectionJSON(&saved))
}

// listConnections serves Connections - List (by resource group): the
// connections the caller may read.
func (c *call) listConnections(p rgPath) {
	if c.r.Method != http.MethodGet {
		c.notImplemented()
		return
	}
	w := c.s.World()
	w.RLock()
	t, _, fail := c.subscription(p.sub, "Microsoft.Web/connections/read")
	if fail != nil {
		w.RUnlock()
		fail()
		return
	}
	res := &c.s.res
	res.mu.Lock()
	out := []any{}
	for _, k := range core.SortedKeys(res.connections) {
		conn := res.connections[k]
		if strings.EqualFold(conn.SubscriptionID, p.sub) && strings.EqualFold(conn.ResourceGroup, p.rg) && t.CanRead(c.caller.ObjectID, conn.ResourceID()) {
			out = append(out, connectionJSON(conn))
		}
	}
	res.mu.Unlock()
	w.RUnlock()
	core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, map[string]any{"value": out})
}
