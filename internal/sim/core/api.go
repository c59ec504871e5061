package core

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// APISpec describes a web API's app registration: what a client asks a
// token for (IdentifierURI) and the app roles an admin can assign to
// client applications.
type APISpec struct {
	// Name is the display name.
	Name string
	// IdentifierURI is the application ID URI ("api://rotor-prod").
	// Empty means "api://<app id>".
	IdentifierURI string
	// Roles are the values of the app roles the API defines
	// ("Rotor.Admin").
	Roles []string
	// TokenVersion is accessTokenAcceptedVersion: 2 for v2.0 tokens,
	// 0 or 1 for v1.0.
	TokenVersion int
	// Scopes are the delegated permissions the API exposes
	// ("user_impersonation"): a client asks a token for a signed-in user
	// with "<identifier URI>/<scope>", and the token carries the API's app
	// roles assigned to the user (AssignUserAppRoles).
	Scopes []string
}

// API is a registered web API.
type API struct {
	AppID         string
	ObjectID      string
	IdentifierURI string
	// RoleIDs are the ids of the API's app roles by value.
	RoleIDs map[string]string
}

// ClientSpec describes a confidential client application that calls an
// API with the client credentials flow.
type ClientSpec struct {
	Name string
	// API is the app id of the API whose roles Roles name.
	API string
	// Roles are the values of the API's app roles assigned to the
	// client's service principal (admin-consented application
	// permissions).
	Roles []string
}

// Client is a registered client application and its one secret. The
// simulator keeps only the secret's hash; Secret is handed to the caller
// once, as the portal shows a new secret once.
type Client struct {
	AppID    string
	ObjectID string // the service principal's object id (oid in tokens)
	Secret   string
}

// RegisterAPI adds a web API's application and service principal to the
// tenant (id, name or domain): the resource of tokens whose roles claim
// carries the API's app roles assigned to their client.
func (c *Core) RegisterAPI(tenant string, spec APISpec) (*API, error) {
	if spec.Name == "" {
		return nil, errors.New("sim: an API needs a name")
	}
	if spec.TokenVersion != 0 && spec.TokenVersion != 1 && spec.TokenVersion != 2 {
		return nil, fmt.Errorf("sim: accessTokenAcceptedVersion must be 1 or 2, not %d", spec.TokenVersion)
	}
	now := c.clock.Now()
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return nil, fmt.Errorf("sim: tenant %q not found", tenant)
	}
	app := &Application{
		ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: spec.Name,
		SignInAudience: "AzureADMyOrg", CreatedDateTime: now.UTC(), AccessTokenVersion: spec.TokenVersion,
		Scopes: slices.Clone(spec.Scopes),
	}
	uri := spec.IdentifierURI
	if uri == "" {
		uri = "api://" + app.AppID
	}
	if t.ResourceApp(uri) != nil {
		return nil, fmt.Errorf("sim: identifier URI %s is taken in tenant %s", uri, t.Name)
	}
	app.IdentifierURIs = []string{uri}
	api := &API{AppID: app.AppID, ObjectID: app.ObjectID, IdentifierURI: uri, RoleIDs: map[string]string{}}
	for _, v := range spec.Roles {
		id := uuid.NewString()
		app.AppRoles = append(app.AppRoles, AppRole{ID: id, Value: v})
		api.RoleIDs[v] = id
	}
	t.AddApp(app)
	t.AddSP(&ServicePrincipal{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: spec.Name})
	return api, nil
}

// AddClient adds a confidential client application with a service
// principal and one client secret (valid for a year, already replicated)
// to the tenant, and assigns it the named app roles of spec.API.
func (c *Core) AddClient(tenant string, spec ClientSpec) (*Client, error) {
	app, secret, err := newConfidentialApp(spec.Name, "client", c.clock.Now())
	if err != nil {
		return nil, err
	}
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return nil, fmt.Errorf("sim: tenant %q not found", tenant)
	}
	sp := &ServicePrincipal{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: spec.Name}
	if err := assign(t, sp, spec.API, spec.Roles); err != nil {
		return nil, err
	}
	t.AddApp(app)
	t.AddSP(sp)
	return &Client{AppID: app.AppID, ObjectID: sp.ObjectID, Secret: secret}, nil
}

// newConfidentialApp is a single-tenant application named name with one
// client secret (its display name secretName), valid for a year from a day
// ago and already replicated, and that secret's text.
func newConfidentialApp(name, secretName string, now time.Time) (*Application, string, error) {
	secret, err := NewSecretText()
	if err != nil {
		return nil, "", fmt.Errorf("sim: client secret: %w", err)
	}
	start := now.Add(-24 * time.Hour)
	return &Application{
		ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: name,
		SignInAudience: "AzureADMyOrg", CreatedDateTime: now.UTC(),
		Passwords: []*Password{{
			KeyID: uuid.NewString(), DisplayName: secretName, Hint: secret[:3], Start: start, End: start.AddDate(1, 0, 0),
			SecretHash: HashSecret(secret), AddedAt: start.Add(-time.Hour),
		}},
	}, secret, nil
}

// AssignAppRoles assigns more app roles of the API apiAppID to the service
// principal of clientAppID, as an admin granting consent would.
func (c *Core) AssignAppRoles(tenant, clientAppID, apiAppID string, roles ...string) error {
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return fmt.Errorf("sim: tenant %q not found", tenant)
	}
	sp := t.SPByAppID(clientAppID)
	if sp == nil {
		return fmt.Errorf("sim: no service principal for client %s in tenant %s", clientAppID, t.Name)
	}
	return assign(t, sp, apiAppID, roles)
}

// assign adds assignments of the API's roles (by value) to sp. Callers
// hold the world's write lock.
func assign(t *Tenant, sp *ServicePrincipal, apiAppID string, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	api := t.AppByAppID(apiAppID)
	if api == nil {
		return fmt.Errorf("sim: no API with app id %s in tenant %s", apiAppID, t.Name)
	}
	for _, v := range roles {
		var id string
		for _, r := range api.AppRoles {
			if r.Value == v {
				id = r.ID
			}
		}
		if id == "" {
			return fmt.Errorf("sim: API %s defines no app role %q", api.DisplayName, v)
		}
		sp.Assignments = append(sp.Assignments, AppRoleAssignment{ResourceAppID: api.AppID, RoleID: id})
	}
	return nil
}

// PublicClientSpec describes a public client application: a native
// program (rotor's CLI) that signs people in through their browser with
// a loopback redirect and keeps no secret.
type PublicClientSpec struct {
	Name string
	// RedirectURIs are the mobile and desktop platform's redirect URIs;
	// default "http://localhost" and "http://127.0.0.1", which match any
	// port.
	RedirectURIs []string
}

// PublicClient is a registered public client application.
type PublicClient struct {
	AppID    string
	ObjectID string
}

// RegisterPublicClient adds a public client application (no secret,
// isFallbackPublicClient) and its service principal to the tenant.
func (c *Core) RegisterPublicClient(tenant string, spec PublicClientSpec) (*PublicClient, error) {
	if spec.Name == "" {
		return nil, errors.New("sim: a public client needs a name")
	}
	uris := spec.RedirectURIs
	if len(uris) == 0 {
		uris = []string{"http://localhost", "http://127.0.0.1"}
	}
	for _, u := range uris {
		if err := checkRedirectURI(u); err != nil {
			return nil, err
		}
	}
	now := c.clock.Now()
	app := &Application{
		ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: spec.Name,
		SignInAudience: "AzureADMyOrg", CreatedDateTime: now.UTC(),
		PublicClient: true, PublicRedirectURIs: slices.Clone(uris),
	}
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return nil, fmt.Errorf("sim: tenant %q not found", tenant)
	}
	t.AddApp(app)
	t.AddSP(&ServicePrincipal{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: spec.Name})
	return &PublicClient{AppID: app.AppID, ObjectID: app.ObjectID}, nil
}
