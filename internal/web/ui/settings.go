package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
)

// RoleMapping is one sign-in role binding (sign_in.entra.roles), as the
// settings page shows it: everyone with the Entra app role AppRole, or in
// the group with object id Group (one of the two is set), holds Role in
// Organization. internal/server passes them as plain data: the UI shows
// configuration, it does not sign anyone in.
type RoleMapping struct {
	AppRole      string
	Group        string
	Organization string
	Role         app.Role
}

// apiKeyLifetimes are the create form's expiry choices, in days (the
// application layer allows up to two years).
var apiKeyLifetimes = []int{7, 30, 90, 180, 365, 730}

// defaultKeyDays is the choice selected first (app.DefaultAPIKeyLifetime).
const defaultKeyDays = 90

type settingsView struct {
	layout
	Org *app.OrgSettings
	// Mappings are the role bindings of this organization only.
	Mappings []RoleMapping
	// Keys are the organization's API keys; KeysDenied says the signed-in
	// role may not manage (nor list) them, and the forms are not shown.
	Keys       []keyRow
	KeysDenied bool
	Roles      []app.Role
	Lifetimes  []int
	Default    int
	// Created is the key just made, shown this once (nil otherwise).
	Created *createdKey
	Now     time.Time
	// CanEditOrg says the signed-in role may change the organization's
	// settings (Admin): the form is shown; others read the values.
	CanEditOrg bool
	// OwnedOnly says this session sees only the applications the person
	// owns in Entra, Owned how many (as of the sign-in).
	OwnedOnly bool
	Owned     int
}

type keyRow struct {
	app.APIKeyRow
	RevokeURL string
}

// createdKey is a key just made: Text is the key itself, on this page
// only.
type createdKey struct {
	app.APIKeyRow
	Text string
}

// settings shows the organization, who gets which role at sign-in, the
// break-glass admin's existence, and the API keys (Admin: create and
// revoke).
func (u *UI) settings(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	u.renderSettings(w, r, scope, nil)
}

func (u *UI) renderSettings(w http.ResponseWriter, r *http.Request, scope app.Scope, created *createdKey) {
	org, err := u.app.OrgSettings(r.Context(), scope)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := settingsView{
		layout: u.frame(r, "settings", "Settings"), Org: org, Roles: app.Roles, Lifetimes: apiKeyLifetimes,
		Default: defaultKeyDays, Created: created, Now: u.clock.Now(), Mappings: []RoleMapping{},
		OwnedOnly: scope.Owned != nil, Owned: scope.Owned.Len(),
	}
	v.CanEditOrg = v.Who.Role == app.RoleAdmin
	for _, m := range u.roleMappings {
		if m.Organization == string(scope.Org) {
			v.Mappings = append(v.Mappings, m)
		}
	}
	keys, err := u.app.ListAPIKeys(r.Context(), scope)
	var denied *app.DeniedError
	switch {
	case errors.As(err, &denied):
		v.KeysDenied = true
	case err != nil:
		u.fail(w, r, err)
		return
	}
	for _, k := range keys {
		v.Keys = append(v.Keys, keyRow{APIKeyRow: k, RevokeURL: u.base + "/settings/api-keys/" + url.PathEscape(k.ID) + "/revoke"})
	}
	u.render(w, r, http.StatusOK, "settings", "layout.html", v)
}

// createAPIKey makes an API key (app.CreateAPIKey; Admin) and answers
// with the settings page showing the key this once. It is the one POST
// that does not redirect: the key must never be reachable by a GET, so it
// is in this answer only (never cached: withScope sends no-store), and a
// reload asks the browser to post again, which would make another key.
func (u *UI) createAPIKey(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, &app.InvalidError{Field: "form", Message: "could not be read"})
		return
	}
	req := app.NewAPIKey{Name: r.PostForm.Get("name"), Role: app.Role(r.PostForm.Get("role"))}
	if d := r.PostForm.Get("expires"); d != "" {
		days, err := strconv.Atoi(d)
		if err != nil || days <= 0 {
			u.fail(w, r, &app.InvalidError{Field: "expires", Message: "must be a number of days"})
			return
		}
		req.Lifetime = time.Duration(days) * 24 * time.Hour
	}
	made, err := u.app.CreateAPIKey(r.Context(), scope, req)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.renderSettings(w, r, scope, &createdKey{APIKeyRow: made.APIKeyRow, Text: made.Key.Reveal()})
}

// revokeAPIKey revokes one of the organization's keys (Admin) and
// redirects to the settings page. Another organization's key id is not
// found (404), as one that does not exist.
func (u *UI) revokeAPIKey(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	if err := u.app.RevokeAPIKey(r.Context(), scope, r.PathValue("id")); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, u.base+"/settings#api-keys", http.StatusSeeOther)
}

// saveOrgSettings changes the organization's settings (app.UpdateOrgSettings;
// Admin) from the organization form and redirects to the settings page.
// The form has one checkbox, so its absence is "off".
func (u *UI) saveOrgSettings(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, &app.InvalidError{Field: "form", Message: "could not be read"})
		return
	}
	owned := r.PostForm.Get("owned_apps_only") == "on"
	if _, err := u.app.UpdateOrgSettings(r.Context(), scope, app.OrgSettingsUpdate{OwnedAppsOnly: &owned}); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, u.base+"/settings#organization", http.StatusSeeOther)
}
