package vercel

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// TestConformanceCertificates runs the sink suite with certificate
// credentials: the default certificate_format (pem) puts the private key
// and chain into the one value this kind writes.
func TestConformanceCertificates(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)}, sinktest.WithCertificates())
}

// certificate_format: thumbprint puts only the SHA-1 thumbprint in the
// variable; an unknown format is a spec error naming the choices.
func TestCertificateFormatThumbprint(t *testing.T) {
	t.Parallel()
	h := &harness{b: setup(t)}
	req := h.Request(t)
	req.Spec.Settings[sink.KeyCertificateFormat] = "thumbprint"
	req.Kind = domain.KindCertificate
	sk, err := h.Builder(t).Build(context.Background(), req)
	require.NoError(t, err)
	c := sinktest.NewCertificate(t, "vercel-thumb")
	now := time.Now().UTC()
	d := sink.Delivery{Org: req.App.Org, RunID: "r1", App: req.App, TenantID: req.App.TenantID, ClientID: req.App.AppID, KeyID: "k1",
		Kind: domain.KindCertificate, Material: sink.Material{Certificate: c}, Start: now, End: now.Add(time.Hour)}
	_, err = sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.Equal(t, sink.Thumbprint(c.Leaf()), h.Read(t, sk.Target()).Secret.Reveal())

	bad := req.Spec
	bad.Settings[sink.KeyCertificateFormat] = "pfx"
	err = Kind{}.CheckSpec(bad)
	require.ErrorContains(t, err, "certificate_format")
	require.ErrorContains(t, err, `"thumbprint"`)
}
