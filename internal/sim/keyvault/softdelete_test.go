package keyvault_test

import (
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
)

// deletedNames lists the vault's deleted secrets through the SDK's pager,
// page by page.
func deletedNames(t *testing.T, c *azsecrets.Client) map[string]*azsecrets.DeletedSecretProperties {
	t.Helper()
	out := map[string]*azsecrets.DeletedSecretProperties{}
	p := c.NewListDeletedSecretPropertiesPager(nil)
	for p.More() {
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		for _, d := range page.Value {
			out[d.ID.Name()] = d
		}
	}
	return out
}

// TestKeyVaultSoftDeleteThroughTheSDK follows a secret through Key Vault's
// soft delete with Microsoft's azsecrets client: deleted with every
// version, its name reserved (409 Conflict, Key Vault's own message), its
// deleted bundle readable without a value, listed, recovered with every
// version, deleted again, purged (204) and the name free again; and a
// deleted secret whose retention has passed on the simulator's clock is
// gone.
func TestKeyVaultSoftDeleteThroughTheSDK(t *testing.T) {
	t.Parallel()
	v := vaultSetup(t)
	ctx := t.Context()

	set1, err := v.client.SetSecret(ctx, "payroll-secret", azsecrets.SetSecretParameters{
		Value: to.Ptr("first-value"), ContentType: to.Ptr("text/plain"),
		Tags: map[string]*string{"managed-by": to.Ptr("rotor"), "rotor-key-id": to.Ptr("k1")},
	}, nil)
	require.NoError(t, err)
	v.AdvanceClock(time.Second)
	set2, err := v.client.SetSecret(ctx, "payroll-secret", azsecrets.SetSecretParameters{
		Value: to.Ptr("second-value"), ContentType: to.Ptr("text/plain"),
		Tags: map[string]*string{"managed-by": to.Ptr("rotor"), "rotor-key-id": to.Ptr("k2")},
	}, nil)
	require.NoError(t, err)

	deletedAt := v.AdvanceClock(time.Hour).Truncate(time.Second)
	del, err := v.client.DeleteSecret(ctx, "payroll-secret", nil)
	require.NoError(t, err)
	require.Nil(t, del.Value, "a deleted secret bundle carries no value")
	require.Equal(t, string(*set2.ID), string(*del.ID), "the deleted bundle is the latest version")
	require.Equal(t, strings.TrimSuffix(v.url, "/")+"/deletedsecrets/payroll-secret", *del.RecoveryID)
	require.True(t, deletedAt.Equal(*del.DeletedDate), "deleted %v on the simulator's clock, want %v", del.DeletedDate, deletedAt)
	require.True(t, deletedAt.Add(90*24*time.Hour).Equal(*del.ScheduledPurgeDate))

	// Gone from the live API, every version of it.
	_, err = v.client.GetSecret(ctx, "payroll-secret", "", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = v.client.GetSecret(ctx, "payroll-secret", set1.ID.Version(), nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	vp := v.client.NewListSecretPropertiesVersionsPager("payroll-secret", nil)
	_, err = vp.NextPage(ctx)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	lp := v.client.NewListSecretPropertiesPager(nil)
	for lp.More() {
		page, err := lp.NextPage(ctx)
		require.NoError(t, err)
		for _, p := range page.Value {
			require.NotEqual(t, "payroll-secret", p.ID.Name(), "a deleted secret is not listed with the live ones")
		}
	}

	// The name is reserved, in any case, with Key Vault's own answer.
	for _, name := range []string{"payroll-secret", "PAYROLL-SECRET"} {
		_, err = v.client.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("third-value")}, nil)
		requireKVError(t, err, http.StatusConflict, "Conflict")
	}
	status, body := v.Do(t, http.MethodPut, strings.TrimSuffix(v.url, "/")+"/secrets/payroll-secret?api-version=7.5",
		map[string]any{"value": "third-value"}, bearer(t, v))
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, map[string]any{
		"code": "Conflict",
		"message": "Secret payroll-secret is currently in a deleted but recoverable state, and its name cannot be reused; " +
			"in this state, the secret can only be recovered or purged.",
		"innererror": map[string]any{"code": "ObjectIsDeletedButRecoverable"},
	}, body["error"])

	// The deleted secret: its latest version's properties and tags, no value.
	got, err := v.client.GetDeletedSecret(ctx, "payroll-secret", nil)
	require.NoError(t, err)
	require.Nil(t, got.Value)
	require.Equal(t, string(*set2.ID), string(*got.ID))
	require.Equal(t, *del.RecoveryID, *got.RecoveryID)
	require.Equal(t, "text/plain", *got.ContentType)
	require.Equal(t, "rotor", *got.Tags["managed-by"])
	require.Equal(t, "k2", *got.Tags["rotor-key-id"])
	require.True(t, deletedAt.Equal(*got.DeletedDate))
	require.True(t, deletedAt.Add(90*24*time.Hour).Equal(*got.ScheduledPurgeDate))
	require.EqualValues(t, 90, *got.Attributes.RecoverableDays)
	status, body = v.Do(t, http.MethodGet, strings.TrimSuffix(v.url, "/")+"/deletedsecrets/payroll-secret?api-version=7.5", nil, bearer(t, v))
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, body, "value")
	for _, k := range []string{"recoveryId", "deletedDate", "scheduledPurgeDate", "id", "attributes", "tags", "contentType"} {
		require.Contains(t, body, k)
	}
	_, err = v.client.GetDeletedSecret(ctx, "never-existed", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")

	// The deleted list names the secret without a version, as Key Vault does.
	listed := deletedNames(t, v.client)
	require.Contains(t, listed, "payroll-secret")
	item := listed["payroll-secret"]
	require.Equal(t, strings.TrimSuffix(v.url, "/")+"/secrets/payroll-secret", string(*item.ID))
	require.Equal(t, *del.RecoveryID, *item.RecoveryID)
	require.Equal(t, "k2", *item.Tags["rotor-key-id"])
	require.True(t, deletedAt.Equal(*item.DeletedDate))

	// Recovered: every version is back, values and all; the list forgets it.
	rec, err := v.client.RecoverDeletedSecret(ctx, "payroll-secret", nil)
	require.NoError(t, err)
	require.Nil(t, rec.Value, "recover answers without the value")
	require.Equal(t, string(*set2.ID), string(*rec.ID))
	require.Equal(t, "k2", *rec.Tags["rotor-key-id"])
	latest, err := v.client.GetSecret(ctx, "payroll-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, "second-value", *latest.Value)
	old, err := v.client.GetSecret(ctx, "payroll-secret", set1.ID.Version(), nil)
	require.NoError(t, err)
	require.Equal(t, "first-value", *old.Value)
	require.NotContains(t, deletedNames(t, v.client), "payroll-secret")
	_, err = v.client.RecoverDeletedSecret(ctx, "payroll-secret", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = v.client.SetSecret(ctx, "payroll-secret", azsecrets.SetSecretParameters{Value: to.Ptr("third-value")}, nil)
	require.NoError(t, err, "a recovered secret takes new versions")

	// Deleted again and purged: 204, and the name is free.
	_, err = v.client.DeleteSecret(ctx, "payroll-secret", nil)
	require.NoError(t, err)
	_, err = v.client.PurgeDeletedSecret(ctx, "payroll-secret", nil)
	require.NoError(t, err)
	_, err = v.client.DeleteSecret(ctx, "other-secret", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = v.client.SetSecret(ctx, "other-secret", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	require.NoError(t, err)
	_, err = v.client.DeleteSecret(ctx, "other-secret", nil)
	require.NoError(t, err)
	status, _ = v.Do(t, http.MethodDelete, strings.TrimSuffix(v.url, "/")+"/deletedsecrets/other-secret?api-version=7.5", nil, bearer(t, v))
	require.Equal(t, http.StatusNoContent, status)
	_, err = v.client.PurgeDeletedSecret(ctx, "payroll-secret", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	require.NotContains(t, deletedNames(t, v.client), "payroll-secret")
	fresh, err := v.client.SetSecret(ctx, "payroll-secret", azsecrets.SetSecretParameters{Value: to.Ptr("fresh-value")}, nil)
	require.NoError(t, err)
	vp = v.client.NewListSecretPropertiesVersionsPager("payroll-secret", nil)
	page, err := vp.NextPage(ctx)
	require.NoError(t, err)
	require.Len(t, page.Value, 1, "a purged secret's versions are gone")
	require.Equal(t, fresh.ID.Version(), page.Value[0].ID.Version())

	// Retention passes on the simulator's clock: the deleted secret is
	// purged by itself and its name is free.
	_, err = v.client.DeleteSecret(ctx, "payroll-secret", nil)
	require.NoError(t, err)
	v.AdvanceClock(90*24*time.Hour + time.Minute)
	// Tokens are checked on the simulator's clock too: a new client gets
	// one that is valid there.
	later := v.SecretsClient(t, v.url, v.RotationCredential(t, v.tn.ID))
	_, err = later.GetDeletedSecret(ctx, "payroll-secret", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	require.NotContains(t, deletedNames(t, later), "payroll-secret")
	_, err = later.SetSecret(ctx, "payroll-secret", azsecrets.SetSecretParameters{Value: to.Ptr("after-retention")}, nil)
	require.NoError(t, err)
}

// TestKeyVaultSoftDeletePermissions checks the seeded grants on deleted
// secrets: rotor's rotation identity lists them and recovers, and cannot
// read one (get deleted secret needs get, as in Key Vault), delete or
// purge; the consumer keeps get, so it reads the recovered value.
func TestKeyVaultSoftDeletePermissions(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	kv := tn.KeyVaults[0]
	// The consumer identity, granted every permission for a while, plays
	// the vault's administrator.
	admin := tn.Consumer.PrincipalID
	e.GrantSecrets(t, tn.ID, kv.Name, admin, sim.AllSecretPermissions...)
	adminClient := e.SecretsClient(t, kv.URL, e.ConsumerCredential(t, tn.ID))
	ctx := t.Context()
	_, err := adminClient.SetSecret(ctx, "app-secret", azsecrets.SetSecretParameters{Value: to.Ptr("the-value")}, nil)
	require.NoError(t, err)
	_, err = adminClient.DeleteSecret(ctx, "app-secret", nil)
	require.NoError(t, err)

	rot, err := azsecrets.NewClient(kv.URL, e.RotationCredential(t, tn.ID), &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: e.Client, Retry: e.NoRetry.Retry}, DisableChallengeResourceVerification: true,
	})
	require.NoError(t, err)
	require.Contains(t, deletedNames(t, rot), "app-secret", "list covers the deleted list")
	_, err = rot.GetDeletedSecret(ctx, "app-secret", nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
	require.ErrorContains(t, err, "does not have secrets get permission")
	_, err = rot.PurgeDeletedSecret(ctx, "app-secret", nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
	require.ErrorContains(t, err, "does not have secrets purge permission")
	_, err = rot.RecoverDeletedSecret(ctx, "app-secret", nil)
	require.NoError(t, err, "rotor's identity recovers")
	_, err = rot.DeleteSecret(ctx, "app-secret", nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")

	// The consumer with its seeded get and list reads the recovered value.
	e.GrantSecrets(t, tn.ID, kv.Name, admin, sim.SecretGet, sim.SecretList)
	got, err := adminClient.GetSecret(ctx, "app-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, "the-value", *got.Value)

	// Without recover, the refusal names the permission.
	e.GrantSecrets(t, tn.ID, kv.Name, tn.Rotation.ObjectID, sim.SecretList, sim.SecretSet)
	e.GrantSecrets(t, tn.ID, kv.Name, admin, sim.AllSecretPermissions...)
	_, err = adminClient.DeleteSecret(ctx, "app-secret", nil)
	require.NoError(t, err)
	_, err = rot.RecoverDeletedSecret(ctx, "app-secret", nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
	require.ErrorContains(t, err, fmt.Sprintf("'appid=%s;oid=%s;", tn.Rotation.ClientID, tn.Rotation.ObjectID))
	require.ErrorContains(t, err, "does not have secrets recover permission")
}

// bearer is a fresh Key Vault token of the rotation identity, for raw
// requests.
func bearer(t *testing.T, v *vaultEnv) map[string]string {
	t.Helper()
	tok, err := v.Server.MintToken(v.tn.ID, v.tn.Rotation.ClientID, sim.KeyVaultResource)
	require.NoError(t, err)
	return map[string]string{"Authorization": "Bearer " + tok}
}
