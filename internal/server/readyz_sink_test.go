package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// TestReadyzNamesAFailingSink (issue 7, item 4): a sink target rotor may
// not write — a Key Vault secret of that name that rotor did not make —
// fails the rotation before anything is created, and /readyz answers 503
// naming the policy, the sink and the target until a rotation's check of
// that target passes again.
func TestReadyzNamesAFailingSink(t *testing.T) {
	t.Parallel()
	r := newSimRig(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h,replication=0s"}, config.SimulatorRotation{})
	ctx, srv, org, st, tn := r.ctx, r.srv, r.org, r.st, r.tn
	apps := r.owned()
	require.Len(t, apps, 1)
	app := apps[0]
	pol := srv.PolicyFor(app)
	name := app.DisplayName + "-secret"

	// Someone else's secret under the name the policy writes.
	vault := tn.KeyVaults[0]
	st.GrantSecrets(t, tn.ID, vault.Name, tn.Consumer.PrincipalID, sim.SecretGet, sim.SecretList, sim.SecretSet, sim.SecretDelete, sim.SecretPurge)
	kv := r.vault()
	foreign := "a value someone else keeps here"
	_, err := kv.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: &foreign}, nil)
	require.NoError(t, err)

	readyz := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		srv.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		return rec.Code, body
	}
	code, _ := readyz()
	require.Equal(t, http.StatusOK, code)

	_, err = srv.Engine().Rotate(ctx, org, app, *pol, domain.TriggerManual)
	require.True(t, rotation.IsPermanentFailure(err), "%v", err)
	code, body := readyz()
	require.Equal(t, http.StatusServiceUnavailable, code)
	failing := body["failing"].([]any)
	require.Len(t, failing, 1)
	part := failing[0].(map[string]any)
	require.Equal(t, "sink", part["part"])
	require.Equal(t, pol.Name, part["policy"])
	require.EqualValues(t, 0, part["sink"])
	require.Contains(t, part["target"], name)
	require.NotEmpty(t, part["error"])
	raw, _ := json.Marshal(body)
	require.NotContains(t, string(raw), foreign)

	// The owner takes the secret away (deleted and purged): the next
	// rotation's check passes and /readyz is ready again.
	_, err = kv.DeleteSecret(ctx, name, nil)
	require.NoError(t, err)
	_, err = kv.PurgeDeletedSecret(ctx, name, nil)
	require.NoError(t, err)
	_, err = srv.Engine().Rotate(ctx, org, app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	code, body = readyz()
	require.Equal(t, http.StatusOK, code, "%v", body)
}
