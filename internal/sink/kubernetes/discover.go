package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rotor-dev/rotor/internal/sink"
)

// DiscoverKeys: the namespace first, then the Secret and the workloads in
// it.
func (b *Builder) DiscoverKeys() []string {
	return []string{KeyNamespace, KeySecret, KeyRestart}
}

// Discover lists the cluster's namespaces, a namespace's Secrets (names and
// types only; their data is dropped unread) or its Deployments,
// StatefulSets and DaemonSets (a restart choice's Value is "Kind/name").
// The kubeconfig and context come from q.Spec, as the sink's would.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	str := func(k string) string { v, _ := q.Spec.Settings[k].(string); return strings.TrimSpace(v) }
	if !slices.Contains(b.DiscoverKeys(), q.Key) {
		return nil, &SpecError{Key: q.Key, Msg: fmt.Sprintf("cannot be listed (listable: %s)", strings.Join(b.DiscoverKeys(), ", "))}
	}
	kubeconfig, kctx := str(KeyKubeconfig), str(KeyContext)
	cs, err := b.clientset(kubeconfig, kctx)
	if err != nil {
		return nil, err
	}
	probe := &Sink{cs: cs, where: describeCluster(kubeconfig, kctx)}
	if q.Key == KeyNamespace {
		l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, probe.classify("list namespaces", err)
		}
		out := make([]sink.Choice, 0, len(l.Items))
		for _, n := range l.Items {
			out = append(out, sink.Choice{Value: n.Name, Label: n.Name, Detail: string(n.Status.Phase)})
		}
		return out, nil
	}
	ns := str(KeyNamespace)
	if ns == "" {
		return nil, &SpecError{Key: KeyNamespace, Msg: "choose the namespace first"}
	}
	probe.ns = ns
	var out []sink.Choice
	switch q.Key {
	case KeySecret:
		l, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, probe.classify("list secrets in", err)
		}
		for i := range l.Items {
			sec := &l.Items[i]
			detail := string(sec.Type)
			if sec.Labels[LabelManagedBy] == ManagedByRotor {
				detail += ", managed by rotor"
			}
			out = append(out, sink.Choice{Value: sec.Name, Label: sec.Name, Detail: detail})
			sec.Data, sec.StringData = nil, nil
		}
	case KeyRestart:
		apps := cs.AppsV1()
		d, err := apps.Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, probe.classify("list deployments in", err)
		}
		for _, x := range d.Items {
			out = append(out, workloadChoice("Deployment", x.Name, replicas(x.Spec.Replicas)))
		}
		st, err := apps.StatefulSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, probe.classify("list statefulsets in", err)
		}
		for _, x := range st.Items {
			out = append(out, workloadChoice("StatefulSet", x.Name, replicas(x.Spec.Replicas)))
		}
		ds, err := apps.DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, probe.classify("list daemonsets in", err)
		}
		for _, x := range ds.Items {
			out = append(out, sink.Choice{Value: "DaemonSet/" + x.Name, Label: x.Name, Detail: "DaemonSet"})
		}
	}
	return out, nil
}

func workloadChoice(kind, name string, n int32) sink.Choice {
	return sink.Choice{Value: kind + "/" + name, Label: name, Detail: fmt.Sprintf("%s, %d replicas", kind, n)}
}
