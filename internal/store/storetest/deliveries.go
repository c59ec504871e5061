package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store"
)

// testSinkDeliveries: a delivery record replaces the one before it for the
// same target, keeps every field, and is its organization's, tenant's and
// application's alone.
func testSinkDeliveries(t *testing.T, b *bundle) {
	const target = "github:contoso/storefront/AZURE_CLIENT_SECRET"
	claim := store.RecordSinkDeliveryParams{Org: b.org, TenantID: tenant1, AppObjectID: objectID(1),
		Delivery: store.SinkDelivery{Target: target, KeyID: "k1", RunID: "r1", DeliveredAt: b.t0}}
	require.NoError(t, b.s.RecordSinkDelivery(b.ctx, claim))
	got, err := b.s.SinkDeliveries(b.ctx, store.SinkDeliveriesParams{Org: b.org, TenantID: tenant1, AppObjectID: objectID(1)})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Empty(t, got[target].Version, "a claim has no version yet")

	done := claim
	done.Delivery.Version, done.Delivery.DeliveredAt = "2026-12-02T08:00:00Z", b.t0.Add(time.Minute)
	require.NoError(t, b.s.RecordSinkDelivery(b.ctx, done))
	other := claim
	other.Delivery.Target, other.Delivery.KeyID = "keyvault:https://v/secrets/a", "k2"
	require.NoError(t, b.s.RecordSinkDelivery(b.ctx, other))

	got, err = b.s.SinkDeliveries(b.ctx, store.SinkDeliveriesParams{Org: b.org, TenantID: tenant1, AppObjectID: objectID(1)})
	require.NoError(t, err)
	require.Len(t, got, 2)
	d := got[target]
	require.Equal(t, target, d.Target)
	require.Equal(t, "k1", d.KeyID)
	require.Equal(t, "2026-12-02T08:00:00Z", d.Version)
	require.Equal(t, "r1", d.RunID)
	require.True(t, b.sameTime(b.t0.Add(time.Minute), d.DeliveredAt))

	for _, q := range []store.SinkDeliveriesParams{
		{Org: b.other, TenantID: tenant1, AppObjectID: objectID(1)},
		{Org: b.org, TenantID: tenant2, AppObjectID: objectID(1)},
		{Org: b.org, TenantID: tenant1, AppObjectID: objectID(2)},
	} {
		got, err := b.s.SinkDeliveries(b.ctx, q)
		require.NoError(t, err)
		require.Empty(t, got, "%+v sees nothing", q)
	}
	bad := claim
	bad.Delivery.KeyID = ""
	require.Error(t, b.s.RecordSinkDelivery(b.ctx, bad), "a delivery names its credential")
	missing := claim
	missing.Org = "no-such-org"
	require.ErrorIs(t, b.s.RecordSinkDelivery(b.ctx, missing), store.ErrNotFound)
}
