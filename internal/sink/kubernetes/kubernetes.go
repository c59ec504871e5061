// Package kubernetes is the "kubernetes" sink: it writes a rotated client
// secret into one key of a Kubernetes Secret through client-go's typed
// clients, then — once every sink of the run holds it (sink.Finisher) —
// restarts the Deployments, StatefulSets and DaemonSets that read it, as
// `kubectl rollout restart` does, and waits for their rollouts.
//
// A spec looks like:
//
//	sinks:
//	  - type: kubernetes
//	    kubeconfig: /etc/rotor/aks.kubeconfig   # empty: in-cluster (service account)
//	    context: payments-prod                  # default: the kubeconfig's current context
//	    namespace: payments
//	    secret: "{{ .App.DisplayName | slug }}-azure"
//	    key: clientSecret                       # the default
//	    client_id_key: clientId                 # optional: also write the app id
//	    tenant_id_key: tenantId                 # optional: also write the tenant id
//	    restart:
//	      - {kind: Deployment, name: payments-api}
//	    rollout_timeout: 5m                     # the default
//	    adopt: false
//
// The Secret is rotor's when it carries the label
// app.kubernetes.io/managed-by=rotor and the annotation rotor.dev/app-id
// of the application; any other existing Secret is foreign and is only
// written with adopt: true (which then marks it). rotor.dev/key-id names
// the credential the Secret holds, which makes a repeated delivery a no-op
// and answers Holds. Writes are Updates carrying the resourceVersion read
// just before: a concurrent writer's change makes the API server answer 409
// Conflict, and the sink reads again and retries (a few times), so no
// other key of the Secret is lost. Version is the Secret's
// resourceVersion.
//
// The sink's target id is
// kubernetes:namespaces/<ns>/secrets/<name>@<cluster>, where <cluster> is
// "in-cluster" or "kubeconfig=<path>,context=<context or ->" (TargetFor).
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type this package builds.
const Type = "kubernetes"

// Ownership markers and bookkeeping rotor puts on what it writes.
const (
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	ManagedByRotor    = "rotor"
	AnnotationAppID   = "rotor.dev/app-id"
	AnnotationKeyID   = "rotor.dev/key-id"
	AnnotationRunID   = "rotor.dev/run-id"
	AnnotationTenant  = "rotor.dev/tenant-id"
	AnnotationRestart = "kubectl.kubernetes.io/restartedAt"
	// AnnotationRestartedFor, beside restartedAt on a workload's pod
	// template, names the credential the restart was for, so a repeated
	// AfterAll does not restart the workload again.
	AnnotationRestartedFor = "rotor.dev/restarted-for-key"
)

// maxWriteAttempts bounds the read-modify-write loop on 409 Conflict.
const maxWriteAttempts = 5

// pollInterval is how often a rollout is looked at.
const pollInterval = 2 * time.Second

// Kind is the "kubernetes" sink kind.
type Kind struct{}

var (
	_ sink.Kind          = Kind{}
	_ sink.Builder       = (*Builder)(nil)
	_ sink.Discoverer    = (*Builder)(nil)
	_ sink.Sink          = (*Sink)(nil)
	_ sink.Validator     = (*Sink)(nil)
	_ sink.Holder        = (*Sink)(nil)
	_ sink.VersionReader = (*Sink)(nil)
	_ sink.Finisher      = (*Sink)(nil)
)

// Type returns "kubernetes".
func (Kind) Type() string { return Type }

// CheckSpec validates the settings without I/O (the kubeconfig is not
// read: it may not exist where the configuration is checked).
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// NewBuilder needs only the clock (rollout deadlines) and a logger.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Clock == nil {
		return nil, errors.New("kubernetes sink: a clock is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Builder{clock: deps.Clock, log: log}, nil
}

// Builder makes kubernetes sinks.
type Builder struct {
	clock clock.Clock
	log   *slog.Logger
	// restConfig, when set, replaces loading the kubeconfig (tests).
	restConfig func(kubeconfig, context string) (*rest.Config, error)
}

// TargetFor is the target id of Secret ns/name on cluster (see the
// package comment).
func TargetFor(cluster, ns, name string) (sink.TargetID, error) {
	return sink.NewTargetID(Type, "namespaces/"+ns+"/secrets/"+name+"@"+cluster)
}

// ParseTarget splits a kubernetes target id.
func ParseTarget(t sink.TargetID) (cluster, ns, name string, err error) {
	loc, cluster, ok := strings.Cut(t.Ref(), "@")
	parts := strings.Split(loc, "/")
	if t.Kind() != Type || !ok || cluster == "" || len(parts) != 4 || parts[0] != "namespaces" || parts[2] != "secrets" || parts[1] == "" || parts[3] == "" {
		return "", "", "", fmt.Errorf("%w: %s is not a kubernetes Secret target", sink.ErrBadTargetID, t)
	}
	return cluster, parts[1], parts[3], nil
}

// parseCluster is the kubeconfig and context of a target's cluster part.
func parseCluster(cluster string) (kubeconfig, context string, err error) {
	if cluster == inCluster {
		return "", "", nil
	}
	rest, ok := strings.CutPrefix(cluster, "kubeconfig=")
	path, ctx, ok2 := strings.Cut(rest, ",context=")
	if !ok || !ok2 || path == "" || ctx == "" {
		return "", "", fmt.Errorf("%w: cluster %q", sink.ErrBadTargetID, cluster)
	}
	if ctx == "-" {
		ctx = ""
	}
	return path, ctx, nil
}

// Resolve renders the Secret's name for req.App, ignoring req.Pinned.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	name, err := st.secretName(req.App)
	if err != nil {
		return sink.TargetID{}, err
	}
	return TargetFor(st.cluster(), st.namespace, name)
}

// Build makes the sink on req.Pinned when set (cluster, namespace and
// name all come from it, so neither a rename nor a changed spec moves the
// Secret), else on what Resolve returns. It reads the kubeconfig.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	target := req.Pinned
	if target.IsZero() {
		if target, err = b.Resolve(req); err != nil {
			return nil, err
		}
	}
	cluster, ns, name, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	kubeconfig, kctx, err := parseCluster(cluster)
	if err != nil {
		return nil, err
	}
	cs, err := b.clientset(kubeconfig, kctx)
	if err != nil {
		return nil, err
	}
	return &Sink{cs: cs, clock: b.clock, log: b.log, st: st, target: target, ns: ns, name: name, app: req.App,
		where: describeCluster(kubeconfig, kctx), certs: req.Certificates()}, nil
}

func describeCluster(kubeconfig, kctx string) string {
	switch {
	case kubeconfig == "":
		return "in-cluster"
	case kctx == "":
		return "kubeconfig " + kubeconfig
	}
	return fmt.Sprintf("kubeconfig %s context %s", kubeconfig, kctx)
}

// clientset makes client-go's typed clients for a kubeconfig (with its exec
// credential plugins, as AKS kubeconfigs use kubelogin) or, with none,
// in-cluster from the pod's service account. Requests and answers are JSON.
func (b *Builder) clientset(kubeconfig, kctx string) (kubernetes.Interface, error) {
	load := b.restConfig
	if load == nil {
		load = loadRestConfig
	}
	cfg, err := load(kubeconfig, kctx)
	if err != nil {
		return nil, sink.Permanent(fmt.Errorf("kubernetes sink: %s: %w", describeCluster(kubeconfig, kctx), err))
	}
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	cfg.UserAgent = "rotor"
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	// client-go's default limiter (5/s) would pace a rollout wait's polls;
	// a sink makes a handful of requests, so a higher ceiling costs the
	// API server nothing.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 20, 40
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, sink.Permanent(fmt.Errorf("kubernetes sink: client for %s: %w", describeCluster(kubeconfig, kctx), err))
	}
	return cs, nil
}

func loadRestConfig(kubeconfig, kctx string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
}

// Sink writes one key of one Secret.
type Sink struct {
	cs     kubernetes.Interface
	clock  clock.Clock
	log    *slog.Logger
	st     settings
	target sink.TargetID
	ns     string
	name   string
	app    domain.Application
	where  string
	// certs is set for a certificate policy (BuildRequest.Kind): Validate
	// then also checks the Secret's type.
	certs bool
	// claimed is set once this sink has written, or tried to write, the
	// Secret: from then on it is this sink's own, so a retried write
	// whose first answer was lost does not call rotor's Secret foreign.
	claimed atomic.Bool
}

// Target is the Secret's id.
func (s *Sink) Target() sink.TargetID { return s.target }

// Describe names the Secret and key.
func (s *Sink) Describe() string {
	return fmt.Sprintf("Kubernetes Secret %s/%s key %s (%s)", s.ns, s.name, s.st.key, s.where)
}

func (s *Sink) secrets() interface {
	Get(context.Context, string, metav1.GetOptions) (*corev1.Secret, error)
	Create(context.Context, *corev1.Secret, metav1.CreateOptions) (*corev1.Secret, error)
	Update(context.Context, *corev1.Secret, metav1.UpdateOptions) (*corev1.Secret, error)
} {
	return s.cs.CoreV1().Secrets(s.ns)
}

// owned reports whether sec carries rotor's marks for this application.
func (s *Sink) owned(sec *corev1.Secret) bool {
	return sec.Labels[LabelManagedBy] == ManagedByRotor && sec.Annotations[AnnotationAppID] == s.app.AppID
}

// mayWrite: rotor's own, adopted, or already written by this sink.
func (s *Sink) mayWrite(sec *corev1.Secret) bool {
	return s.owned(sec) || s.st.adopt || s.claimed.Load()
}

// ForeignError refuses a Secret rotor did not write. Permanent.
type ForeignError struct {
	Namespace, Name string
	// ManagedBy is the Secret's managed-by label ("" when none).
	ManagedBy string
}

func (e *ForeignError) Error() string {
	who := "it has no app.kubernetes.io/managed-by=rotor label"
	if e.ManagedBy == ManagedByRotor {
		who = "it is marked as rotor's, but for another application (rotor.dev/app-id)"
	} else if e.ManagedBy != "" {
		who = fmt.Sprintf("it is managed by %q", e.ManagedBy)
	}
	return fmt.Sprintf("kubernetes sink: Secret %s/%s exists and rotor did not create it (%s): set adopt: true to take it over, or choose another secret name",
		e.Namespace, e.Name, who)
}

// Permanent: only a person can resolve whose Secret it is.
func (e *ForeignError) Permanent() bool { return true }

// TypeError refuses to put a certificate into an existing Secret of
// another type: a certificate is delivered as a kubernetes.io/tls Secret
// (what Ingress controllers, cert-manager's consumers and
// `kubectl create secret tls` use), and the API server never changes a
// Secret's type. Permanent.
type TypeError struct {
	Namespace, Name string
	// Type is the Secret's type now.
	Type corev1.SecretType
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("kubernetes sink: Secret %s/%s is of type %s, and a certificate is delivered as a %s Secret (tls.crt, tls.key) whose type Kubernetes never lets change: delete the Secret so rotor creates it as %s, or choose another secret name",
		e.Namespace, e.Name, e.Type, corev1.SecretTypeTLS, corev1.SecretTypeTLS)
}

// Permanent: a person must delete or rename the Secret.
func (e *TypeError) Permanent() bool { return true }

// secretType is the type the Secret must have for d's material; "" for a
// client secret, which goes into any type (an Opaque Secret, or a key
// beside tls.crt in a TLS one).
func secretType(d sink.Delivery) corev1.SecretType {
	if d.Material.Certificate != nil {
		return corev1.SecretTypeTLS
	}
	return ""
}

// typeOf is sec's type as the API server defaults it.
func typeOf(sec *corev1.Secret) corev1.SecretType {
	if sec.Type == "" {
		return corev1.SecretTypeOpaque
	}
	return sec.Type
}

// Deliver writes the credential, creating the Secret when it is absent: a
// client secret into the spec's key, a certificate as a kubernetes.io/tls
// Secret's tls.crt (the chain, PEM) and tls.key (PKCS#8 PEM); the ids
// beside it either way. Idempotent through rotor.dev/key-id.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	if d.Material.IsZero() {
		return sink.Result{}, sink.Permanent(errors.New("kubernetes sink: the delivery carries no credential"))
	}
	data, err := s.data(d)
	if err != nil {
		return sink.Result{}, err
	}
	want := secretType(d)
	secrets := s.secrets()
	for attempt := 1; ; attempt++ {
		cur, err := secrets.Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			s.claimed.Store(true)
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns}, Type: corev1.SecretTypeOpaque}
			if want != "" {
				sec.Type = want
			}
			s.apply(sec, d, data)
			created, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) && attempt < maxWriteAttempts {
				continue // created meanwhile (by a retry of ours, or someone else): look again
			}
			if err != nil {
				return sink.Result{}, s.classify("create", err)
			}
			return sink.Result{Changed: true, Location: s.location(created, d), Version: created.ResourceVersion}, nil
		}
		if err != nil {
			return sink.Result{}, s.classify("read", err)
		}
		if !s.mayWrite(cur) {
			return sink.Result{}, &ForeignError{Namespace: s.ns, Name: s.name, ManagedBy: cur.Labels[LabelManagedBy]}
		}
		if want != "" && typeOf(cur) != want {
			return sink.Result{}, &TypeError{Namespace: s.ns, Name: s.name, Type: typeOf(cur)}
		}
		if s.owned(cur) && cur.Annotations[AnnotationKeyID] == d.KeyID {
			return sink.Result{Changed: false, Location: s.location(cur, d), Version: cur.ResourceVersion}, nil
		}
		adopted := !s.owned(cur)
		s.claimed.Store(true)
		s.apply(cur, d, data)
		upd, err := secrets.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			if attempt < maxWriteAttempts {
				s.log.DebugContext(ctx, "kubernetes sink: Secret changed between read and write, reading again",
					"namespace", s.ns, "secret", s.name, "attempt", attempt)
				continue
			}
			return sink.Result{}, sink.Transient(fmt.Errorf("kubernetes sink: Secret %s/%s kept changing under %d writes (409 Conflict each time): %w",
				s.ns, s.name, maxWriteAttempts, err))
		}
		if err != nil {
			return sink.Result{}, s.classify("update", err)
		}
		note := ""
		if adopted {
			note = "took over a Secret rotor did not create (adopt), and marked it rotor's"
		}
		return sink.Result{Changed: true, Location: s.location(upd, d), Version: upd.ResourceVersion, Note: note}, nil
	}
}

// data is what d puts into the Secret's data, by key.
func (s *Sink) data(d sink.Delivery) (map[string][]byte, error) {
	c := d.Material.Certificate
	if c == nil {
		// The one place a client secret leaves rotor.
		return map[string][]byte{s.st.key: []byte(d.Material.Secret.Reveal())}, nil
	}
	if c.Leaf() == nil {
		return nil, sink.Permanent(errors.New("kubernetes sink: the certificate credential has no certificate"))
	}
	key, err := c.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("kubernetes sink: a TLS Secret needs the private key: %w", err)
	}
	// The one place a certificate's private key leaves rotor.
	return map[string][]byte{corev1.TLSCertKey: c.ChainPEM(), corev1.TLSPrivateKeyKey: []byte(key.Reveal())}, nil
}

// apply sets the credential's data, the ids and rotor's marks on sec.
func (s *Sink) apply(sec *corev1.Secret, d sink.Delivery, data map[string][]byte) {
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	maps.Copy(sec.Data, data)
	if s.st.clientIDKey != "" {
		sec.Data[s.st.clientIDKey] = []byte(d.ClientID)
	}
	if s.st.tenantIDKey != "" {
		sec.Data[s.st.tenantIDKey] = []byte(d.TenantID)
	}
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[LabelManagedBy] = ManagedByRotor
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	maps.Copy(sec.Annotations, map[string]string{
		AnnotationAppID: s.app.AppID, AnnotationKeyID: d.KeyID, AnnotationRunID: d.RunID, AnnotationTenant: d.TenantID,
	})
}

func (s *Sink) location(sec *corev1.Secret, d sink.Delivery) string {
	if d.Material.Certificate != nil {
		return fmt.Sprintf("Secret %s/%s (%s) resourceVersion %s (%s)", s.ns, s.name, corev1.SecretTypeTLS, sec.ResourceVersion, s.where)
	}
	return fmt.Sprintf("Secret %s/%s key %s resourceVersion %s (%s)", s.ns, s.name, s.st.key, sec.ResourceVersion, s.where)
}

// Holds reports whether the Secret is rotor's and holds credential keyID.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	cur, err := s.secrets().Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, s.classify("read", err)
	}
	return s.owned(cur) && cur.Annotations[AnnotationKeyID] == keyID, nil
}

// Version is the Secret's resourceVersion; "" when it is absent.
func (s *Sink) Version(ctx context.Context) (string, error) {
	cur, err := s.secrets().Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", s.classify("read", err)
	}
	return cur.ResourceVersion, nil
}

// APIError is a refusal or failure of the API server, classified.
type APIError struct {
	Op        string
	Namespace string
	Name      string
	Code      int32
	Reason    metav1.StatusReason
	Err       error
	permanent bool
}

func (e *APIError) Error() string {
	return fmt.Sprintf("kubernetes sink: %s %s/%s: %v", e.Op, e.Namespace, e.Name, e.Err)
}

func (e *APIError) Unwrap() error { return e.Err }

// Permanent is true for refusals no retry mends.
func (e *APIError) Permanent() bool { return e.permanent }

// classify wraps err from the API server: 401, 403, 404 (the namespace),
// invalid and bad requests are permanent; 409, 429, 5xx, timeouts and
// transport errors are worth retrying. client-go's messages carry no
// Secret value (the server's Status messages name objects, not data).
func (s *Sink) classify(op string, err error) error {
	e := &APIError{Op: op, Namespace: s.ns, Name: s.name, Err: err}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		e.Code, e.Reason = st.Status().Code, st.Status().Reason
	}
	switch {
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err), apierrors.IsNotFound(err),
		apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err), apierrors.IsRequestEntityTooLargeError(err):
		e.permanent = true
	}
	return e
}

// Validate checks, reading only: that the identity may read the Secret;
// that an existing Secret is rotor's (or adopt is set); that it may create
// (absent) or update (present) it, by SelfSubjectAccessReview; and that
// every workload to restart exists and may be patched.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	cur, err := s.secrets().Get(ctx, s.name, metav1.GetOptions{})
	verb := "update"
	switch {
	case apierrors.IsNotFound(err):
		verb = "create"
	case apierrors.IsForbidden(err):
		return sink.Failed(fmt.Sprintf("the identity of %s may not read Secrets in namespace %s: grant it get, create and update on secrets (an RBAC Role and RoleBinding)", s.where, s.ns), s.classify("read", err))
	case apierrors.IsUnauthorized(err):
		return sink.Failed(fmt.Sprintf("the cluster refused the credentials of %s (401): renew the token, or check the kubeconfig's user and its exec plugin", s.where), s.classify("read", err))
	case err != nil:
		return sink.FromError(s.classify("read", err), "")
	case !s.mayWrite(cur):
		ferr := &ForeignError{Namespace: s.ns, Name: s.name, ManagedBy: cur.Labels[LabelManagedBy]}
		return sink.Failed(ferr.Error(), ferr)
	case s.certs && typeOf(cur) != corev1.SecretTypeTLS:
		terr := &TypeError{Namespace: s.ns, Name: s.name, Type: typeOf(cur)}
		return sink.Failed(terr.Error(), terr)
	}
	if v := s.review(ctx, verb, "", "secrets", s.name); v != nil {
		return *v
	}
	for _, w := range s.st.restart {
		if _, _, err := s.workload(ctx, w); err != nil {
			if apierrors.IsNotFound(err) {
				return sink.Failed(fmt.Sprintf("%s does not exist in namespace %s: fix restart, or create it first", w, s.ns), s.classify("read "+w.String(), err))
			}
			return sink.FromError(s.classify("read "+w.String(), err), "")
		}
		if v := s.review(ctx, "patch", "apps", resourceOf(w.Kind), w.Name); v != nil {
			return *v
		}
	}
	state := "absent: rotor will create it"
	if cur != nil {
		state = "rotor's own"
		if !s.owned(cur) {
			state = "not rotor's, adopted on the first delivery (adopt: true)"
		}
	}
	reason := fmt.Sprintf("Secret %s/%s is %s, and the identity may %s it", s.ns, s.name, state, verb)
	if len(s.st.restart) > 0 {
		var ws []string
		for _, w := range s.st.restart {
			ws = append(ws, w.String())
		}
		reason += "; it may restart " + strings.Join(ws, ", ")
	}
	if missed := s.unrestartedReaders(ctx); len(missed) > 0 {
		reason += "; note: " + strings.Join(missed, ", ") + " read this Secret but are not in restart, so their pods keep the old credential until they restart"
	}
	return sink.Ready(reason)
}

// unrestartedReaders lists the namespace's workloads whose pods read the
// Secret (env secretKeyRef, envFrom, secret volumes) and that restart does
// not name. It is advice: a refused or failed listing lists nothing.
func (s *Sink) unrestartedReaders(ctx context.Context) []string {
	var out []string
	check := func(kind, name string, t *corev1.PodTemplateSpec) {
		w := Workload{Kind: kind, Name: name}
		if readsSecret(&t.Spec, s.name) && !slices.Contains(s.st.restart, w) {
			out = append(out, w.String())
		}
	}
	apps := s.cs.AppsV1()
	if l, err := apps.Deployments(s.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			check("Deployment", l.Items[i].Name, &l.Items[i].Spec.Template)
		}
	}
	if l, err := apps.StatefulSets(s.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			check("StatefulSet", l.Items[i].Name, &l.Items[i].Spec.Template)
		}
	}
	if l, err := apps.DaemonSets(s.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range l.Items {
			check("DaemonSet", l.Items[i].Name, &l.Items[i].Spec.Template)
		}
	}
	return out
}

// readsSecret reports whether a pod spec reads Secret name.
func readsSecret(p *corev1.PodSpec, name string) bool {
	for _, c := range slices.Concat(p.InitContainers, p.Containers) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
				return true
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == name {
				return true
			}
		}
	}
	for _, v := range p.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
	}
	return false
}

// review asks the API server whether the identity may verb the resource;
// nil when it may.
func (s *Sink) review(ctx context.Context, verb, group, resource, name string) *sink.Validation {
	r, err := s.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
		Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Namespace: s.ns, Verb: verb, Group: group, Resource: resource, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		v := sink.FromError(s.classify("review access to", err), "")
		return &v
	}
	if !r.Status.Allowed {
		what := resource
		if group != "" {
			what = resource + "." + group
		}
		msg := fmt.Sprintf("the identity of %s may not %s %s in namespace %s (SelfSubjectAccessReview): grant it %s on %s (an RBAC Role and RoleBinding)",
			s.where, verb, what, s.ns, verb, what)
		if r.Status.Reason != "" {
			msg += "; the API server says: " + r.Status.Reason
		}
		v := sink.Failed(msg, sink.Permanent(errors.New(msg)))
		return &v
	}
	return nil
}

func resourceOf(kind string) string {
	return strings.ToLower(kind) + "s"
}

// rollout is where one workload's rollout stands.
type rollout struct {
	done bool
	msg  string
}

// workload reads w: its pod template's annotations and its rollout, judged
// as `kubectl rollout status` judges it.
func (s *Sink) workload(ctx context.Context, w Workload) (map[string]string, rollout, error) {
	apps := s.cs.AppsV1()
	switch w.Kind {
	case "Deployment":
		d, err := apps.Deployments(s.ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return nil, rollout{}, err
		}
		return d.Spec.Template.Annotations, deploymentRollout(d), nil
	case "StatefulSet":
		d, err := apps.StatefulSets(s.ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return nil, rollout{}, err
		}
		return d.Spec.Template.Annotations, statefulSetRollout(d), nil
	case "DaemonSet":
		d, err := apps.DaemonSets(s.ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return nil, rollout{}, err
		}
		return d.Spec.Template.Annotations, daemonSetRollout(d), nil
	}
	return nil, rollout{}, fmt.Errorf("unknown workload kind %q", w.Kind)
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func deploymentRollout(d *appsv1.Deployment) rollout {
	want := replicas(d.Spec.Replicas)
	st := d.Status
	switch {
	case d.Generation > st.ObservedGeneration:
		return rollout{msg: "waiting for the deployment spec update to be observed"}
	case st.UpdatedReplicas < want:
		return rollout{msg: fmt.Sprintf("%d of %d new replicas updated", st.UpdatedReplicas, want)}
	case st.Replicas > st.UpdatedReplicas:
		return rollout{msg: fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)}
	case st.AvailableReplicas < st.UpdatedReplicas:
		return rollout{msg: fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas)}
	}
	return rollout{done: true}
}

func statefulSetRollout(d *appsv1.StatefulSet) rollout {
	want := replicas(d.Spec.Replicas)
	st := d.Status
	switch {
	case d.Generation > st.ObservedGeneration:
		return rollout{msg: "waiting for the statefulset spec update to be observed"}
	case st.UpdatedReplicas < want:
		return rollout{msg: fmt.Sprintf("%d of %d pods updated", st.UpdatedReplicas, want)}
	case st.ReadyReplicas < want:
		return rollout{msg: fmt.Sprintf("%d of %d pods ready", st.ReadyReplicas, want)}
	}
	return rollout{done: true}
}

func daemonSetRollout(d *appsv1.DaemonSet) rollout {
	st := d.Status
	switch {
	case d.Generation > st.ObservedGeneration:
		return rollout{msg: "waiting for the daemon set spec update to be observed"}
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return rollout{msg: fmt.Sprintf("%d of %d updated pods scheduled", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)}
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return rollout{msg: fmt.Sprintf("%d of %d updated pods available", st.NumberAvailable, st.DesiredNumberScheduled)}
	}
	return rollout{done: true}
}

// RolloutTimeoutError is a rollout that did not finish within
// rollout_timeout. It is retryable: AfterAll does not restart a workload
// again for the same credential, so a retry only waits again, and a slow
// rollout (image pulls, a cluster scaling up) may yet finish; a workload
// that never becomes ready exhausts the rotation's retries and fails the
// run, while the older credential stays valid through the overlap.
type RolloutTimeoutError struct {
	Namespace string
	Pending   []string
	Timeout   time.Duration
}

func (e *RolloutTimeoutError) Error() string {
	return fmt.Sprintf("kubernetes sink: rollout did not finish within %s in namespace %s: %s", e.Timeout, e.Namespace, strings.Join(e.Pending, "; "))
}

// Permanent is false (see the type's comment).
func (e *RolloutTimeoutError) Permanent() bool { return false }

// AfterAll restarts every listed workload, as `kubectl rollout restart`
// does (a patch of the pod template's restartedAt annotation), unless it
// was already restarted for this credential, then waits for every rollout
// within rollout_timeout.
func (s *Sink) AfterAll(ctx context.Context, d sink.Delivery) error {
	if len(s.st.restart) == 0 {
		return nil
	}
	for _, w := range s.st.restart {
		ann, _, err := s.workload(ctx, w)
		if err != nil {
			return s.classifyWorkload("read", w, err)
		}
		if ann[AnnotationRestartedFor] == d.KeyID {
			continue
		}
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{AnnotationRestart: s.clock.Now().UTC().Format(time.RFC3339), AnnotationRestartedFor: d.KeyID}}}}})
		if err != nil {
			return err
		}
		if err := s.patchWorkload(ctx, w, patch); err != nil {
			return s.classifyWorkload("restart", w, err)
		}
		s.log.InfoContext(ctx, "kubernetes sink: restarted workload", "namespace", s.ns, "workload", w.String(), "key_id", d.KeyID)
	}
	deadline := s.clock.Now().Add(s.st.rolloutTimeout)
	pending := s.st.restart
	for {
		var still []Workload
		var msgs []string
		for _, w := range pending {
			_, r, err := s.workload(ctx, w)
			if err != nil {
				cerr := s.classifyWorkload("watch rollout of", w, err)
				if sink.IsPermanent(cerr) {
					return cerr
				}
				still, msgs = append(still, w), append(msgs, fmt.Sprintf("%s: %v", w, err))
				continue
			}
			if !r.done {
				still, msgs = append(still, w), append(msgs, w.String()+": "+r.msg)
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		left := deadline.Sub(s.clock.Now())
		if left <= 0 {
			return &RolloutTimeoutError{Namespace: s.ns, Pending: msgs, Timeout: s.st.rolloutTimeout}
		}
		if err := clock.Sleep(ctx, s.clock, min(pollInterval, left)); err != nil {
			return fmt.Errorf("kubernetes sink: waiting for rollouts in %s: %w", s.ns, err)
		}
	}
}

func (s *Sink) patchWorkload(ctx context.Context, w Workload, patch []byte) error {
	apps := s.cs.AppsV1()
	var err error
	switch w.Kind {
	case "Deployment":
		_, err = apps.Deployments(s.ns).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	case "StatefulSet":
		_, err = apps.StatefulSets(s.ns).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	case "DaemonSet":
		_, err = apps.DaemonSets(s.ns).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	default:
		err = fmt.Errorf("unknown workload kind %q", w.Kind)
	}
	return err
}

func (s *Sink) classifyWorkload(op string, w Workload, err error) error {
	e := s.classify(op, err).(*APIError)
	e.Name = w.String()
	return e
}
