package keyvault

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sink"
)

// rotorTags are the tags rotor puts on a version for app-1 and key.
func rotorTags(key string) map[string]string {
	return map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "app-1", TagKeyID: key, "owner": "team-payroll"}
}

// TestSoftDeletedFake: a soft-deleted secret at the target is recovered
// when it is rotor's own for this application, and refused (in Validate,
// before anything exists in Entra, and in Deliver) with the fix otherwise.
func TestSoftDeletedFake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "payroll-api-secret"

	// deleteWith puts a secret of tags at the target, then soft-deletes
	// it, behind a few other deleted secrets (the deleted list is paged).
	deleteWith := func(b fakeBundle, tags map[string]string) {
		for _, other := range []string{"aaa-secret", "mmm-secret"} {
			b.vault.put(other, "x", nil)
			b.vault.softDelete(other)
		}
		b.vault.put(name, "old-value", tags)
		b.vault.softDelete(name)
		b.vault.put("zzz-secret", "x", nil)
		b.vault.softDelete("zzz-secret")
	}

	t.Run("rotor's own is recovered, then written", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		deleteWith(b, rotorTags("key-0"))
		v := b.sink.Validate(ctx)
		require.Equal(t, sink.StatusReady, v.Status, v.Reason)
		require.Contains(t, v.Reason, "is soft-deleted and is rotor's (its latest version holds credential key-0)")
		require.Contains(t, v.Reason, "recover permission")
		require.Zero(t, b.vault.recovers, "Validate writes nothing")

		held, err := b.sink.Holds(ctx, "key-0")
		require.NoError(t, err)
		require.True(t, held, "the deleted secret held key-0: consumers may have read it")
		held, err = b.sink.Holds(ctx, "key-1")
		require.NoError(t, err)
		require.False(t, held)

		res, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Equal(t, 1, b.vault.recovers)
		require.Equal(t, fakeVaultURL+"secrets/"+name+"/v2", res.Location)
		require.Equal(t, "recovered rotor's soft-deleted secret first (deleted 2030-01-01T00:00:05Z)", res.Note)
		latest, n := b.vault.latest(name)
		require.Equal(t, 2, n, "the recovered version is kept, the new one is on top")
		require.Equal(t, "new-value", latest.value)
		require.Equal(t, "key-1", latest.tags[TagKeyID])
		require.Equal(t, "team-payroll", latest.tags["owner"], "tags of the recovered version carry over")

		again, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
		require.NoError(t, err)
		require.False(t, again.Changed, "a repeated delivery changes nothing")
		require.Empty(t, again.Note)
		require.Equal(t, 1, b.vault.recovers)
	})

	t.Run("recovered secret already holding the credential is not written again", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		deleteWith(b, rotorTags("key-1"))
		res, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "old-value"))
		require.NoError(t, err)
		require.True(t, res.Changed, "the recovery changed what consumers can read")
		require.Contains(t, res.Note, "already held this credential")
		require.Zero(t, b.vault.sets)
		require.Equal(t, 1, b.vault.recovers)
	})

	t.Run("someone purged it meanwhile: a fresh secret is written", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		deleteWith(b, rotorTags("key-0"))
		b.vault.recoverFn = func(name string) error {
			delete(b.vault.deleted, name)
			return responseError(http.StatusNotFound, "SecretNotFound", "Deleted Secret not found: "+name)
		}
		res, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Empty(t, res.Note, "nothing was recovered")
		_, n := b.vault.latest(name)
		require.Equal(t, 1, n)
	})

	t.Run("a conflict right after the recovery is retryable, and the retry reports the recovery", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		deleteWith(b, rotorTags("key-0"))
		b.vault.setErr = responseError(http.StatusConflict, "Conflict", "Secret is being recovered.")
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
		var re *RequestError
		require.ErrorAs(t, err, &re)
		require.False(t, sink.IsPermanent(err))
		require.ErrorContains(t, err, "just recovered from soft delete")
		require.NotContains(t, fmtAll(err), "new-value")

		// Key Vault is done: the rotation's retry finds the secret live,
		// and its result still says rotor recovered it.
		b.vault.setErr = nil
		res, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Contains(t, res.Note, "recovered rotor's soft-deleted secret first")
		require.Equal(t, 1, b.vault.recovers)
		again, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
		require.NoError(t, err)
		require.False(t, again.Changed)
		require.Empty(t, again.Note, "reported once")
	})

	t.Run("no recover permission names it", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		deleteWith(b, rotorTags("key-0"))
		b.vault.recoverFn = func(string) error {
			return responseErrorBody(http.StatusForbidden, "Forbidden", `{"error":{"code":"Forbidden","message":"The user, group or application 'appid=a;oid=o;iss=i' does not have secrets recover permission on key vault 'payroll-kv;location=westeurope'.","innererror":{"code":"AccessDenied"}}}`)
		}
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
		var pe *PermissionError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, opRecover, pe.Op)
		require.True(t, sink.IsPermanent(err))
		for _, w := range []string{`recover secret "payroll-api-secret": HTTP 403 Forbidden`, "does not have secrets recover permission",
			"needs the recover permission", `connection "conn"`, "Key Vault Secrets Officer", "secrets/recover data action", "or purge the deleted secret"} {
			require.ErrorContains(t, err, w)
		}
		require.NotContains(t, fmtAll(err), "new-value")
		require.Zero(t, b.vault.sets)
	})

	refused := []struct {
		name  string
		adopt bool
		tags  map[string]string
		// disable turns the deleted secret's latest version off.
		disable bool
		want    string
	}{
		{name: "a foreign one is refused with the fix", tags: map[string]string{"owner": "team-x"},
			want: "the secret payroll-api-secret in https://payroll-kv.vault.azure.net/ is soft-deleted and was not made by rotor: " +
				"recover or purge it, or point the policy at another name; Key Vault keeps the name reserved until it purges the secret on 2030-04-01T00:00:01Z"},
		{name: "a foreign one is refused even with adopt", adopt: true, tags: map[string]string{TagManagedBy: "terraform"},
			want: "rotor does not undo someone's deletion"},
		{name: "another application's is refused", tags: map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "app-2", TagKeyID: "key-9"},
			want: "was rotor's for application app-2, not app-1: purge it, or make the secret name unique"},
		{name: "rotor's with a disabled latest version is refused", tags: rotorTags("key-0"), disable: true,
			want: "its latest version was disabled: recover it and enable that version, or purge it"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupFake(t, set(KeyAdopt, tc.adopt))
			b.vault.put(name, "their-value", tc.tags)
			if tc.disable {
				b.vault.update(name, 0, func(v *fakeVersion) { v.enabled = false })
			}
			b.vault.softDelete(name)

			v := b.sink.Validate(ctx)
			require.Equal(t, sink.StatusFailed, v.Status, v.Reason)
			var de *DeletedError
			require.ErrorAs(t, v.Err, &de)
			require.Contains(t, v.Reason, tc.want)
			require.True(t, sink.IsPermanent(v.Err))

			_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "new-value"))
			require.ErrorAs(t, err, &de)
			require.ErrorContains(t, err, tc.want)
			require.True(t, sink.IsPermanent(err))
			require.Zero(t, b.vault.recovers, "never recovered")
			require.Zero(t, b.vault.sets, "never written")
			require.Contains(t, b.vault.deleted, name, "still deleted")
		})
	}
}

// TestSoftDeletedSim runs the soft-delete cases against the simulator's
// vault over HTTPS, through the production builder's azsecrets clients, as
// the rotation identity with its seeded grants (list, set, recover; never
// get). The test's own client, an identity with every permission, plays
// the vault's administrator and the consumer reading its secret.
func TestSoftDeletedSim(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	ctx := context.Background()
	end := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)

	t.Run("rotor's own is recovered and the consumer reads the new value", func(t *testing.T) {
		app := b.app("app-recover")
		s := b.build(t, "recover-secret", app, false)
		first, err := s.Deliver(ctx, simDelivery(app, "key-1", "recover-value-1", end))
		require.NoError(t, err)
		_, err = b.client.DeleteSecret(ctx, "recover-secret", nil)
		require.NoError(t, err)
		b.tick()

		v := s.Validate(ctx)
		require.Equal(t, sink.StatusReady, v.Status, v.Reason)
		require.Contains(t, v.Reason, "is soft-deleted and is rotor's (its latest version holds credential key-1)")
		held, err := s.Holds(ctx, "key-1")
		require.NoError(t, err)
		require.True(t, held, "the deleted secret holds key-1")

		res, err := s.Deliver(ctx, simDelivery(app, "key-2", "recover-value-2", end))
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Contains(t, res.Note, "recovered rotor's soft-deleted secret first (deleted ")
		got := b.read(t, "recover-secret")
		require.Equal(t, "recover-value-2", *got.Value, "the consumer reads the new value")
		require.Equal(t, string(*got.ID), res.Location)
		require.Equal(t, "key-2", tagsOf(got)[TagKeyID])
		firstID := azsecrets.ID(first.Location)
		old, err := b.client.GetSecret(ctx, "recover-secret", firstID.Version(), nil)
		require.NoError(t, err)
		require.Equal(t, "recover-value-1", *old.Value, "the recovered version is back as it was")
		_, err = b.client.GetDeletedSecret(ctx, "recover-secret", nil)
		require.Error(t, err, "no longer deleted")
		require.Equal(t, sink.StatusReady, s.Validate(ctx).Status)
	})

	t.Run("a foreign soft-deleted secret fails validation with the fix", func(t *testing.T) {
		_, err := b.client.SetSecret(ctx, "theirs-secret", azsecrets.SetSecretParameters{
			Value: to.Ptr("their-value"), Tags: map[string]*string{"owner": to.Ptr("team-x")}}, nil)
		require.NoError(t, err)
		_, err = b.client.DeleteSecret(ctx, "theirs-secret", nil)
		require.NoError(t, err)
		app := b.app("app-theirs")
		s := b.build(t, "theirs-secret", app, false)
		v := s.Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status)
		var de *DeletedError
		require.ErrorAs(t, v.Err, &de)
		require.Contains(t, v.Reason, "the secret theirs-secret in "+b.vaultURL+" is soft-deleted and was not made by rotor: "+
			"recover or purge it, or point the policy at another name")
		_, err = s.Deliver(ctx, simDelivery(app, "key-1", "mine-value", end))
		require.ErrorAs(t, err, &de)
		require.True(t, sink.IsPermanent(err))
		require.NotContains(t, fmtAll(err), "mine-value")
		del, err := b.client.GetDeletedSecret(ctx, "theirs-secret", nil)
		require.NoError(t, err, "still soft-deleted: rotor recovered nothing")
		require.Equal(t, "team-x", *del.Tags["owner"])
	})

	t.Run("without the recover permission delivery fails naming it", func(t *testing.T) {
		app := b.app("app-norecover")
		s := b.build(t, "norecover-secret", app, false)
		_, err := s.Deliver(ctx, simDelivery(app, "key-1", "norecover-value-1", end))
		require.NoError(t, err)
		_, err = b.client.DeleteSecret(ctx, "norecover-secret", nil)
		require.NoError(t, err)
		require.NoError(t, b.srv.World().SetSecretPermissions(b.tenantID, b.vaultName, b.rotationOID, sim.SecretList, sim.SecretSet))
		t.Cleanup(func() {
			_ = b.srv.World().SetSecretPermissions(b.tenantID, b.vaultName, b.rotationOID, sim.SecretList, sim.SecretSet, sim.SecretRecover)
		})
		require.Equal(t, sink.StatusReady, s.Validate(ctx).Status, "Key Vault cannot be asked whether recover would work")
		_, err = s.Deliver(ctx, simDelivery(app, "key-2", "norecover-value-2", end))
		var pe *PermissionError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, opRecover, pe.Op)
		require.Equal(t, http.StatusForbidden, pe.StatusCode)
		require.True(t, sink.IsPermanent(err))
		require.ErrorContains(t, err, "does not have secrets recover permission")
		require.ErrorContains(t, err, "needs the recover permission")
		require.ErrorContains(t, err, "Key Vault Secrets Officer")
		require.NotContains(t, fmtAll(err), "norecover-value-2")
		_, err = b.client.GetDeletedSecret(ctx, "norecover-secret", nil)
		require.NoError(t, err, "still deleted")
	})
}
