package kube_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rotor-dev/rotor/internal/sim/kube"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

type bundle struct {
	sim  *simtest.Sim
	k    *simfile.Kubernetes
	exec *kubernetes.Clientset
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
	require.NotNil(t, s.Info.Kubernetes, "sim.json describes the Kubernetes API server")
	return bundle{sim: s, k: s.Info.Kubernetes, exec: fromKubeconfig(t, s.Info.Kubernetes.Kubeconfig, "")}
}

// fromKubeconfig is client-go configured as kubectl is, from a kubeconfig
// file and a context, speaking JSON.
func fromKubeconfig(t *testing.T, path, context string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	require.NoError(t, err)
	cfg.ContentType = "application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return cs
}

func withToken(t *testing.T, k *simfile.Kubernetes, token string) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: k.Server, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile}, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	require.NoError(t, err)
	return cs
}

func TestExecPluginKubeconfigReadsTheDemoSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sec, err := b.exec.CoreV1().Secrets(kube.DemoNamespace).Get(ctx, kube.DemoSecret, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "set-by-hand-before-rotor", string(sec.Data[kube.DemoSecretKey]))
	require.NotEmpty(t, sec.ResourceVersion)
	v, err := b.exec.Discovery().ServerVersion()
	require.NoError(t, err)
	require.Equal(t, "1", v.Major)
}

func TestUpdateWithAStaleResourceVersionIsAConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	secrets := b.exec.CoreV1().Secrets(kube.DemoNamespace)
	sec, err := secrets.Get(ctx, kube.DemoSecret, metav1.GetOptions{})
	require.NoError(t, err)
	first := sec.DeepCopy()
	first.Data["other"] = []byte("one")
	updated, err := secrets.Update(ctx, first, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NotEqual(t, sec.ResourceVersion, updated.ResourceVersion)

	sec.Data["other"] = []byte("two")
	_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	require.True(t, apierrors.IsConflict(err), "a stale resourceVersion is 409 Conflict: %v", err)
	require.Contains(t, err.Error(), "the object has been modified")
}

func TestTokensAreAuthorized(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ro := withToken(t, b.k, b.k.ReadOnlyToken)
	sec, err := ro.CoreV1().Secrets(kube.DemoNamespace).Get(ctx, kube.DemoSecret, metav1.GetOptions{})
	require.NoError(t, err, "the read-only token reads")
	_, err = ro.CoreV1().Secrets(kube.DemoNamespace).Update(ctx, sec, metav1.UpdateOptions{})
	require.True(t, apierrors.IsForbidden(err), "the read-only token may not update: %v", err)
	require.Contains(t, err.Error(), `cannot update resource "secrets"`)

	_, err = withToken(t, b.k, "not-a-token").CoreV1().Secrets(kube.DemoNamespace).Get(ctx, kube.DemoSecret, metav1.GetOptions{})
	require.True(t, apierrors.IsUnauthorized(err), "an unknown token is 401: %v", err)

	_, err = b.exec.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	require.True(t, apierrors.IsForbidden(err), "rotor's token does not reach kube-system: %v", err)

	_, err = b.exec.CoreV1().Secrets(kube.DemoNamespace).Get(ctx, "absent", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "%v", err)
}

func TestRolloutRestartCompletesInSimulatedTimeAndPodsReadTheSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	secrets := b.exec.CoreV1().Secrets(kube.DemoNamespace)
	sec, err := secrets.Get(ctx, kube.DemoSecret, metav1.GetOptions{})
	require.NoError(t, err)
	sec.Data[kube.DemoSecretKey] = []byte("new-value")
	_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)

	deps := b.exec.AppsV1().Deployments(kube.DemoNamespace)
	before, err := deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	d, err := deps.Patch(ctx, kube.DemoDeployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Equal(t, before.Generation+1, d.Generation)
	require.Less(t, d.Status.ObservedGeneration, d.Generation, "the controller has not observed it yet")

	b.sim.AdvanceClock(2 * time.Second)
	d, err = deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, d.Generation, d.Status.ObservedGeneration)
	require.Greater(t, d.Status.Replicas, d.Status.UpdatedReplicas, "old pods are still there")

	b.sim.AdvanceClock(kube.DefaultRollout)
	d, err = deps.Get(ctx, kube.DemoDeployment, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, *d.Spec.Replicas, d.Status.UpdatedReplicas)
	require.Equal(t, *d.Spec.Replicas, d.Status.AvailableReplicas)
	require.Equal(t, *d.Spec.Replicas, d.Status.Replicas)

	var found bool
	for _, c := range b.sim.Server.Consumers() {
		if c.Service == kube.ServiceName && c.Target == kube.DemoNamespace+"/Deployment/"+kube.DemoDeployment && c.Field == kube.DemoSecret+"/"+kube.DemoSecretKey {
			found = true
		}
	}
	require.True(t, found, "the restarted pods' reading of the Secret is recorded")
}
