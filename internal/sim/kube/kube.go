// Package kube is the simulated Kubernetes API server: the few endpoints
// rotor's kubernetes sink reaches through client-go's typed clients —
// core/v1 Secrets and Namespaces, apps/v1 Deployments, StatefulSets and
// DaemonSets, authorization.k8s.io/v1 SelfSubjectAccessReviews and the
// discovery documents — on an HTTPS listener of its own, with bearer
// tokens, resourceVersion optimistic concurrency and metav1.Status errors
// as the API server sends them (built with apimachinery's own
// constructors), JSON only. Workloads roll out over simulated time, so a
// `kubectl rollout restart` (a patch of the pod template's restartedAt
// annotation) completes when the simulator's clock has moved far enough,
// and the pods' reading of the Secret is recorded as a consumer. See
// docs/adr/0031-simulated-kubernetes-api-server.md.
package kube

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// The demo's seeded target.
const (
	DemoNamespace  = "payments"
	DemoSecret     = "payments-azure"
	DemoDeployment = "payments-api"
	// DemoSecretKey is the key the demo Deployment reads its client secret
	// from (the kubernetes sink's default key).
	DemoSecretKey = "clientSecret"
)

// Annotations the simulator reads on a workload, to arrange a rollout.
const (
	// AnnotationNeverReady, set to "true" on a workload's metadata, makes
	// every rollout of it hang: the new pods never become ready.
	AnnotationNeverReady = "sim.rotor.dev/never-ready"
	// AnnotationRolloutSeconds is how many simulated seconds a rollout of
	// the workload takes (default DefaultRollout).
	AnnotationRolloutSeconds = "sim.rotor.dev/rollout-seconds"
	// ConcurrentKey is the data key the conflict hook writes into a Secret
	// between a client's read and its write.
	ConcurrentKey = "concurrent-writer"
)

// DefaultRollout is how long a rollout takes in simulated time.
const DefaultRollout = 20 * time.Second

// observeDelay is how long the simulated controller takes to observe a new
// generation (status.observedGeneration lags behind until then).
const observeDelay = time.Second

// ServiceName is the consumer service name (GET /_sim/consumers).
const ServiceName = "kubernetes"

const (
	jsonType = "application/json"
	maxBody  = 1 << 20
	// serverVersion is what /version says.
	major, minor = "1", "37"
)

// Users the seeded tokens authenticate as.
const (
	UserAdmin    = "kubernetes-admin"
	UserRotor    = "system:serviceaccount:payments:rotor"
	UserReadOnly = "system:serviceaccount:payments:rotor-readonly"
	UserNoAccess = "system:serviceaccount:payments:nobody"
)

// role is what a token may do.
type role int

const (
	roleNone role = iota
	roleRead
	roleWrite
	roleAdmin
)

type principal struct {
	user string
	role role
}

// resource is one kind of object the server stores.
type resource struct {
	group, version, name, kind string
	workload                   bool
}

func (r resource) gr() schema.GroupResource {
	return schema.GroupResource{Group: r.group, Resource: r.name}
}

func (r resource) apiVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

var resources = map[string]resource{
	"secrets":      {"", "v1", "secrets", "Secret", false},
	"deployments":  {"apps", "v1", "deployments", "Deployment", true},
	"statefulsets": {"apps", "v1", "statefulsets", "StatefulSet", true},
	"daemonsets":   {"apps", "v1", "daemonsets", "DaemonSet", true},
}

type objKey struct{ res, ns, name string }

// object is one stored object as JSON-decoded maps, with the workload
// rollout bookkeeping the API server does not show.
type object struct {
	m map[string]any
	// rolloutAt is when the current generation's rollout began.
	rolloutAt time.Time
	// recordedGen is the generation whose completion was recorded as the
	// pods' reading of their Secrets.
	recordedGen int64
}

// Service is the simulated API server.
type Service struct {
	*core.Core

	l *core.Listener

	mu         sync.Mutex
	rv         int64
	namespaces map[string]time.Time
	objs       map[objKey]*object
	tokens     map[string]principal
	// conflicts are Secrets whose next write meets a concurrent writer.
	conflicts map[objKey]bool
	info      simfile.Kubernetes
}

// Register asks for the API server's own HTTPS listener and seeds the
// demo namespace.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.namespaces = map[string]time.Time{}
	s.objs = map[objKey]*object{}
	s.tokens = map[string]principal{}
	s.conflicts = map[objKey]bool{}
	for _, p := range []principal{{UserRotor, roleWrite}, {UserReadOnly, roleRead}, {UserNoAccess, roleNone}} {
		tok, err := core.RandomToken(32)
		if err != nil {
			return err
		}
		s.tokens[tok] = p
		switch p.role {
		case roleWrite:
			s.info.Token = tok
		case roleRead:
			s.info.ReadOnlyToken = tok
		default:
			s.info.NoAccessToken = tok
		}
	}
	s.tokens[c.AdminToken()] = principal{UserAdmin, roleAdmin}
	if err := s.seed(); err != nil {
		return err
	}
	s.l = r.Listen("kubernetes", true, s.WithFaults(writeUnavailable, http.HandlerFunc(s.serve)))
	return nil
}

// Started publishes the server's address and writes the kubeconfig.
func (s *Service) Started(info *simfile.Info) error {
	dir := filepath.Dir(info.CAFile)
	s.mu.Lock()
	k := s.info
	s.mu.Unlock()
	k.Server = "https://" + s.l.HostPort()
	k.CAFile = info.CAFile
	k.Kubeconfig = filepath.Join(dir, "kubeconfig")
	k.Context, k.ReadOnlyContext = "rotor-sim", "rotor-sim-readonly"
	k.Namespace, k.Secret, k.Deployment = DemoNamespace, DemoSecret, DemoDeployment
	if err := WriteKubeconfig(dir, k); err != nil {
		return err
	}
	s.mu.Lock()
	s.info = k
	s.mu.Unlock()
	info.Kubernetes = &k
	return nil
}

// WriteKubeconfig writes dir/kubeconfig for k (and the exec credential
// plugin's output, dir/kube-exec-credential.json): context k.Context
// authenticates with an exec plugin (/bin/sh printing an ExecCredential,
// as kubelogin prints one), k.ReadOnlyContext with the read-only token.
func WriteKubeconfig(dir string, k simfile.Kubernetes) error {
	credPath := filepath.Join(dir, "kube-exec-credential.json")
	cred, err := json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
		"status": map[string]any{"token": k.Token},
	})
	if err != nil {
		return err
	}
	if err := simfile.WriteFileAtomic(credPath, cred, 0o600); err != nil {
		return fmt.Errorf("write exec credential: %w", err)
	}
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "preferences": map[string]any{},
		"clusters": []any{map[string]any{"name": "rotor-sim", "cluster": map[string]any{
			"server": k.Server, "certificate-authority": k.CAFile}}},
		"users": []any{
			map[string]any{"name": "rotor-exec", "user": map[string]any{"exec": map[string]any{
				"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh",
				"args":            []string{"-c", "cat " + shellQuote(credPath)},
				"interactiveMode": "Never",
			}}},
			map[string]any{"name": "rotor-readonly", "user": map[string]any{"token": k.ReadOnlyToken}},
		},
		"contexts": []any{
			map[string]any{"name": k.Context, "context": map[string]any{"cluster": "rotor-sim", "user": "rotor-exec", "namespace": k.Namespace}},
			map[string]any{"name": k.ReadOnlyContext, "context": map[string]any{"cluster": "rotor-sim", "user": "rotor-readonly", "namespace": k.Namespace}},
		},
		"current-context": k.Context,
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := simfile.WriteFileAtomic(filepath.Join(dir, "kubeconfig"), b, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// seed makes the namespaces default, kube-system and payments, the demo
// Secret (a value typed by hand: no rotor marker, so rotor adopts it) and
// the Deployment that reads it through env.
func (s *Service) seed() error {
	now := s.Clock().Now()
	for _, ns := range []string{"default", "kube-system", DemoNamespace} {
		s.namespaces[ns] = now
	}
	secret := map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
		"metadata": map[string]any{"name": DemoSecret, "namespace": DemoNamespace,
			"labels": map[string]any{"app.kubernetes.io/name": "payments"}},
		"data": map[string]any{DemoSecretKey: b64("set-by-hand-before-rotor")},
	}
	container := map[string]any{
		"name": "api", "image": "registry.example/payments-api:1.4.2",
		"env": []any{
			envFromSecret("AZURE_CLIENT_SECRET", DemoSecret, DemoSecretKey),
			envFromSecret("AZURE_CLIENT_ID", DemoSecret, "clientId"),
			envFromSecret("AZURE_TENANT_ID", DemoSecret, "tenantId"),
		},
	}
	deploy := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": DemoDeployment, "namespace": DemoNamespace, "labels": map[string]any{"app": DemoDeployment}},
		"spec": map[string]any{
			"replicas": float64(2),
			"selector": map[string]any{"matchLabels": map[string]any{"app": DemoDeployment}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": DemoDeployment}},
				"spec":     map[string]any{"containers": []any{container}},
			},
		},
	}
	if _, err := s.create(resources["secrets"], DemoNamespace, secret); err != nil {
		return err
	}
	o, err := s.create(resources["deployments"], DemoNamespace, deploy)
	if err != nil {
		return err
	}
	// The demo's pods are running already.
	o.rolloutAt = now.Add(-time.Hour)
	return nil
}

func envFromSecret(name, secret, key string) map[string]any {
	return map[string]any{"name": name, "valueFrom": map[string]any{
		"secretKeyRef": map[string]any{"name": secret, "key": key, "optional": true}}}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// ---- HTTP ----

type call struct {
	s *Service
	w http.ResponseWriter
	r *http.Request
	p principal
}

func writeUnavailable(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, apierrors.NewServiceUnavailable(core.UnavailableMessage))
}

func writeStatus(w http.ResponseWriter, se *apierrors.StatusError) {
	st := se.ErrStatus
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Code == http.StatusTooManyRequests || st.Code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	core.WriteJSON(w, int(st.Code), jsonType, st)
}

func (c *call) status(se *apierrors.StatusError) { writeStatus(c.w, se) }

func (c *call) json(code int, v any) { core.WriteJSON(c.w, code, jsonType, v) }

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	c := &call{s: s, w: w, r: r}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	p, known := s.tokens[strings.TrimSpace(tok)]
	s.mu.Unlock()
	if !ok || !known {
		c.status(apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	c.p = p
	if accept := r.Header.Get("Accept"); accept != "" && !acceptsJSON(accept) {
		c.status(apierrors.NewGenericServerResponse(http.StatusNotAcceptable, r.Method, schema.GroupResource{}, "", "only application/json is served", 0, false))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/version":
		c.json(200, map[string]any{"major": major, "minor": minor, "gitVersion": "v" + major + "." + minor + ".2-rotor-sim",
			"platform": "linux/amd64", "goVersion": "go1.26"})
	case r.URL.Path == "/api":
		c.json(200, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
	case r.URL.Path == "/apis":
		c.json(200, groupList())
	case r.URL.Path == "/api/v1":
		c.json(200, resourceList("v1", []metav1.APIResource{
			{Name: "namespaces", Kind: "Namespace", Verbs: []string{"get", "list"}},
			{Name: "secrets", Namespaced: true, Kind: "Secret", Verbs: []string{"create", "delete", "get", "list", "patch", "update"}},
		}))
	case r.URL.Path == "/apis/apps/v1":
		var rs []metav1.APIResource
		for _, n := range []string{"daemonsets", "deployments", "statefulsets"} {
			rs = append(rs, metav1.APIResource{Name: n, Namespaced: true, Kind: resources[n].kind, Verbs: []string{"create", "delete", "get", "list", "patch", "update"}})
		}
		c.json(200, resourceList("apps/v1", rs))
	case r.URL.Path == "/apis/authorization.k8s.io/v1":
		c.json(200, resourceList("authorization.k8s.io/v1", []metav1.APIResource{{Name: "selfsubjectaccessreviews", Kind: "SelfSubjectAccessReview", Verbs: []string{"create"}}}))
	case r.URL.Path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
		c.accessReview()
	case strings.HasPrefix(r.URL.Path, "/_sim/kubernetes/"):
		c.control(strings.TrimPrefix(r.URL.Path, "/_sim/kubernetes/"))
	case len(segs) >= 3 && segs[0] == "api" && segs[1] == "v1" && segs[2] == "namespaces":
		c.objects("", segs[3:])
	case len(segs) >= 4 && segs[0] == "apis" && segs[1] == "apps" && segs[2] == "v1" && segs[3] == "namespaces":
		c.objects("apps", segs[4:])
	default:
		c.status(apierrors.NewGenericServerResponse(http.StatusNotFound, r.Method, schema.GroupResource{}, "", "the server could not find the requested resource", 0, false))
	}
}

func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		if mt == jsonType || mt == "*/*" || mt == "application/*" {
			return true
		}
	}
	return false
}

func groupList() metav1.APIGroupList {
	g := func(name string) metav1.APIGroup {
		v := metav1.GroupVersionForDiscovery{GroupVersion: name + "/v1", Version: "v1"}
		return metav1.APIGroup{Name: name, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
	}
	return metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups: []metav1.APIGroup{g("apps"), g("authorization.k8s.io")}}
}

func resourceList(gv string, rs []metav1.APIResource) metav1.APIResourceList {
	for i := range rs {
		rs[i].SingularName = strings.ToLower(rs[i].Kind)
	}
	return metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv, APIResources: rs}
}

// allowed is the simulated RBAC: rotor's token may read and write Secrets
// and workloads (never delete) in every namespace but kube-system, and
// read namespaces; the read-only token may get, list and watch anything;
// the no-access token nothing; the admin token everything.
func allowed(p principal, verb, resource, ns string) bool {
	read := verb == "get" || verb == "list" || verb == "watch"
	switch p.role {
	case roleAdmin:
		return true
	case roleRead:
		return read
	case roleWrite:
		if resource == "namespaces" {
			return read
		}
		if ns == "kube-system" {
			return false
		}
		return read || verb == "create" || verb == "update" || verb == "patch"
	}
	return false
}

func (c *call) forbidden(verb string, res resource, ns, name string) *apierrors.StatusError {
	msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q", c.p.user, verb, res.name, res.group)
	if ns != "" {
		msg += fmt.Sprintf(" in the namespace %q", ns)
	}
	return apierrors.NewForbidden(res.gr(), name, errors.New(msg))
}

// accessReview answers a SelfSubjectAccessReview with the simulated RBAC.
func (c *call) accessReview() {
	if c.r.Method != http.MethodPost {
		c.status(apierrors.NewMethodNotSupported(schema.GroupResource{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}, strings.ToLower(c.r.Method)))
		return
	}
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(c.r.Body, maxBody)).Decode(&body); err != nil {
		c.status(apierrors.NewBadRequest("the body of the request was in an unknown format: " + err.Error()))
		return
	}
	attrs, _ := dig(body, "spec", "resourceAttributes").(map[string]any)
	str := func(k string) string { v, _ := attrs[k].(string); return v }
	ok := attrs != nil && allowed(c.p, str("verb"), str("resource"), str("namespace"))
	st := map[string]any{"allowed": ok}
	if ok {
		st["reason"] = fmt.Sprintf("RBAC: allowed by the simulator's role for %s", c.p.user)
	} else if attrs == nil {
		st["evaluationError"] = "spec.resourceAttributes is required by this simulator"
	}
	body["status"] = st
	body["apiVersion"], body["kind"] = "authorization.k8s.io/v1", "SelfSubjectAccessReview"
	if md, _ := body["metadata"].(map[string]any); md == nil {
		body["metadata"] = map[string]any{}
	}
	c.json(http.StatusCreated, body)
}

// control is the simulator's own hook (admin token only): POST
// /_sim/kubernetes/conflict?namespace=NS&name=NAME arms a concurrent
// writer that changes the Secret right before its next update or patch,
// so that write carries a stale resourceVersion and gets 409 Conflict.
func (c *call) control(op string) {
	if c.p.role != roleAdmin {
		c.status(apierrors.NewForbidden(schema.GroupResource{Resource: "_sim"}, op, errors.New("the control hook needs the simulator's admin token")))
		return
	}
	q := c.r.URL.Query()
	switch {
	case op == "conflict" && c.r.Method == http.MethodPost:
		k := objKey{"secrets", q.Get("namespace"), q.Get("name")}
		if _, ok := c.s.objs[k]; !ok {
			c.status(apierrors.NewNotFound(resources["secrets"].gr(), k.name))
			return
		}
		c.s.conflicts[k] = true
		c.json(http.StatusOK, map[string]any{"armed": true})
	default:
		c.status(apierrors.NewGenericServerResponse(http.StatusNotFound, c.r.Method, schema.GroupResource{}, "", "no such control operation", 0, false))
	}
}

// objects routes /api/v1/namespaces/... and /apis/apps/v1/namespaces/...;
// rest is what follows "namespaces".
func (c *call) objects(group string, rest []string) {
	m := c.r.Method
	if group == "" && len(rest) <= 1 {
		c.namespace(rest)
		return
	}
	if len(rest) < 2 || len(rest) > 3 {
		c.status(apierrors.NewGenericServerResponse(http.StatusNotFound, m, schema.GroupResource{}, "", "the server could not find the requested resource", 0, false))
		return
	}
	ns := rest[0]
	res, ok := resources[rest[1]]
	if !ok || res.group != group {
		c.status(apierrors.NewGenericServerResponse(http.StatusNotFound, m, schema.GroupResource{}, "", "the server could not find the requested resource", 0, false))
		return
	}
	name := ""
	if len(rest) == 3 {
		name = rest[2]
	}
	verb := map[string]string{http.MethodGet: "get", http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "patch", http.MethodDelete: "delete"}[m]
	if verb == "get" && name == "" {
		verb = "list"
	}
	if verb == "" || (name == "" && verb != "list" && verb != "create") || (name != "" && verb == "create") {
		c.status(apierrors.NewMethodNotSupported(res.gr(), strings.ToLower(m)))
		return
	}
	if !allowed(c.p, verb, res.name, ns) {
		c.status(c.forbidden(verb, res, ns, name))
		return
	}
	if _, ok := c.s.namespaces[ns]; !ok && verb != "list" {
		c.status(apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns))
		return
	}
	switch verb {
	case "list":
		c.list(res, ns)
	case "get":
		o, ok := c.s.objs[objKey{res.name, ns, name}]
		if !ok {
			c.status(apierrors.NewNotFound(res.gr(), name))
			return
		}
		c.json(http.StatusOK, c.s.render(res, o))
	case "create":
		body, se := c.body(res)
		if se != nil {
			c.status(se)
			return
		}
		o, se := c.s.create(res, ns, body)
		if se != nil {
			c.status(se)
			return
		}
		c.json(http.StatusCreated, c.s.render(res, o))
	case "update":
		body, se := c.body(res)
		if se != nil {
			c.status(se)
			return
		}
		o, se := c.s.update(res, ns, name, body)
		if se != nil {
			c.status(se)
			return
		}
		c.json(http.StatusOK, c.s.render(res, o))
	case "patch":
		c.patch(res, ns, name)
	case "delete":
		k := objKey{res.name, ns, name}
		if _, ok := c.s.objs[k]; !ok {
			c.status(apierrors.NewNotFound(res.gr(), name))
			return
		}
		delete(c.s.objs, k)
		c.json(http.StatusOK, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
			Details: &metav1.StatusDetails{Name: name, Kind: res.name}})
	}
}

func (c *call) namespace(rest []string) {
	gr := schema.GroupResource{Resource: "namespaces"}
	if c.r.Method != http.MethodGet {
		c.status(apierrors.NewMethodNotSupported(gr, strings.ToLower(c.r.Method)))
		return
	}
	ns := func(name string, at time.Time) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": name, "creationTimestamp": at.UTC().Format(time.RFC3339)},
			"status":   map[string]any{"phase": "Active"}}
	}
	if len(rest) == 0 {
		if !allowed(c.p, "list", "namespaces", "") {
			c.status(c.forbidden("list", resource{name: "namespaces"}, "", ""))
			return
		}
		items := []any{}
		for _, n := range sortedKeys(c.s.namespaces) {
			items = append(items, ns(n, c.s.namespaces[n]))
		}
		c.json(http.StatusOK, map[string]any{"apiVersion": "v1", "kind": "NamespaceList",
			"metadata": map[string]any{"resourceVersion": strconv.FormatInt(c.s.rv, 10)}, "items": items})
		return
	}
	if !allowed(c.p, "get", "namespaces", "") {
		c.status(c.forbidden("get", resource{name: "namespaces"}, "", rest[0]))
		return
	}
	at, ok := c.s.namespaces[rest[0]]
	if !ok {
		c.status(apierrors.NewNotFound(gr, rest[0]))
		return
	}
	c.json(http.StatusOK, ns(rest[0], at))
}

func (c *call) list(res resource, ns string) {
	var keys []objKey
	for k := range c.s.objs {
		if k.res == res.name && k.ns == ns {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	items := make([]any, 0, len(keys))
	for _, k := range keys {
		items = append(items, c.s.render(res, c.s.objs[k]))
	}
	c.json(http.StatusOK, map[string]any{"apiVersion": res.apiVersion(), "kind": res.kind + "List",
		"metadata": map[string]any{"resourceVersion": strconv.FormatInt(c.s.rv, 10)}, "items": items})
}

func (c *call) body(res resource) (map[string]any, *apierrors.StatusError) {
	if ct := c.r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, jsonType) {
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, c.r.Method, res.gr(), "", "the body of the request was in an unknown format - accepted media types include: application/json", 0, false)
	}
	var m map[string]any
	if err := json.NewDecoder(io.LimitReader(c.r.Body, maxBody)).Decode(&m); err != nil {
		return nil, apierrors.NewBadRequest("the body of the request was in an unknown format: " + err.Error())
	}
	return m, nil
}

// patch applies a JSON merge patch or a strategic merge patch. For the
// maps rotor patches (the pod template's annotations) the two are the
// same; a strategic patch's lists are replaced rather than merged by key,
// which the simulator documents rather than models.
func (c *call) patch(res resource, ns, name string) {
	ct := strings.TrimSpace(strings.SplitN(c.r.Header.Get("Content-Type"), ";", 2)[0])
	if ct != "application/merge-patch+json" && ct != "application/strategic-merge-patch+json" {
		c.status(apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", res.gr(), name,
			"the simulator accepts application/merge-patch+json and application/strategic-merge-patch+json patches", 0, false))
		return
	}
	var p map[string]any
	if err := json.NewDecoder(io.LimitReader(c.r.Body, maxBody)).Decode(&p); err != nil {
		c.status(apierrors.NewBadRequest("the body of the request was in an unknown format: " + err.Error()))
		return
	}
	k := objKey{res.name, ns, name}
	o, ok := c.s.objs[k]
	if !ok {
		c.status(apierrors.NewNotFound(res.gr(), name))
		return
	}
	c.s.concurrentWriteLocked(k)
	merged, _ := mergePatch(deepCopy(o.m), p).(map[string]any)
	if rv, _ := dig(p, "metadata", "resourceVersion").(string); rv == "" {
		// No precondition: the patch applies to what is stored now.
		setPath(merged, rvOf(o.m), "metadata", "resourceVersion")
	}
	u, se := c.s.update(res, ns, name, merged)
	if se != nil {
		c.status(se)
		return
	}
	c.json(http.StatusOK, c.s.render(res, u))
}

// ---- storage ----

func (s *Service) nextRV() string {
	s.rv++
	return strconv.FormatInt(s.rv, 10)
}

func rvOf(m map[string]any) string { v, _ := dig(m, "metadata", "resourceVersion").(string); return v }

func invalid(res resource, name, msg string) *apierrors.StatusError {
	return apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", res.gr(), name, msg, 0, false)
}

// normalize checks and completes body as the API server's validation and
// defaulting would for the fields the simulator models.
func normalize(res resource, body map[string]any) *apierrors.StatusError {
	name, _ := dig(body, "metadata", "name").(string)
	if name == "" || len(name) > 253 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
		return invalid(res, name, fmt.Sprintf("%s %q is invalid: metadata.name: Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'", res.kind, name))
	}
	body["apiVersion"], body["kind"] = res.apiVersion(), res.kind
	if res.name != "secrets" {
		return nil
	}
	data, _ := body["data"].(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	for k, v := range data {
		sv, ok := v.(string)
		if _, err := base64.StdEncoding.DecodeString(sv); !ok || err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[%q]", k))
		}
	}
	if sd, ok := body["stringData"].(map[string]any); ok {
		for k, v := range sd {
			sv, _ := v.(string)
			data[k] = b64(sv)
		}
		delete(body, "stringData")
	}
	for k := range data {
		if k == "" || len(k) > 253 || strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != "" {
			return invalid(res, name, fmt.Sprintf("Secret %q is invalid: data[%s]: Invalid value: a valid config key must consist of alphanumeric characters, '-', '_' or '.'", name, k))
		}
	}
	body["data"] = data
	if t, _ := body["type"].(string); t == "" {
		body["type"] = "Opaque"
	}
	// The API server's ValidateSecret: a kubernetes.io/tls Secret carries
	// both tls.crt and tls.key (their content is not parsed).
	if body["type"] == "kubernetes.io/tls" {
		for _, k := range []string{"tls.crt", "tls.key"} {
			if _, ok := data[k]; !ok {
				return apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, name, field.ErrorList{field.Required(field.NewPath("data").Key(k), "")})
			}
		}
	}
	return nil
}

func (s *Service) create(res resource, ns string, body map[string]any) (*object, *apierrors.StatusError) {
	if se := normalize(res, body); se != nil {
		return nil, se
	}
	md := body["metadata"].(map[string]any)
	name := md["name"].(string)
	if n, _ := md["namespace"].(string); n != "" && n != ns {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	k := objKey{res.name, ns, name}
	if _, ok := s.objs[k]; ok {
		return nil, apierrors.NewAlreadyExists(res.gr(), name)
	}
	now := s.Clock().Now()
	md["namespace"] = ns
	md["uid"] = uuid.NewString()
	md["creationTimestamp"] = now.UTC().Format(time.RFC3339)
	md["resourceVersion"] = s.nextRV()
	o := &object{m: body}
	if res.workload {
		md["generation"] = float64(1)
		delete(body, "status")
		o.rolloutAt = now
	}
	s.objs[k] = o
	if res.name == "secrets" {
		s.recordSecret(ns, name, body)
	}
	return o, nil
}

// update replaces the stored object with body, after the resourceVersion
// precondition (an empty one is an unconditional update, which Secrets and
// workloads allow).
func (s *Service) update(res resource, ns, name string, body map[string]any) (*object, *apierrors.StatusError) {
	k := objKey{res.name, ns, name}
	o, ok := s.objs[k]
	if !ok {
		return nil, apierrors.NewNotFound(res.gr(), name)
	}
	s.concurrentWriteLocked(k)
	if se := normalize(res, body); se != nil {
		return nil, se
	}
	md := body["metadata"].(map[string]any)
	if md["name"] != name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%v) does not match the name on the URL (%s)", md["name"], name))
	}
	if rv, _ := md["resourceVersion"].(string); rv != "" && rv != rvOf(o.m) {
		return nil, apierrors.NewConflict(res.gr(), name, errors.New(registryConflictMsg))
	}
	if res.name == "secrets" && body["type"] != o.m["type"] {
		// ValidateSecretUpdate: a Secret's type never changes.
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, name, field.ErrorList{field.Invalid(field.NewPath("type"), body["type"], "field is immutable")})
	}
	old := o.m["metadata"].(map[string]any)
	for _, f := range []string{"uid", "creationTimestamp", "generation"} {
		if v, ok := old[f]; ok {
			md[f] = v
		} else {
			delete(md, f)
		}
	}
	md["namespace"] = ns
	if reflect.DeepEqual(withoutRV(o.m), withoutRV(body)) {
		return o, nil // a no-op update keeps its resourceVersion, as etcd does
	}
	md["resourceVersion"] = s.nextRV()
	if res.workload {
		delete(body, "status")
		if !reflect.DeepEqual(o.m["spec"], body["spec"]) {
			g, _ := old["generation"].(float64)
			md["generation"] = g + 1
			o.rolloutAt = s.Clock().Now()
		}
	}
	o.m = body
	if res.name == "secrets" {
		s.recordSecret(ns, name, body)
	}
	return o, nil
}

// registryConflictMsg is the API server's (the generic registry's)
// explanation of a stale resourceVersion.
const registryConflictMsg = "the object has been modified; please apply your changes to the latest version and try again"

func withoutRV(m map[string]any) map[string]any {
	c := deepCopy(m).(map[string]any)
	if md, ok := c["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
	}
	return c
}

// concurrentWriteLocked plays the writer the conflict hook armed: it adds
// ConcurrentKey to the Secret, which moves its resourceVersion on.
func (s *Service) concurrentWriteLocked(k objKey) {
	if !s.conflicts[k] {
		return
	}
	delete(s.conflicts, k)
	o := s.objs[k]
	m := deepCopy(o.m).(map[string]any)
	data, _ := m["data"].(map[string]any)
	if data == nil {
		data = map[string]any{}
		m["data"] = data
	}
	data[ConcurrentKey] = b64("written between the client's read and its write")
	m["metadata"].(map[string]any)["resourceVersion"] = s.nextRV()
	o.m = m
}

// recordSecret reports every key of a written Secret as a consumer.
func (s *Service) recordSecret(ns, name string, m map[string]any) {
	data, _ := m["data"].(map[string]any)
	for key, v := range data {
		sv, _ := v.(string)
		raw, _ := base64.StdEncoding.DecodeString(sv)
		s.RecordConsumer(ServiceName, ns+"/secret/"+name, key, string(raw))
	}
}

// render is the object as the API server answers it: the workloads with
// their status at the simulator's time.
func (s *Service) render(res resource, o *object) map[string]any {
	m := deepCopy(o.m).(map[string]any)
	if res.workload {
		m["status"] = s.statusOf(res, o)
	}
	return m
}

// rollout is where a workload's rollout stands at the simulator's time.
func (s *Service) rollout(o *object) (observed, done bool) {
	md := o.m["metadata"].(map[string]any)
	elapsed := s.Clock().Now().Sub(o.rolloutAt)
	d := DefaultRollout
	if v, _ := dig(md, "annotations", AnnotationRolloutSeconds).(string); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			d = time.Duration(n) * time.Second
		}
	}
	never, _ := dig(md, "annotations", AnnotationNeverReady).(string)
	observed = elapsed >= observeDelay || elapsed >= d
	return observed, observed && elapsed >= d && never != "true"
}

func (s *Service) statusOf(res resource, o *object) map[string]any {
	md := o.m["metadata"].(map[string]any)
	gen, _ := md["generation"].(float64)
	observed, done := s.rollout(o)
	og := gen
	if !observed {
		og = gen - 1
	}
	desired := float64(1)
	if v, ok := dig(o.m, "spec", "replicas").(float64); ok {
		desired = v
	}
	switch res.name {
	case "daemonsets":
		st := map[string]any{"observedGeneration": og, "desiredNumberScheduled": desired, "currentNumberScheduled": desired,
			"numberReady": desired, "numberAvailable": desired, "updatedNumberScheduled": desired}
		if !done {
			st["updatedNumberScheduled"], st["numberAvailable"], st["numberReady"] = float64(0), desired-1, desired-1
		}
		return st
	case "statefulsets":
		st := map[string]any{"observedGeneration": og, "replicas": desired, "readyReplicas": desired,
			"availableReplicas": desired, "currentReplicas": desired, "updatedReplicas": desired}
		if !done {
			st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"] = float64(0), desired-1, desired-1
		}
		return st
	}
	// A Deployment's rolling update (maxSurge 1): while it lasts, one new
	// pod that is not available yet beside the old ones.
	st := map[string]any{"observedGeneration": og, "replicas": desired, "updatedReplicas": desired,
		"readyReplicas": desired, "availableReplicas": desired}
	if !done {
		st["replicas"], st["updatedReplicas"] = desired+1, float64(1)
	}
	return st
}

// advanceLocked records, for every workload whose rollout has completed
// since it was last looked at, what its new pods read from their Secrets.
// Rollouts complete in simulated time; they are noticed at the next
// request.
func (s *Service) advanceLocked() {
	for k, o := range s.objs {
		res := resources[k.res]
		if !res.workload {
			continue
		}
		gen, _ := o.m["metadata"].(map[string]any)["generation"].(float64)
		if int64(gen) <= o.recordedGen {
			continue
		}
		if _, done := s.rollout(o); !done {
			continue
		}
		o.recordedGen = int64(gen)
		target := k.ns + "/" + res.kind + "/" + k.name
		for _, ref := range SecretRefs(o.m) {
			sec, ok := s.objs[objKey{"secrets", k.ns, ref.Secret}]
			if !ok {
				continue
			}
			data, _ := sec.m["data"].(map[string]any)
			for key, v := range data {
				if ref.Key != "" && key != ref.Key {
					continue
				}
				sv, _ := v.(string)
				raw, _ := base64.StdEncoding.DecodeString(sv)
				s.RecordConsumer(ServiceName, target, ref.Secret+"/"+key, string(raw))
			}
		}
	}
}

// SecretRef is a Secret (and key; empty for all keys) a workload's pods
// read: env valueFrom.secretKeyRef, envFrom secretRef or a secret volume.
type SecretRef struct{ Secret, Key string }

// SecretRefs lists what workload object m's pod template reads.
func SecretRefs(m map[string]any) []SecretRef {
	var out []SecretRef
	podSpec, _ := dig(m, "spec", "template", "spec").(map[string]any)
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := podSpec[list].([]any)
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			envs, _ := cm["env"].([]any)
			for _, e := range envs {
				if n, _ := dig(e, "valueFrom", "secretKeyRef", "name").(string); n != "" {
					k, _ := dig(e, "valueFrom", "secretKeyRef", "key").(string)
					out = append(out, SecretRef{n, k})
				}
			}
			froms, _ := cm["envFrom"].([]any)
			for _, f := range froms {
				if n, _ := dig(f, "secretRef", "name").(string); n != "" {
					out = append(out, SecretRef{Secret: n})
				}
			}
		}
	}
	vols, _ := podSpec["volumes"].([]any)
	for _, v := range vols {
		if n, _ := dig(v, "secret", "secretName").(string); n != "" {
			out = append(out, SecretRef{Secret: n})
		}
	}
	return out
}

// ---- JSON helpers ----

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func setPath(m map[string]any, v any, path ...string) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// mergePatch applies an RFC 7386 JSON merge patch.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergePatch(tm[k], v)
	}
	return tm
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, x := range t {
			c[k] = deepCopy(x)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, x := range t {
			c[i] = deepCopy(x)
		}
		return c
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
