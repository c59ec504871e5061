package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/kube"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// simBundle is the simulator, the production builder on it, and the
// test's own admin client (which may read values; the sink's may too, but
// the test checks what the sink wrote with its own).
type simBundle struct {
	sim     *simtest.Sim
	k       *simfile.Kubernetes
	builder sink.Builder
	admin   *k8s.Clientset
	fake    *clock.Fake
	dir     string
}

func setupSim(t *testing.T, fake bool) simBundle {
	t.Helper()
	var clk simtest.Clock
	var f *clock.Fake
	if fake {
		f = clock.NewFake(time.Now().UTC())
		clk = f
	}
	s := simtest.Start(t, simtest.Options{Seed: "demo", Clock: clk})
	require.NotNil(t, s.Info.Kubernetes)
	b, err := Kind{}.NewBuilder(sink.Deps{Clock: s.Clock})
	require.NoError(t, err)
	k := s.Info.Kubernetes
	return simBundle{sim: s, k: k, builder: b, admin: tokenClient(t, k, s.AdminToken), fake: f, dir: t.TempDir()}
}

func tokenClient(t *testing.T, k *simfile.Kubernetes, token string) *k8s.Clientset {
	t.Helper()
	cs, err := k8s.NewForConfig(&rest.Config{Host: k.Server, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile}, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	require.NoError(t, err)
	return cs
}

// kubeconfig writes a token kubeconfig for server into the bundle's dir.
func (b simBundle) kubeconfig(t *testing.T, name, server, token string) string {
	t.Helper()
	cfg := map[string]any{"apiVersion": "v1", "kind": "Config",
		"clusters":        []any{map[string]any{"name": "c", "cluster": map[string]any{"server": server, "certificate-authority": b.k.CAFile}}},
		"users":           []any{map[string]any{"name": "u", "user": map[string]any{"token": token}}},
		"contexts":        []any{map[string]any{"name": "ctx", "context": map[string]any{"cluster": "c", "user": "u"}}},
		"current-context": "ctx"}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(b.dir, name)
	require.NoError(t, os.WriteFile(path, raw, 0o600))
	return path
}

func (b simBundle) spec(settings map[string]any) domain.SinkSpec {
	s := map[string]any{KeyKubeconfig: b.k.Kubeconfig, KeyContext: b.k.Context, KeyNamespace: kube.DemoNamespace,
		KeySecret: "{{ .App.DisplayName | slug }}-azure"}
	for k, v := range settings {
		s[k] = v
	}
	return domain.SinkSpec{Type: Type, Settings: s}
}

func app(n int64) domain.Application {
	id := fmt.Sprintf("kube-app-%d", n)
	return domain.Application{Org: domain.DefaultOrg, TenantID: "tenant-kube", ObjectID: "obj-" + id, AppID: id, DisplayName: fmt.Sprintf("Kube App %d", n)}
}

func delivery(a domain.Application, keyID, value string) sink.Delivery {
	now := time.Now().UTC()
	return sink.Delivery{Org: a.Org, RunID: "run-" + keyID, App: a, TenantID: a.TenantID, ClientID: a.AppID, KeyID: keyID,
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(24 * time.Hour)}
}

// TestConformance runs the sink suite against the simulated API server
// over HTTPS, through client-go, with the simulator's exec-plugin
// kubeconfig.
func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &simHarness{b: setupSim(t, false)})
}

type simHarness struct {
	b simBundle
	n atomic.Int64
	// certs: the suite delivers certificates (sinktest.WithCertificates),
	// so a foreign Secret is a TLS one and Read returns tls.key + tls.crt.
	certs bool
}

var (
	_ sinktest.Harness  = (*simHarness)(nil)
	_ sinktest.Tamperer = (*simHarness)(nil)
)

func (h *simHarness) Builder(*testing.T) sink.Builder { return h.b.builder }

func (h *simHarness) Request(*testing.T) sink.BuildRequest {
	req := sink.BuildRequest{Spec: h.b.spec(nil), App: app(h.n.Add(1))}
	if h.certs {
		req.Kind = domain.KindCertificate
	}
	return req
}

func (h *simHarness) secretOf(t *testing.T, target sink.TargetID) (ns, name string) {
	t.Helper()
	_, ns, name, err := ParseTarget(target)
	require.NoError(t, err)
	return ns, name
}

func (h *simHarness) Foreign(t *testing.T, target sink.TargetID) {
	ns, name := h.secretOf(t, target)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": "x"}},
		Data:       map[string][]byte{DefaultKey: []byte("someone-elses-value")}}
	if h.certs {
		theirs := sinktest.NewCertificate(t, "someone-else")
		key, err := theirs.KeyPEM()
		require.NoError(t, err)
		sec.Type = corev1.SecretTypeTLS
		sec.Data = map[string][]byte{corev1.TLSCertKey: theirs.ChainPEM(), corev1.TLSPrivateKeyKey: []byte(key.Reveal())}
	}
	_, err := h.b.admin.CoreV1().Secrets(ns).Create(context.Background(), sec, metav1.CreateOptions{})
	require.NoError(t, err)
}

func (h *simHarness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	ns, name := h.secretOf(t, target)
	sec, err := h.b.admin.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return sinktest.Held{}
	}
	require.NoError(t, err)
	if h.certs {
		return sinktest.Held{Exists: true, Version: sec.ResourceVersion,
			Secret: secret.New(string(sec.Data[corev1.TLSPrivateKeyKey]) + string(sec.Data[corev1.TLSCertKey]))}
	}
	return sinktest.Held{Exists: true, Version: sec.ResourceVersion, Secret: secret.New(string(sec.Data[DefaultKey]))}
}

// Denied uses a kubeconfig whose token authenticates but holds no role.
func (h *simHarness) Denied(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Spec = h.b.spec(map[string]any{KeyKubeconfig: h.b.kubeconfig(t, "denied", h.b.k.Server, h.b.k.NoAccessToken), KeyContext: "ctx"})
	return req
}

// Unreachable points a kubeconfig at a loopback port nothing listens on.
func (h *simHarness) Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	req.Spec = h.b.spec(map[string]any{KeyKubeconfig: h.b.kubeconfig(t, "unreachable", "https://"+addr, h.b.k.Token), KeyContext: "ctx"})
	return req
}

// Tamper changes the value by hand, keeping rotor's marks.
func (h *simHarness) Tamper(t *testing.T, target sink.TargetID) {
	ns, name := h.secretOf(t, target)
	ctx := context.Background()
	sec, err := h.b.admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	sec.Data[DefaultKey] = []byte("pasted-by-hand")
	_, err = h.b.admin.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func (b simBundle) build(t *testing.T, req sink.BuildRequest) *Sink {
	t.Helper()
	s, err := b.builder.Build(context.Background(), req)
	require.NoError(t, err)
	return s.(*Sink)
}

// armConflict makes the simulator change the Secret between the sink's
// next read and its write.
func (b simBundle) armConflict(t *testing.T, ns, name string) {
	t.Helper()
	u := b.k.Server + "/_sim/kubernetes/conflict?" + url.Values{"namespace": {ns}, "name": {name}}.Encode()
	req, err := http.NewRequest(http.MethodPost, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.sim.AdminToken)
	resp, err := b.sim.HTTP.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestAConflictMidDeliveryIsRetriedAndLosesNoOtherKey(t *testing.T) {
	t.Parallel()
	b := setupSim(t, false)
	ctx := context.Background()
	a := app(1)
	req := sink.BuildRequest{Spec: b.spec(map[string]any{KeyClientIDKey: "clientId"}), App: a}
	sk := b.build(t, req)
	_, err := sk.Deliver(ctx, delivery(a, "key-1", "first-value"))
	require.NoError(t, err)
	// Someone else keeps a key of their own in the same Secret.
	sec, err := b.admin.CoreV1().Secrets(sk.ns).Get(ctx, sk.name, metav1.GetOptions{})
	require.NoError(t, err)
	sec.Data["theirs"] = []byte("keep-me")
	_, err = b.admin.CoreV1().Secrets(sk.ns).Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)

	b.armConflict(t, sk.ns, sk.name)
	res, err := sk.Deliver(ctx, delivery(a, "key-2", "second-value"))
	require.NoError(t, err, "the 409 is retried on a fresh read")
	require.True(t, res.Changed)

	got, err := b.admin.CoreV1().Secrets(sk.ns).Get(ctx, sk.name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "second-value", string(got.Data[DefaultKey]))
	require.Equal(t, a.AppID, string(got.Data["clientId"]))
	require.Equal(t, "keep-me", string(got.Data["theirs"]), "a key written before the read survives")
	require.Contains(t, got.Data, kube.ConcurrentKey, "the concurrent writer's key survives the retry")
	require.Equal(t, "key-2", got.Annotations[AnnotationKeyID])
	require.Equal(t, got.ResourceVersion, res.Version)
}

// drive runs fn while moving the fake clock to each of its sleeps'
// deadlines, so a rollout wait takes no real time.
func drive(t *testing.T, f *clock.Fake, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		wctx, wcancel := context.WithCancel(ctx)
		waited := make(chan error, 1)
		go func() { waited <- f.WaitSleepers(wctx, 1) }()
		select {
		case err := <-done:
			wcancel()
			return err
		case err := <-waited:
			wcancel()
			require.NoError(t, err, "the sink neither finished nor slept")
			f.AdvanceToNext()
		}
	}
}

func TestRolloutRestartWaitsForCompletionAndIsNotRepeated(t *testing.T) {
	t.Parallel()
	b := setupSim(t, true)
	ctx := context.Background()
	a := app(1)
	req := sink.BuildRequest{Spec: b.spec(map[string]any{KeySecret: kube.DemoSecret, KeyAdopt: true, KeyRolloutTimeout: "2m",
		KeyRestart: []any{map[string]any{"kind": "Deployment", "name": kube.DemoDeployment}}}), App: a}
	sk := b.build(t, req)
	require.Equal(t, sink.StatusReady, sk.Validate(ctx).Status, sk.Validate(ctx).Reason)
	d := delivery(a, "key-1", "rotated-value")
	_, err := sk.Deliver(ctx, d)
	require.NoError(t, err)

	deps := b.admin.AppsV1().Deployments(kube.DemoNamespace)
	before, err := deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	restartedAt := b.sim.Now()
	require.NoError(t, drive(t, b.fake, func() error { return sk.AfterAll(ctx, d) }))
	after, err := deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, before.Generation+1, after.Generation, "one restart")
	require.Equal(t, "key-1", after.Spec.Template.Annotations[AnnotationRestartedFor])
	require.NotEmpty(t, after.Spec.Template.Annotations[AnnotationRestart])
	require.True(t, deploymentRollout(after).done, "AfterAll returned once the rollout was complete")
	require.GreaterOrEqual(t, b.sim.Now().Sub(restartedAt), kube.DefaultRollout, "it waited the rollout out")

	var pods *time.Time
	for _, c := range b.sim.Server.Consumers() {
		if c.Target == kube.DemoNamespace+"/Deployment/"+kube.DemoDeployment && c.Field == kube.DemoSecret+"/"+DefaultKey {
			pods = &c.WrittenAt
		}
	}
	require.NotNil(t, pods, "the restarted pods read the Secret")
	require.False(t, pods.Before(restartedAt), "they read it after the restart")

	// Repeated (a crashed run's replacement): no second restart.
	require.NoError(t, drive(t, b.fake, func() error { return sk.AfterAll(ctx, d) }))
	again, err := deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, after.Generation, again.Generation)
}

func TestANeverReadyWorkloadFailsAfterTheTimeout(t *testing.T) {
	t.Parallel()
	b := setupSim(t, true)
	ctx := context.Background()
	one := int32(1)
	_, err := b.admin.AppsV1().Deployments(kube.DemoNamespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Annotations: map[string]string{kube.AnnotationNeverReady: "true"}},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "stuck"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "stuck"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	a := app(1)
	sk := b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeyRolloutTimeout: "30s",
		KeyRestart: []any{map[string]any{"kind": "Deployment", "name": "stuck"}}}), App: a})
	d := delivery(a, "key-1", "v")
	_, err = sk.Deliver(ctx, d)
	require.NoError(t, err)
	start := b.sim.Now()
	err = drive(t, b.fake, func() error { return sk.AfterAll(ctx, d) })
	var te *RolloutTimeoutError
	require.ErrorAs(t, err, &te)
	require.False(t, sink.IsPermanent(err), "a rollout that may yet finish is retried")
	require.Contains(t, err.Error(), "Deployment/stuck")
	require.GreaterOrEqual(t, b.sim.Now().Sub(start), 30*time.Second)
	require.Less(t, b.sim.Now().Sub(start), 35*time.Second, "it gives up at the timeout")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	b := setupSim(t, false)
	ctx := context.Background()
	a := app(1)
	t.Run("the exec-plugin kubeconfig is ready", func(t *testing.T) {
		v := b.build(t, sink.BuildRequest{Spec: b.spec(nil), App: a}).Validate(ctx)
		require.Equal(t, sink.StatusReady, v.Status, v.Reason)
		require.Contains(t, v.Reason, "may create")
	})
	t.Run("a read-only token fails with the permission to grant", func(t *testing.T) {
		v := b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeyContext: b.k.ReadOnlyContext}), App: a}).Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status, v.Reason)
		require.Contains(t, v.Reason, "may not create secrets in namespace payments")
		require.Error(t, v.Err)
		require.True(t, sink.IsPermanent(v.Err))
	})
	t.Run("a workload that does not exist fails", func(t *testing.T) {
		v := b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeyRestart: []any{map[string]any{"kind": "StatefulSet", "name": "nope"}}}), App: a}).Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status, v.Reason)
		require.Contains(t, v.Reason, "StatefulSet/nope does not exist")
	})
	t.Run("names the workloads that read the Secret but are not restarted", func(t *testing.T) {
		v := b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeySecret: kube.DemoSecret, KeyAdopt: true}), App: a}).Validate(ctx)
		require.Equal(t, sink.StatusReady, v.Status, v.Reason)
		require.Contains(t, v.Reason, "Deployment/payments-api read this Secret but are not in restart")
		v = b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeySecret: kube.DemoSecret, KeyAdopt: true,
			KeyRestart: []any{map[string]any{"kind": "Deployment", "name": kube.DemoDeployment}}}), App: a}).Validate(ctx)
		require.Equal(t, sink.StatusReady, v.Status, v.Reason)
		require.NotContains(t, v.Reason, "note:")
	})
	t.Run("the demo Secret is foreign until adopted", func(t *testing.T) {
		v := b.build(t, sink.BuildRequest{Spec: b.spec(map[string]any{KeySecret: kube.DemoSecret}), App: a}).Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status, v.Reason)
		require.Contains(t, v.Reason, "adopt: true")
	})
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	b := setupSim(t, false)
	ctx := context.Background()
	disc := b.builder.(sink.Discoverer)
	q := func(key string, settings map[string]any) []sink.Choice {
		t.Helper()
		got, err := disc.Discover(ctx, sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: b.spec(settings), Key: key})
		require.NoError(t, err)
		return got
	}
	require.Contains(t, q(KeyNamespace, nil), sink.Choice{Value: kube.DemoNamespace, Label: kube.DemoNamespace, Detail: "Active"})
	var names []string
	for _, c := range q(KeySecret, nil) {
		names = append(names, c.Value)
	}
	require.Contains(t, names, kube.DemoSecret)
	require.Contains(t, q(KeyRestart, nil), sink.Choice{Value: "Deployment/" + kube.DemoDeployment, Label: kube.DemoDeployment, Detail: "Deployment, 2 replicas"})
	_, err := disc.Discover(ctx, sink.DiscoverQuery{Spec: b.spec(map[string]any{KeyNamespace: nil}), Key: KeySecret})
	require.Error(t, err)
}
