package keyvault

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink"
)

func TestNewer(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	props := func(id string, created, updated *time.Time) *azsecrets.SecretProperties {
		p := &azsecrets.SecretProperties{Attributes: &azsecrets.SecretAttributes{Created: created, Updated: updated}}
		if id != "" {
			p.ID = to.Ptr(azsecrets.ID(id))
		}
		return p
	}
	later := t0.Add(time.Second)
	for _, tc := range []struct {
		name string
		a, b *azsecrets.SecretProperties
		want bool
	}{
		{"created later wins", props("a", &later, &t0), props("b", &t0, &later), true},
		{"created earlier loses", props("b", &t0, &later), props("a", &later, &t0), false},
		{"same created: updated later wins", props("a", &t0, &later), props("b", &t0, &t0), true},
		{"same created and updated: greater id wins", props("b", &t0, &t0), props("a", &t0, &t0), true},
		{"same created and updated: smaller id loses", props("a", &t0, &t0), props("b", &t0, &t0), false},
		{"identical is not newer", props("a", &t0, &t0), props("a", &t0, &t0), false},
		{"missing created is oldest", props("z", nil, &later), props("a", &t0, &t0), false},
		{"missing attributes is oldest", &azsecrets.SecretProperties{ID: to.Ptr(azsecrets.ID("z"))}, props("a", &t0, nil), false},
		{"anything beats missing attributes", props("", &t0, nil), &azsecrets.SecretProperties{}, true},
	} {
		require.Equal(t, tc.want, newer(secretVersion(tc.a), secretVersion(tc.b)), tc.name)
	}
}

func TestLatestVersionAcrossPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "payroll-api-secret"
	b := setupFake(t)
	for _, k := range []string{"key-1", "key-2", "key-3", "key-4", "key-5"} {
		b.vault.put(name, "value-"+k, map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "app-1", TagKeyID: k})
	}
	// Make v3 the newest by creation time: it is neither the first nor the
	// last item of the newest-first list, and sits on the second page.
	b.vault.update(name, 2, func(v *fakeVersion) { v.created = v.created.Add(time.Hour) })

	held, err := b.sink.Holds(ctx, "key-3")
	require.NoError(t, err)
	require.True(t, held)
	require.Equal(t, 3, b.vault.pages, "all pages of 2 read")
	held, err = b.sink.Holds(ctx, "key-5")
	require.NoError(t, err)
	require.True(t, held, "an older version carried it: a consumer may have read it")
	held, err = b.sink.Holds(ctx, "key-never-written")
	require.NoError(t, err)
	require.False(t, held)

	res, err := b.sink.Deliver(ctx, delivery(b.app, "key-3", "value-key-3"))
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.Equal(t, fakeVaultURL+"secrets/"+name+"/v3", res.Location)
	require.Zero(t, b.vault.sets)

	// Same creation second: the later update wins.
	b2 := setupFake(t)
	b2.vault.put(name, "a", map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "app-1", TagKeyID: "key-a"})
	b2.vault.put(name, "b", map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "app-1", TagKeyID: "key-b"})
	b2.vault.update(name, 1, func(v *fakeVersion) { v.created = b2.vault.versions[name][0].created })
	b2.vault.update(name, 0, func(*fakeVersion) {})
	held, err = b2.sink.Holds(ctx, "key-a")
	require.NoError(t, err)
	require.True(t, held)
}

func TestListErrorOnLaterPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "payroll-api-secret"
	b := setupFake(t)
	for _, k := range []string{"key-1", "key-2", "key-3"} {
		b.vault.put(name, "v", map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "app-1", TagKeyID: k})
	}
	b.vault.listErr, b.vault.listErrPage = responseError(http.StatusServiceUnavailable, "ServiceUnavailable", "try later"), 1

	held, err := b.sink.Holds(ctx, "key-3")
	require.False(t, held)
	var re *RequestError
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusServiceUnavailable, re.StatusCode)
	require.Equal(t, "list", re.Op)
	require.False(t, sink.IsPermanent(err))
	_, err = b.sink.Deliver(ctx, delivery(b.app, "key-4", "v"))
	require.ErrorAs(t, err, &re)
	require.Zero(t, b.vault.sets, "nothing written on a partial view")
}

// TestNeverReadsValues: the sink learns everything from version
// properties. SecretsAPI has no GetSecret, the list items have no value
// field, and the fake fails the test if GetSecret is reached anyway.
func TestNeverReadsValues(t *testing.T) {
	t.Parallel()
	_, ok := reflect.TypeFor[SecretsAPI]().MethodByName("GetSecret")
	require.False(t, ok, "SecretsAPI must not offer GetSecret")
	_, ok = reflect.TypeFor[azsecrets.SecretProperties]().FieldByName("Value")
	require.False(t, ok, "version list items must not carry a value")

	ctx := context.Background()
	b := setupFake(t)
	require.Equal(t, sink.StatusReady, b.sink.Validate(ctx).Status)
	held, err := b.sink.Holds(ctx, "key-1")
	require.NoError(t, err)
	require.False(t, held)
	_, err = b.sink.Deliver(ctx, delivery(b.app, "key-1", "v1"))
	require.NoError(t, err)
	res, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "v1"))
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.Equal(t, sink.StatusReady, b.sink.Validate(ctx).Status)
	held, err = b.sink.Holds(ctx, "key-1")
	require.NoError(t, err)
	require.True(t, held)
	_, err = b.sink.Deliver(ctx, delivery(b.app, "key-2", "v2"))
	require.NoError(t, err)

	require.Zero(t, b.vault.getCalls, "GetSecret called")
	require.Positive(t, b.vault.pages)
}
