package webhook_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
	"github.com/rotor-dev/rotor/internal/sink/webhook"
)

// TestConformanceCertificates: with include_secret, a certificate travels
// as its PEM key and chain, age-encrypted.
func TestConformanceCertificates(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)}, sinktest.WithCertificates())
}

// By default a certificate's event carries its public facts — the
// thumbprints, names, validity and chain — and nothing of its key.
func TestACertificateEventCarriesItsMetadataAndNoKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sk := b.build(t, b.spec("cert-meta", false), nil)
	c := sinktest.NewCertificate(t, "payroll-cert")
	d := testDelivery("run-c", "key-c")
	d.Kind, d.Material = domain.KindCertificate, sink.Material{Certificate: c}
	_, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	got := b.events(t, b.sim.Info.Webhook.URL+"cert-meta")
	require.Len(t, got.Events, 1)
	require.Empty(t, got.Events[0].SecretAge)
	require.NotContains(t, string(got.Events[0].Body), sinktest.KeyMarker(t, c))
	require.NotContains(t, string(got.Events[0].Body), "PRIVATE KEY")
	var ev webhook.Event
	require.NoError(t, json.Unmarshal(got.Events[0].Body, &ev))
	require.Equal(t, "certificate", ev.CredentialKind)
	require.NotNil(t, ev.Certificate)
	require.Equal(t, sink.Thumbprint(c.Leaf()), ev.Certificate.Thumbprint)
	require.Equal(t, sink.ThumbprintSHA256(c.Leaf()), ev.Certificate.ThumbprintSHA256)
	require.Equal(t, "CN=payroll-cert", ev.Certificate.Subject)
	require.True(t, ev.Certificate.NotAfter.Equal(c.Leaf().NotAfter.UTC().Truncate(0)))
	chain, key := sinktest.ParsePEM(t, ev.Certificate.ChainPEM)
	require.Nil(t, key)
	require.True(t, chain[0].Equal(c.Leaf()))
}
