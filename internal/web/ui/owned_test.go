package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
)

// TestOwnedSessionSeesOnlyItsApplications: a session restricted to the
// applications its person owns lists only those, gets the UI's 404 page
// for another's application (as for one that does not exist), and its
// runs list shows only runs of its applications.
func TestOwnedSessionSeesOnlyItsApplications(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all := b.want(app.ApplicationFilter{})
	require.Greater(t, len(all), 3)
	mine := []string{all[1], all[len(all)-1], b.runApp}
	slices.Sort(mine)
	mine = slices.Compact(mine)
	var theirs string
	for _, id := range all {
		if !slices.Contains(mine, id) {
			theirs = id
			break
		}
	}
	owned := strings.Join(mine, ",")

	res := b.get("/applications", "X-Test-Owned", owned)
	require.Equal(t, http.StatusOK, res.status, res.body)
	got := ids(t, res.body)
	slices.Sort(got)
	require.Equal(t, mine, got, "only their applications")
	everyone := ids(t, b.get("/applications").body)
	require.Greater(t, len(everyone), len(got), "unrestricted, the same page lists more")

	res = b.get("/applications/"+url.PathEscape(theirs), "X-Test-Owned", owned)
	require.Equal(t, http.StatusNotFound, res.status)
	missing := b.get("/applications/"+url.PathEscape("00000000-0000-4000-8000-00000000dead"), "X-Test-Owned", owned)
	require.Equal(t, missing.status, res.status, "another's application answers as a missing one")
	require.NotContains(t, res.body, theirs[:8]+"…", "nothing of it is shown")
	res = b.get("/applications/"+url.PathEscape(mine[0]), "X-Test-Owned", owned)
	require.Equal(t, http.StatusOK, res.status, res.body)

	// Runs: the rotated application is theirs; owning nothing shows none.
	res = b.get("/runs", "X-Test-Owned", owned)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Contains(t, res.body, b.runApp)
	res = b.get("/runs", "X-Test-Owned", "")
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.NotContains(t, res.body, b.runApp, "owning nothing, no run is shown")
	require.Empty(t, ids(t, b.get("/applications", "X-Test-Owned", "").body))

	res = b.get("/settings", "X-Test-Owned", owned)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Contains(t, res.body, `id="owned-session"`)
}

// TestOrgSettingsOwnedAppsOnlyForm: an Admin sees the switch's form and
// turns it on (303 to the settings page, audited); a Viewer sees the
// value, no form, and a forced POST is refused.
func TestOrgSettingsOwnedAppsOnlyForm(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	page := b.page("/settings", "admin")
	require.Contains(t, page, `id="org-settings-form"`)
	require.Contains(t, page, `name="owned_apps_only"`)
	require.NotContains(t, b.page("/settings", "viewer"), `id="org-settings-form"`)

	require.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/settings/organization", "viewer", url.Values{"owned_apps_only": {"on"}}).status)
	res := b.do(http.MethodPost, "/settings/organization", "admin", url.Values{"owned_apps_only": {"on"}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	require.Equal(t, "/settings#organization", res.header.Get("Location"))
	org, err := b.app.OrgSettings(context.Background(), b.scope)
	require.NoError(t, err)
	require.True(t, org.OwnedAppsOnly)
	require.Contains(t, b.page("/settings", "viewer"), "on: at Entra sign-in")

	require.Equal(t, http.StatusSeeOther, b.do(http.MethodPost, "/settings/organization", "admin", url.Values{}).status, "unchecked: off")
	org, err = b.app.OrgSettings(context.Background(), b.scope)
	require.NoError(t, err)
	require.False(t, org.OwnedAppsOnly)

	var changes int
	for _, r := range b.trail(app.AuditFilter{}) {
		if string(r.Action) == string(app.ActionUpdateOrgSettings) && r.Actor.ID == "admin-oid" {
			changes++
		}
	}
	require.Equal(t, 2, changes, "both changes audited")
}
