package graph_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
)

// TestGraphConcurrencyViolation: with a concurrency window set, a write to
// an application that follows the previous one within the window is
// refused with Graph's 409 Directory_ConcurrencyViolation (as Entra
// answers a removePassword sent right after an addPassword), other
// applications are not affected, and once the window has passed on the
// simulator's clock the write goes through.
func TestGraphConcurrencyViolation(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	require.NoError(t, g.Server.SetFaults(sim.FaultConfig{ConcurrencyWindow: 2 * time.Second}))
	app := g.ownedApp(t)
	end := g.Clock.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	add := func() gresp {
		return g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/addPassword",
			map[string]any{"passwordCredential": map[string]any{"displayName": "x", "endDateTime": end}})
	}
	r := add()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	keyID := r.body["keyId"].(string)

	e := requireGraphError(t, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/removePassword",
		map[string]any{"keyId": keyID}), http.StatusConflict, "Directory_ConcurrencyViolation")
	require.Contains(t, e["message"], "wait briefly and retry")
	require.EqualValues(t, 1, g.Server.Stats().Conflicts)

	g.Clock.Advance(2 * time.Second)
	require.Equal(t, http.StatusNoContent, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/removePassword",
		map[string]any{"keyId": keyID}).status)

	// Off again: back-to-back writes pass.
	require.NoError(t, g.Server.SetFaults(sim.FaultConfig{}))
	r = add()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	require.Equal(t, http.StatusNoContent, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/removePassword",
		map[string]any{"keyId": r.body["keyId"]}).status)
}

// TestGraphTwoSecretLimitForPersonalAccounts: an application whose
// signInAudience admits personal Microsoft accounts holds at most two
// password credentials; the third addPassword is refused with 400 and
// nothing is added. Others are not limited.
func TestGraphTwoSecretLimitForPersonalAccounts(t *testing.T) {
	t.Parallel()
	for _, audience := range []string{"AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount", "AzureADMultipleOrgs"} {
		t.Run(audience, func(t *testing.T) {
			t.Parallel()
			g := graphSetup(t, "fabrikam") // no lifetime policy
			app := g.ownedApp(t)
			g.Server.World().Update(func() {
				app.SignInAudience = audience
				app.Passwords = nil
			})
			add := func() gresp {
				return g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/addPassword", map[string]any{})
			}
			for range 2 {
				r := add()
				require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
			}
			r := add()
			if audience == "AzureADMultipleOrgs" {
				require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
				return
			}
			e := requireGraphError(t, r, http.StatusBadRequest, "Request_BadRequest")
			require.Equal(t, "You can only add a maximum of 2 encrypted credentials.", e["message"])
			g.Server.World().Update(func() { require.Len(t, app.Passwords, 2) })
		})
	}
}
