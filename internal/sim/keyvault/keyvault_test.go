package keyvault_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// vaultEnv is a running simulator and an azsecrets client for contoso's
// vault, configured only from sim.json, as rotor's Key Vault sink is.
type vaultEnv struct {
	*simtest.Env
	tn     *simfile.Tenant
	url    string
	client *azsecrets.Client
}

// vaultSetup gives the rotation identity every secret permission on the
// vault: these tests exercise the data plane, not authorization (which
// TestKeyVaultAuthorizesPerIdentityAndOperation covers with the seeded
// grants).
func vaultSetup(t *testing.T) *vaultEnv {
	t.Helper()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	require.NotEmpty(t, tn.KeyVaults)
	require.NoError(t, e.Server.World().SetSecretPermissions(tn.ID, tn.KeyVaults[0].Name, tn.Rotation.ObjectID, sim.AllSecretPermissions...))
	cred := e.RotationCredential(t, tn.ID)
	vaultURL := tn.KeyVaults[0].URL
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: e.Client, Retry: e.NoRetry.Retry},
		DisableChallengeResourceVerification: true,
	})
	require.NoError(t, err)
	return &vaultEnv{Env: e, tn: tn, url: vaultURL, client: c}
}

func requireKVError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	require.True(t, errors.As(err, &re), "err: %v", err)
	require.Equal(t, status, re.StatusCode)
	require.Equal(t, code, re.ErrorCode)
}

func TestKeyVaultSecretsThroughTheSDK(t *testing.T) {
	t.Parallel()
	v := vaultSetup(t)
	ctx := t.Context()

	exp := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	set1, err := v.client.SetSecret(ctx, "app-secret", azsecrets.SetSecretParameters{
		Value: to.Ptr("first"), ContentType: to.Ptr("text/plain"),
		Tags:             map[string]*string{"managed-by": to.Ptr("rotor")},
		SecretAttributes: &azsecrets.SecretAttributes{Expires: &exp},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, "first", *set1.Value)
	require.Equal(t, "app-secret", set1.ID.Name())
	require.Len(t, set1.ID.Version(), 32)
	require.True(t, strings.HasPrefix(string(*set1.ID), strings.TrimSuffix(v.url, "/")+"/secrets/app-secret/"))
	require.Equal(t, exp.Unix(), set1.Attributes.Expires.Unix())
	require.True(t, *set1.Attributes.Enabled)
	require.Equal(t, "rotor", *set1.Tags["managed-by"])
	require.EqualValues(t, 90, *set1.Attributes.RecoverableDays)

	set2, err := v.client.SetSecret(ctx, "app-secret", azsecrets.SetSecretParameters{Value: to.Ptr("second")}, nil)
	require.NoError(t, err)

	latest, err := v.client.GetSecret(ctx, "app-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, "second", *latest.Value)
	old, err := v.client.GetSecret(ctx, "app-secret", set1.ID.Version(), nil)
	require.NoError(t, err)
	require.Equal(t, "first", *old.Value)
	_, err = v.client.GetSecret(ctx, "APP-SECRET", "", nil) // names are case-insensitive
	require.NoError(t, err)

	var versions []string
	vp := v.client.NewListSecretPropertiesVersionsPager("app-secret", nil)
	for vp.More() {
		page, err := vp.NextPage(ctx)
		require.NoError(t, err)
		for _, p := range page.Value {
			versions = append(versions, p.ID.Version())
		}
	}
	require.Equal(t, []string{set1.ID.Version(), set2.ID.Version()}, versions)

	// 30 more secrets: the list needs two pages of at most 25.
	for i := range 30 {
		_, err := v.client.SetSecret(ctx, fmt.Sprintf("bulk-%02d", i), azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
		require.NoError(t, err)
	}
	var names []string
	pages := 0
	lp := v.client.NewListSecretPropertiesPager(nil)
	for lp.More() {
		page, err := lp.NextPage(ctx)
		require.NoError(t, err)
		pages++
		for _, p := range page.Value {
			require.Empty(t, p.ID.Version(), "list items carry no version")
			names = append(names, p.ID.Name())
		}
	}
	require.Equal(t, 2, pages)
	require.Len(t, names, 31)
	require.Contains(t, names, "app-secret")

	del, err := v.client.DeleteSecret(ctx, "app-secret", nil)
	require.NoError(t, err)
	require.NotNil(t, del.RecoveryID)
	require.NotNil(t, del.ScheduledPurgeDate)
	require.Equal(t, 90*24*time.Hour, del.ScheduledPurgeDate.Sub(*del.DeletedDate))
	_, err = v.client.GetSecret(ctx, "app-secret", "", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = v.client.DeleteSecret(ctx, "app-secret", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = v.client.SetSecret(ctx, "app-secret", azsecrets.SetSecretParameters{Value: to.Ptr("third")}, nil)
	requireKVError(t, err, http.StatusConflict, "Conflict")

	_, err = v.client.RecoverDeletedSecret(ctx, "app-secret", nil)
	require.NoError(t, err)
	_, err = v.client.DeleteSecret(ctx, "app-secret", nil)
	require.NoError(t, err)
	_, err = v.client.PurgeDeletedSecret(ctx, "app-secret", nil)
	require.NoError(t, err)
	_, err = v.client.SetSecret(ctx, "app-secret", azsecrets.SetSecretParameters{Value: to.Ptr("third")}, nil)
	require.NoError(t, err)

	_, err = v.client.SetSecret(ctx, "bad_name", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")

	// A disabled version cannot be read.
	upd, err := v.client.UpdateSecretProperties(ctx, "bulk-00", "", azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)},
	}, nil)
	require.NoError(t, err)
	require.False(t, *upd.Attributes.Enabled)
	_, err = v.client.GetSecret(ctx, "bulk-00", "", nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
}

func TestKeyVaultChallengeAndRefusals(t *testing.T) {
	t.Parallel()
	v := vaultSetup(t)
	base := strings.TrimSuffix(v.url, "/")

	// The SDK's first request: no token. The challenge names the tenant.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/secrets/x?api-version=7.5", nil)
	require.NoError(t, err)
	resp, err := v.Client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, fmt.Sprintf(`Bearer authorization="%s%s", resource="https://vault.azure.net"`, v.Info.AuthorityHost, v.tn.ID),
		resp.Header.Get("WWW-Authenticate"))
	status, body := v.Do(t, http.MethodGet, base+"/secrets/x?api-version=7.5", nil, nil)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, map[string]any{"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}, body["error"])

	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	kvTok, err := v.Server.MintToken(v.tn.ID, v.tn.Rotation.ClientID, sim.KeyVaultResource)
	require.NoError(t, err)

	// A Graph token is not a Key Vault token.
	graphTok, err := v.Server.MintToken(v.tn.ID, v.tn.Rotation.ClientID, sim.GraphResource)
	require.NoError(t, err)
	status, _ = v.Do(t, http.MethodGet, base+"/secrets/x?api-version=7.5", nil, bearer(graphTok))
	require.Equal(t, http.StatusUnauthorized, status)

	// Another tenant's token is refused by this tenant's vault.
	fab := v.Tenant(t, "fabrikam")
	fabTok, err := v.Server.MintToken(fab.ID, fab.Rotation.ClientID, sim.KeyVaultResource)
	require.NoError(t, err)
	status, body = v.Do(t, http.MethodGet, base+"/secrets/x?api-version=7.5", nil, bearer(fabTok))
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body["error"].(map[string]any)["message"], "AKV10032")

	status, body = v.Do(t, http.MethodGet, base+"/secrets/x", nil, bearer(kvTok))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "BadParameter", body["error"].(map[string]any)["code"])

	status, _ = v.Do(t, http.MethodGet, base+"/secrets?api-version=7.5&maxresults=26", nil, bearer(kvTok))
	require.Equal(t, http.StatusBadRequest, status)

	status, body = v.Do(t, http.MethodPut, base+"/secrets/novalue?api-version=7.5", map[string]any{"contentType": "x"}, bearer(kvTok))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "BadParameter", body["error"].(map[string]any)["code"])

	status, body = v.Do(t, http.MethodGet, base+"/secrets/missing?api-version=7.5", nil, bearer(kvTok))
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "SecretNotFound", body["error"].(map[string]any)["code"])
	require.Contains(t, body["error"].(map[string]any)["message"], "A secret with (name/id) missing was not found in this key vault.")
}

// TestKeyVaultAuthorizesPerIdentityAndOperation checks the seeded access
// policy and Key Vault's refusal: rotor's rotation identity may list, set
// and recover but never read a value or delete; the consumer may read; a
// principal with no grant may do nothing.
func TestKeyVaultAuthorizesPerIdentityAndOperation(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	kv := tn.KeyVaults[0]
	base := strings.TrimSuffix(kv.URL, "/")
	require.ElementsMatch(t, []string{"list", "set", "recover"}, kv.SecretPermissions[tn.Rotation.ObjectID])
	require.NotNil(t, tn.Consumer)
	require.ElementsMatch(t, []string{"get", "list"}, kv.SecretPermissions[tn.Consumer.PrincipalID])

	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	rot, err := e.Server.MintToken(tn.ID, tn.Rotation.ClientID, sim.KeyVaultResource)
	require.NoError(t, err)
	consumer, err := e.Server.MintToken(tn.ID, tn.Consumer.ClientID, sim.KeyVaultResource)
	require.NoError(t, err)

	status, _ := e.Do(t, http.MethodPut, base+"/secrets/s1?api-version=7.5", map[string]any{"value": "v1"}, bearer(rot))
	require.Equal(t, http.StatusOK, status, "rotation sets")
	status, _ = e.Do(t, http.MethodGet, base+"/secrets/s1/versions?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusOK, status, "rotation lists versions")
	status, _ = e.Do(t, http.MethodGet, base+"/secrets?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusOK, status, "rotation lists secrets")

	status, body := e.Do(t, http.MethodGet, base+"/secrets/s1?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusForbidden, status, "rotation cannot read a value")
	require.Equal(t, map[string]any{
		"code": "Forbidden",
		"message": fmt.Sprintf("The user, group or application 'appid=%s;oid=%s;iss=https://sts.windows.net/%s/' "+
			"does not have secrets get permission on key vault '%s;location=local'. "+
			"For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
			tn.Rotation.ClientID, tn.Rotation.ObjectID, tn.ID, kv.Name),
		"innererror": map[string]any{"code": "AccessDenied"},
	}, body["error"])
	// Authorization comes before existence, as in Key Vault.
	status, _ = e.Do(t, http.MethodGet, base+"/secrets/missing?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusForbidden, status)
	status, body = e.Do(t, http.MethodDelete, base+"/secrets/s1?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusForbidden, status, "rotation cannot delete")
	require.Contains(t, body["error"].(map[string]any)["message"], "secrets delete permission")

	status, body = e.Do(t, http.MethodGet, base+"/secrets/s1?api-version=7.5", nil, bearer(consumer))
	require.Equal(t, http.StatusOK, status, "the consumer reads")
	require.Equal(t, "v1", body["value"])
	status, _ = e.Do(t, http.MethodPut, base+"/secrets/s1?api-version=7.5", map[string]any{"value": "v2"}, bearer(consumer))
	require.Equal(t, http.StatusForbidden, status, "the consumer cannot write")

	// The managed identity endpoint issues the consumer's token too.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.Info.ManagedIdentityEndpoint+
		"?api-version=2019-08-01&resource="+sim.KeyVaultResource+"&client_id="+tn.Consumer.ClientID, nil)
	require.NoError(t, err)
	req.Header.Set("X-IDENTITY-HEADER", e.Info.ManagedIdentityHeader)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	status, body = simtest.DecodeBody(t, resp)
	require.Equal(t, http.StatusOK, status)
	status, _ = e.Do(t, http.MethodGet, base+"/secrets/s1?api-version=7.5", nil, bearer(body["access_token"].(string)))
	require.Equal(t, http.StatusOK, status)

	// Grants change at run time; a principal with none can do nothing.
	require.NoError(t, e.Server.World().SetSecretPermissions(tn.Name, kv.Name, tn.Rotation.ObjectID, sim.SecretDelete))
	status, _ = e.Do(t, http.MethodGet, base+"/secrets?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusForbidden, status, "list was replaced by delete")
	status, _ = e.Do(t, http.MethodDelete, base+"/secrets/s1?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, e.Server.World().SetSecretPermissions(tn.Name, kv.Name, tn.Rotation.ObjectID))
	status, _ = e.Do(t, http.MethodGet, base+"/deletedsecrets?api-version=7.5", nil, bearer(rot))
	require.Equal(t, http.StatusForbidden, status)
	require.Error(t, e.Server.World().SetSecretPermissions("nope", kv.Name, tn.Rotation.ObjectID))
	require.Error(t, e.Server.World().SetSecretPermissions(tn.Name, "nope", tn.Rotation.ObjectID))
}

// TestKeyVaultRefusesTokenWithoutKid checks that Key Vault renders the
// token validator's reason in its own 401 shape.
func TestKeyVaultRefusesTokenWithoutKid(t *testing.T) {
	t.Parallel()
	v := vaultSetup(t)
	tok, err := v.Server.MintToken(v.tn.ID, v.tn.Rotation.ClientID, sim.KeyVaultResource)
	require.NoError(t, err)
	status, body := v.Do(t, http.MethodGet, strings.TrimSuffix(v.url, "/")+"/secrets?api-version=7.5", nil,
		map[string]string{"Authorization": "Bearer " + simtest.WithoutKid(t, tok)})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "Unauthorized", body["error"].(map[string]any)["code"])
	require.Contains(t, body["error"].(map[string]any)["message"], "no kid")
}
