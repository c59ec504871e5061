package adoconnection

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// A certificate turns a key connection into a certificate one
// (spnCertificate, servicePrincipalCertificate = PEM key and chain), the
// key goes, and nothing of the PEM reads back; a client secret is then
// refused by that connection with a reason.
func TestACertificateMakesTheConnectionSpnCertificate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID)
	id := b.newConnection(t, "cert-conn", app.AppID)
	ctx := context.Background()
	_, err := b.build(t, app, id, pat(envPAT), connSim).Deliver(ctx, delivery(app, "s1", "a-client-secret"))
	require.NoError(t, err)

	c := sinktest.NewCertificate(t, "ado cert")
	d := delivery(app, "c1", "unused")
	d.Kind, d.Material = domain.KindCertificate, sink.Material{Certificate: c}
	sk, err := b.builder.Build(ctx, sink.BuildRequest{Spec: b.spec(id, pat(envPAT)), Connection: connSim, App: app, Kind: domain.KindCertificate})
	require.NoError(t, err)
	require.Equal(t, sink.StatusReady, sk.(*Sink).Validate(ctx).Status)
	res, err := sk.Deliver(ctx, d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Contains(t, res.Note, "spnCertificate")

	held := b.control(t, http.MethodGet, "endpoints/"+id, nil)["key"].(string)
	sinktest.RequireHoldsCertificate(t, c, held, "the connection")
	ep := b.getEndpoint(t, id)
	ps := ep["authorization"].(map[string]any)["parameters"].(map[string]any)
	require.Equal(t, "spnCertificate", ps["authenticationType"])
	require.NotContains(t, ps, "servicePrincipalCertificate", "write-only, like the key")
	require.NotContains(t, ps, "serviceprincipalkey")

	// A secret policy's sink now refuses the certificate connection.
	ssk := b.build(t, app, id, pat(envPAT), connSim)
	v := ssk.Validate(ctx)
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "authenticates with a certificate")
	_, err = ssk.Deliver(ctx, delivery(app, "s2", "another-secret"))
	require.True(t, sink.IsPermanent(err))
	require.Equal(t, held, b.control(t, http.MethodGet, "endpoints/"+id, nil)["key"], "nothing was written")
}
