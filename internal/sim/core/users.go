package core

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// This file holds the people of a tenant: users, the groups they belong
// to, the app roles of applications assigned to them, and the web
// applications they sign in to (an app registration with redirect URIs,
// app roles and the groups claim): what the authorization code flow of
// the entra service and Graph's /me need.

// GroupOverageLimit is the most groups an ID token lists in its groups
// claim: a user in more gets the overage claims (_claim_names,
// _claim_sources) instead, and the application asks Graph
// (AZURE-API.md §10).
const GroupOverageLimit = 150

// User is a member of a tenant who signs in interactively.
type User struct {
	ObjectID string
	// UserPrincipalName is the sign-in name ("ada@contoso.onmicrosoft.com").
	UserPrincipalName string
	DisplayName       string
	// Mail is the user's email address (the email claim); empty: none.
	Mail string
	// PasswordHash is HashSecret of the user's password: the simulator
	// can check a password but not show it.
	PasswordHash [32]byte
	// Groups are the object ids of the groups the user is a direct member
	// of, in the order joined.
	Groups []string
	// Assignments are the app roles of applications assigned to the user
	// (appRoleAssignments): an ID token for such an application carries
	// their values in its roles claim.
	Assignments []AppRoleAssignment
}

// CheckPassword reports whether password is the user's.
func (u *User) CheckPassword(password string) bool {
	h := HashSecret(password)
	return subtle.ConstantTimeCompare(h[:], u.PasswordHash[:]) == 1
}

// RolesOn returns the values of app's roles assigned to the user, in
// assignment order.
func (u *User) RolesOn(app *Application) []string {
	roles := []string{}
	for _, as := range u.Assignments {
		if as.ResourceAppID != app.AppID {
			continue
		}
		if r := app.RoleByID(as.RoleID); r != nil && !slices.Contains(roles, r.Value) {
			roles = append(roles, r.Value)
		}
	}
	return roles
}

// Group is a security group.
type Group struct {
	ObjectID    string
	DisplayName string
	Description string
	// Created is createdDateTime.
	Created time.Time
}

// AddUser registers a user. Callers hold the world's write lock (or own
// the tenant, as seeds do).
func (t *Tenant) AddUser(u *User) {
	if t.Users == nil {
		t.Users = map[string]*User{}
	}
	t.Users[u.ObjectID] = u
	t.userOrder = append(t.userOrder, u.ObjectID)
}

// UserByID returns the user with the object id, or nil.
func (t *Tenant) UserByID(id string) *User { return t.Users[strings.ToLower(id)] }

// UserByName returns the user whose userPrincipalName is name (case
// insensitive, as Entra compares sign-in names), or nil.
func (t *Tenant) UserByName(name string) *User {
	for _, id := range t.userOrder {
		if u := t.Users[id]; strings.EqualFold(u.UserPrincipalName, name) {
			return u
		}
	}
	return nil
}

// UsersInOrder returns the tenant's users in the order they were added.
func (t *Tenant) UsersInOrder() []*User {
	out := make([]*User, 0, len(t.userOrder))
	for _, id := range t.userOrder {
		out = append(out, t.Users[id])
	}
	return out
}

// AddGroup registers a group.
func (t *Tenant) AddGroup(g *Group) {
	if t.Groups == nil {
		t.Groups = map[string]*Group{}
	}
	t.Groups[g.ObjectID] = g
}

// GroupByID returns the group with the object id, or nil.
func (t *Tenant) GroupByID(id string) *Group { return t.Groups[strings.ToLower(id)] }

// GroupByName returns the first group with the display name, or nil.
func (t *Tenant) GroupByName(name string) *Group {
	for _, g := range t.Groups {
		if g.DisplayName == name {
			return g
		}
	}
	return nil
}

// UserSpec describes a user to add.
type UserSpec struct {
	// Name is the display name ("Ada Admin").
	Name string
	// UserName is the user principal name; a bare name ("ada") gets the
	// tenant's domain.
	UserName string
	// Password is the sign-in password; empty makes a random one (the
	// user can then sign in with the sign-in page's one-click choice only).
	Password string
	// Mail is the email address; empty: the user principal name.
	Mail string
	// Groups are the object ids of groups the user is a member of.
	Groups []string
}

// AddUser adds a user to the tenant (id, name or domain) and returns its
// object id.
func (c *Core) AddUser(tenant string, spec UserSpec) (string, error) {
	if spec.UserName == "" {
		return "", errors.New("sim: a user needs a user name")
	}
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return "", fmt.Errorf("sim: tenant %q not found", tenant)
	}
	u, err := newUser(t, uuid.NewString(), spec)
	if err != nil {
		return "", err
	}
	t.AddUser(u)
	return u.ObjectID, nil
}

func newUser(t *Tenant, id string, spec UserSpec) (*User, error) {
	upn := spec.UserName
	if !strings.Contains(upn, "@") {
		upn += "@" + t.Domain
	}
	if t.UserByName(upn) != nil {
		return nil, fmt.Errorf("sim: user %s exists in tenant %s", upn, t.Name)
	}
	for _, g := range spec.Groups {
		if t.GroupByID(g) == nil {
			return nil, fmt.Errorf("sim: tenant %s has no group %s", t.Name, g)
		}
	}
	pw := spec.Password
	if pw == "" {
		var err error
		if pw, err = NewSecretText(); err != nil {
			return nil, err
		}
	}
	mail := spec.Mail
	if mail == "" {
		mail = upn
	}
	name := spec.Name
	if name == "" {
		name = upn
	}
	return &User{
		ObjectID: id, UserPrincipalName: upn, DisplayName: name, Mail: mail,
		PasswordHash: HashSecret(pw), Groups: slices.Clone(spec.Groups),
	}, nil
}

// AddGroup adds a security group to the tenant and returns its object id.
func (c *Core) AddGroup(tenant, name string) (string, error) {
	now := c.clock.Now()
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return "", fmt.Errorf("sim: tenant %q not found", tenant)
	}
	g := &Group{ObjectID: uuid.NewString(), DisplayName: name, Created: now.UTC()}
	t.AddGroup(g)
	return g.ObjectID, nil
}

// AddUserToGroups makes the user a member of the groups (object ids).
func (c *Core) AddUserToGroups(tenant, userID string, groups ...string) error {
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return fmt.Errorf("sim: tenant %q not found", tenant)
	}
	u := t.UserByID(userID)
	if u == nil {
		return fmt.Errorf("sim: tenant %s has no user %s", t.Name, userID)
	}
	for _, g := range groups {
		if t.GroupByID(g) == nil {
			return fmt.Errorf("sim: tenant %s has no group %s", t.Name, g)
		}
		if !slices.Contains(u.Groups, g) {
			u.Groups = append(u.Groups, g)
		}
	}
	return nil
}

// WebAppSpec describes a web application people sign in to with the
// authorization code flow: a confidential client with redirect URIs, app
// roles for users and, optionally, the groups claim.
type WebAppSpec struct {
	Name string
	// RedirectURIs are the Web platform's redirect URIs: an authorization
	// request must name one of them exactly.
	RedirectURIs []string
	// Roles are the values of the app roles the application defines for
	// users ("Rotor.Admin").
	Roles []string
	// GroupClaims sets groupMembershipClaims to "SecurityGroup": ID
	// tokens carry the user's group object ids (or the overage claims).
	GroupClaims bool
	// Assign maps a user (object id or user principal name) to the values
	// of the roles assigned to them.
	Assign map[string][]string
}

// WebApp is a registered web application and its one client secret
// (shown once, as the portal shows it).
type WebApp struct {
	AppID    string
	ObjectID string
	Secret   string
	// RoleIDs are the ids of its app roles by value.
	RoleIDs map[string]string
}

// RegisterWebApp adds a web application, its service principal and one
// client secret to the tenant, and assigns its app roles to users.
func (c *Core) RegisterWebApp(tenant string, spec WebAppSpec) (*WebApp, error) {
	if spec.Name == "" {
		return nil, errors.New("sim: a web app needs a name")
	}
	for _, u := range spec.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, err
		}
	}
	app, secret, err := newConfidentialApp(spec.Name, "sign-in", c.clock.Now())
	if err != nil {
		return nil, err
	}
	app.RedirectURIs = slices.Clone(spec.RedirectURIs)
	if spec.GroupClaims {
		app.GroupMembershipClaims = "SecurityGroup"
	}
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return nil, fmt.Errorf("sim: tenant %q not found", tenant)
	}
	wa := &WebApp{AppID: app.AppID, ObjectID: app.ObjectID, Secret: secret, RoleIDs: map[string]string{}}
	for _, v := range spec.Roles {
		id := uuid.NewString()
		app.AppRoles = append(app.AppRoles, AppRole{ID: id, Value: v})
		wa.RoleIDs[v] = id
	}
	for who, roles := range spec.Assign {
		u := t.UserByID(who)
		if u == nil {
			u = t.UserByName(who)
		}
		if u == nil {
			return nil, fmt.Errorf("sim: tenant %s has no user %s", t.Name, who)
		}
		for _, v := range roles {
			id, ok := wa.RoleIDs[v]
			if !ok {
				return nil, fmt.Errorf("sim: web app %s defines no app role %q", spec.Name, v)
			}
			u.Assignments = append(u.Assignments, AppRoleAssignment{ResourceAppID: app.AppID, RoleID: id})
		}
	}
	t.AddApp(app)
	t.AddSP(&ServicePrincipal{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: spec.Name})
	return wa, nil
}

// AddRedirectURI registers one more redirect URI on the application with
// the app id (a test learns its callback's address only once it listens).
func (c *Core) AddRedirectURI(tenant, appID, uri string) error {
	if err := checkRedirectURI(uri); err != nil {
		return err
	}
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return fmt.Errorf("sim: tenant %q not found", tenant)
	}
	app := t.AppByAppID(appID)
	if app == nil {
		return fmt.Errorf("sim: tenant %s has no application %s", t.Name, appID)
	}
	if !slices.Contains(app.RedirectURIs, uri) {
		app.RedirectURIs = append(app.RedirectURIs, uri)
	}
	return nil
}

// AssignUserAppRoles assigns more app roles of the application appID to
// the user (object id or user principal name).
func (c *Core) AssignUserAppRoles(tenant, user, appID string, roles ...string) error {
	c.world.mu.Lock()
	defer c.world.mu.Unlock()
	t := c.world.TenantLocked(tenant)
	if t == nil {
		return fmt.Errorf("sim: tenant %q not found", tenant)
	}
	u := t.UserByID(user)
	if u == nil {
		u = t.UserByName(user)
	}
	if u == nil {
		return fmt.Errorf("sim: tenant %s has no user %s", t.Name, user)
	}
	app := t.AppByAppID(appID)
	if app == nil {
		return fmt.Errorf("sim: tenant %s has no application %s", t.Name, appID)
	}
	for _, v := range roles {
		var id string
		for _, r := range app.AppRoles {
			if r.Value == v {
				id = r.ID
			}
		}
		if id == "" {
			return fmt.Errorf("sim: application %s defines no app role %q", app.DisplayName, v)
		}
		u.Assignments = append(u.Assignments, AppRoleAssignment{ResourceAppID: app.AppID, RoleID: id})
	}
	return nil
}

// checkRedirectURI applies Entra's registration rules the simulator
// models: an absolute https URL, or http on a loopback host; no fragment;
// at most 256 characters.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Fragment != "" || len(raw) > 256:
		return fmt.Errorf("sim: redirect URI %q must be an absolute URL without a fragment, at most 256 characters", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("sim: redirect URI %q must be https (http only on localhost)", raw)
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// The demo seed's people: every demo tenant has these users and groups.
// DemoSignInRoles are the app roles RegisterDemoSignIn defines and whom it
// assigns them to.
const (
	// DemoAdminGroup, DemoOperatorGroup and DemoViewerGroup are the demo
	// groups that map to rotor's roles in docs/sign-in.md's example.
	DemoAdminGroup    = "rotor-admins"
	DemoOperatorGroup = "rotor-operators"
	DemoViewerGroup   = "rotor-viewers"
	// demoTeamGroups is how many other groups the overage user is in.
	demoTeamGroups = 200
)

// demoUser is one seeded person.
type demoUser struct {
	name, user string
	groups     []string // group display names; "team-*" is every team group
	roles      []string // app roles RegisterDemoSignIn assigns
}

// DemoSignInAppRoles are the app roles of the demo's sign-in application.
var DemoSignInAppRoles = []string{"Rotor.Admin", "Rotor.Operator", "Rotor.Viewer"}

var demoUsers = []demoUser{
	{name: "Ada Admin", user: "ada", roles: []string{"Rotor.Admin"}},
	{name: "Oscar Operator", user: "oscar", roles: []string{"Rotor.Operator"}},
	{name: "Vera Viewer", user: "vera", groups: []string{DemoViewerGroup}},
	{name: "Gus Groups", user: "gus", groups: []string{DemoOperatorGroup, "team-*"}},
	{name: "Nia Nobody", user: "nia"},
}

// seedDemoPeople adds the demo users and groups to t: ada and oscar get
// app roles once rotor's sign-in app is registered (RegisterDemoSignIn),
// vera is in rotor-viewers, gus in rotor-operators and 200 team groups
// (more than GroupOverageLimit: the overage case), nia in nothing. Each
// user's password is returned by user principal name, for sim.json.
func seedDemoPeople(t *Tenant, ids *uuidSource, now time.Time) (map[string]string, error) {
	named := map[string]string{}
	for _, n := range []string{DemoAdminGroup, DemoOperatorGroup, DemoViewerGroup} {
		g := &Group{ObjectID: ids.next(), DisplayName: n, Created: now.AddDate(-1, 0, 0).UTC()}
		t.AddGroup(g)
		named[n] = g.ObjectID
	}
	var teams []string
	for i := 1; i <= demoTeamGroups; i++ {
		g := &Group{ObjectID: ids.next(), DisplayName: fmt.Sprintf("team-%03d", i), Created: now.AddDate(-1, 0, i).UTC()}
		t.AddGroup(g)
		teams = append(teams, g.ObjectID)
	}
	passwords := map[string]string{}
	for _, du := range demoUsers {
		var groups []string
		for _, g := range du.groups {
			if g == "team-*" {
				groups = append(groups, teams...)
				continue
			}
			groups = append(groups, named[g])
		}
		pw, err := NewSecretText()
		if err != nil {
			return nil, err
		}
		u, err := newUser(t, ids.next(), UserSpec{Name: du.name, UserName: du.user, Password: pw, Groups: groups})
		if err != nil {
			return nil, err
		}
		t.AddUser(u)
		passwords[u.UserPrincipalName] = pw
	}
	return passwords, nil
}

// RegisterDemoSignIn registers rotor's sign-in application in a demo
// tenant ("rotor-web": the app roles DemoSignInAppRoles, the groups claim,
// the given redirect URIs) and assigns Rotor.Admin to ada and
// Rotor.Operator to oscar. The seed leaves the application out so the
// inventory rotor syncs is the same with or without sign-in.
func (c *Core) RegisterDemoSignIn(tenant string, redirectURIs ...string) (*WebApp, error) {
	assign := map[string][]string{}
	c.world.mu.RLock()
	t := c.world.TenantLocked(tenant)
	if t != nil {
		for _, du := range demoUsers {
			if u := t.UserByName(du.user + "@" + t.Domain); u != nil && len(du.roles) > 0 {
				assign[u.ObjectID] = du.roles
			}
		}
	}
	c.world.mu.RUnlock()
	if t == nil {
		return nil, fmt.Errorf("sim: tenant %q not found", tenant)
	}
	if len(assign) == 0 {
		return nil, fmt.Errorf("sim: tenant %s has no demo users", t.Name)
	}
	return c.RegisterWebApp(tenant, WebAppSpec{
		Name: "rotor-web", RedirectURIs: redirectURIs, Roles: DemoSignInAppRoles, GroupClaims: true, Assign: assign,
	})
}

// DemoAPIIdentifierURI is the application ID URI of the demo's rotor API
// registration (RegisterDemoCLI).
const DemoAPIIdentifierURI = "api://rotor-demo"

// DemoCLI is what RegisterDemoCLI registered: rotor's API (the audience
// of the tokens the CLI presents) and rotor's CLI, a public client.
type DemoCLI struct {
	// API is rotor's API registration: app roles DemoSignInAppRoles,
	// the delegated permission user_impersonation.
	API *API
	// CLI is rotor's CLI registration: a public client with loopback
	// redirect URIs ('rotor login').
	CLI *PublicClient
}

// demoAPIRoles are the API's app roles RegisterDemoCLI assigns to the
// demo users: the roles each holds in the UI (vera's there come from a
// group; the simulator's tokens carry direct assignments only).
var demoAPIRoles = map[string]string{"ada": "Rotor.Admin", "oscar": "Rotor.Operator", "vera": "Rotor.Viewer"}

// RegisterDemoCLI registers rotor's API ("rotor-api", DemoAPIIdentifierURI,
// v1.0 tokens) and rotor's CLI ("rotor-cli", a public client) in a demo
// tenant, and assigns the API's app roles to ada (admin), oscar
// (operator) and vera (viewer): 'rotor login' against the demo signs
// them in with the authorization code flow and a loopback redirect.
func (c *Core) RegisterDemoCLI(tenant string) (*DemoCLI, error) {
	api, err := c.RegisterAPI(tenant, APISpec{Name: "rotor-api", IdentifierURI: DemoAPIIdentifierURI,
		Roles: DemoSignInAppRoles, Scopes: []string{"user_impersonation"}})
	if err != nil {
		return nil, err
	}
	cli, err := c.RegisterPublicClient(tenant, PublicClientSpec{Name: "rotor-cli"})
	if err != nil {
		return nil, err
	}
	c.world.mu.RLock()
	t := c.world.TenantLocked(tenant)
	domain := t.Domain
	c.world.mu.RUnlock()
	for _, du := range demoUsers {
		if role, ok := demoAPIRoles[du.user]; ok {
			if err := c.AssignUserAppRoles(tenant, du.user+"@"+domain, api.AppID, role); err != nil {
				return nil, err
			}
		}
	}
	return &DemoCLI{API: api, CLI: cli}, nil
}
