package kubernetes

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim/kube"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// TestConformanceCertificates runs the whole sink suite with certificate
// material: every delivery a kubernetes.io/tls Secret.
func TestConformanceCertificates(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &simHarness{b: setupSim(t, false), certs: true}, sinktest.WithCertificates())
}

func certDelivery(t *testing.T, a domain.Application, keyID string) (sink.Delivery, *sink.Certificate) {
	t.Helper()
	c := sinktest.NewCertificate(t, "CN for "+keyID)
	d := delivery(a, keyID, "unused")
	d.Kind, d.Material = domain.KindCertificate, sink.Material{Certificate: c}
	return d, c
}

func TestACertificateIsATLSSecretWithPKCS8KeyAndTheChain(t *testing.T) {
	t.Parallel()
	b := setupSim(t, false)
	ctx := context.Background()
	a := app(1)
	sk := b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeyClientIDKey: "clientId"}), App: a, Kind: domain.KindCertificate})
	require.Equal(t, sink.StatusReady, sk.Validate(ctx).Status)
	d, c := certDelivery(t, a, "cert-1")
	res, err := sk.Deliver(ctx, d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Contains(t, res.Location, "kubernetes.io/tls")

	got, err := b.admin.CoreV1().Secrets(sk.ns).Get(ctx, sk.name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.SecretTypeTLS, got.Type, "the type is set on create")
	blk, _ := pem.Decode(got.Data[corev1.TLSPrivateKeyKey])
	require.NotNil(t, blk)
	require.Equal(t, "PRIVATE KEY", blk.Type, "tls.key is PKCS#8")
	_, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	cb, _ := pem.Decode(got.Data[corev1.TLSCertKey])
	require.NotNil(t, cb)
	require.Equal(t, c.Leaf().Raw, cb.Bytes, "tls.crt starts with the leaf")
	require.Equal(t, a.AppID, string(got.Data["clientId"]), "the ids go beside it")
	require.NotContains(t, got.Data, DefaultKey, "no client secret key in a TLS Secret")
	require.Equal(t, "cert-1", got.Annotations[AnnotationKeyID])

	// The next certificate replaces both halves in place.
	d2, c2 := certDelivery(t, a, "cert-2")
	_, err = sk.Deliver(ctx, d2)
	require.NoError(t, err)
	got, err = b.admin.CoreV1().Secrets(sk.ns).Get(ctx, sk.name, metav1.GetOptions{})
	require.NoError(t, err)
	sinktest.RequireHoldsCertificate(t, c2, string(got.Data[corev1.TLSPrivateKeyKey])+string(got.Data[corev1.TLSCertKey]), "after the second delivery")
}

func TestACertificateIsRefusedByASecretOfAnotherType(t *testing.T) {
	t.Parallel()
	b := setupSim(t, false)
	ctx := context.Background()
	a := app(1)
	// rotor's own Opaque Secret from the days of client secrets.
	sk := b.build(t, sink.BuildRequest{Spec: b.spec(nil), App: a})
	_, err := sk.Deliver(ctx, delivery(a, "secret-1", "a-client-secret"))
	require.NoError(t, err)
	before, err := b.admin.CoreV1().Secrets(sk.ns).Get(ctx, sk.name, metav1.GetOptions{})
	require.NoError(t, err)

	csk := b.build(t, sink.BuildRequest{Spec: b.spec(nil), App: a, Kind: domain.KindCertificate})
	v := csk.Validate(ctx)
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "is of type Opaque")
	require.Contains(t, v.Reason, "delete the Secret")
	d, c := certDelivery(t, a, "cert-1")
	_, err = csk.Deliver(ctx, d)
	var te *TypeError
	require.ErrorAs(t, err, &te)
	require.True(t, sink.IsPermanent(err))
	sinktest.NoSecret(t, err, sinktest.KeyMarker(t, c), "a-client-secret")
	after, err := b.admin.CoreV1().Secrets(sk.ns).Get(ctx, sk.name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, before.ResourceVersion, after.ResourceVersion, "nothing was written")

	// The check is the sink's, and the API server agrees: a Secret's type never changes.
	after.Type = corev1.SecretTypeTLS
	after.Data = map[string][]byte{corev1.TLSCertKey: c.ChainPEM(), corev1.TLSPrivateKeyKey: []byte("x")}
	_, err = b.admin.CoreV1().Secrets(sk.ns).Update(ctx, after, metav1.UpdateOptions{})
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	require.Contains(t, err.Error(), "field is immutable")

	// A client secret still goes into a TLS Secret (a key beside tls.crt), as before.
	tsk := b.build(t, sink.BuildRequest{Spec: b.spec(nil), App: app(2), Kind: domain.KindCertificate})
	d2, _ := certDelivery(t, app(2), "cert-2")
	_, err = tsk.Deliver(ctx, d2)
	require.NoError(t, err)
	_, err = tsk.Deliver(ctx, delivery(app(2), "secret-2", "another-secret"))
	require.NoError(t, err)
}

func TestACertificateDeliveryIsFollowedByTheSameRolloutRestart(t *testing.T) {
	t.Parallel()
	b := setupSim(t, true)
	ctx := context.Background()
	a := app(1)
	sk := b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeyRolloutTimeout: "2m",
		KeyRestart: []any{map[string]any{"kind": "Deployment", "name": kube.DemoDeployment}}}), App: a, Kind: domain.KindCertificate})
	require.Equal(t, sink.StatusReady, sk.Validate(ctx).Status, sk.Validate(ctx).Reason)
	d, _ := certDelivery(t, a, "cert-1")
	_, err := sk.Deliver(ctx, d)
	require.NoError(t, err)
	deps := b.admin.AppsV1().Deployments(kube.DemoNamespace)
	before, err := deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, drive(t, b.fake, func() error { return sk.AfterAll(ctx, d) }))
	after, err := deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, before.Generation+1, after.Generation, "one restart")
	require.Equal(t, "cert-1", after.Spec.Template.Annotations[AnnotationRestartedFor])
}

func TestTheSimulatorRequiresBothHalvesOfATLSSecret(t *testing.T) {
	t.Parallel()
	b := setupSim(t, false)
	_, err := b.admin.CoreV1().Secrets(kube.DemoNamespace).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "half"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: []byte("x")}}, metav1.CreateOptions{})
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	require.Contains(t, err.Error(), "data[tls.key]: Required value")
}
