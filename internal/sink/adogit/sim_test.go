package adogit

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// Environment variable names the test's secret resolver knows.
const (
	envPAT    = "ADO_PAT"
	envBadPAT = "ADO_BAD_PAT"
)

// Connections of the test's token credentials.
const (
	connSim    = "sim"
	connDenied = "denied"
)

// simBundle is a running simulator, the test's own access to its Azure
// DevOps Git service, and the production builder on it.
type simBundle struct {
	sim  *simtest.Sim
	info *simfile.AzureDevOpsGit
	// identity is the test's own age identity: sinks encrypt to it (and to
	// the simulator's), so the test can read back what was committed.
	identity *age.X25519Identity
	deps     sink.Deps
	builder  sink.Builder
	// admin is the test's own client of the demo project's repository.
	admin *client
	// transport is what every sink's HTTP client goes through; tests set
	// before to act between a sink's read and its push.
	before atomic.Pointer[func(*http.Request)]
}

type secrets struct{ pat string }

func (s secrets) Resolve(_ context.Context, ref sink.SecretRef) (secret.Value, error) {
	switch ref.Env {
	case envPAT:
		return secret.New(s.pat), nil
	case envBadPAT:
		return secret.New("not-the-pat"), nil
	}
	return secret.Value{}, sink.Permanent(fmt.Errorf("no %s", ref))
}

type creds struct {
	b      *simBundle
	t      testing.TB
	tenant *simfile.Tenant
}

func (c creds) TokenCredential(_ domain.OrgID, conn string) (sink.AzureIdentity, error) {
	var cred azcore.TokenCredential
	switch conn {
	case connSim:
		cred = c.b.sim.RotationCredential(c.t, c.tenant.ID)
	case connDenied:
		cred = c.b.sim.SecretCredential(c.t, c.tenant.ID, c.tenant.Rotation.ClientID, "wrong-secret")
	default:
		return sink.AzureIdentity{}, fmt.Errorf("no connection %q", conn)
	}
	return sink.AzureIdentity{Credential: cred, ClientOptions: c.b.sim.ClientOptions, Simulator: true}, nil
}

// hookTransport calls the bundle's before hook on every request.
type hookTransport struct {
	b    *simBundle
	next http.RoundTripper
}

func (h hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f := h.b.before.Load(); f != nil {
		(*f)(r)
	}
	return h.next.RoundTrip(r)
}

func setup(t *testing.T) *simBundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h"})
	require.NotNil(t, s.Info.AzureDevOpsGit, "sim.json describes the Azure DevOps Git service")
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	b := &simBundle{sim: s, info: s.Info.AzureDevOpsGit, identity: id}
	hc := &http.Client{Transport: hookTransport{b: b, next: s.HTTP.Transport}, Timeout: 10 * time.Second}
	b.deps = sink.Deps{Secrets: secrets{pat: b.info.PAT}, HTTPClient: hc, Credentials: creds{b: b, t: t, tenant: &s.Info.Tenants[0]}}
	b.builder, err = Kind{}.NewBuilder(b.deps)
	require.NoError(t, err)
	b.admin = &client{hc: s.HTTP, base: repoBase(b.info.URL, b.info.Project, b.info.Repository),
		auth: func(context.Context) (string, error) {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+b.info.PAT)), nil
		}}
	return b
}

// put commits content at path on the demo branch, as a person would.
func (b *simBundle) put(t testing.TB, path, content string) {
	t.Helper()
	ctx := context.Background()
	tip, err := b.admin.tip(ctx, b.info.Branch)
	require.NoError(t, err)
	_, found, err := b.admin.file(ctx, path, tip)
	require.NoError(t, err)
	ch := pushChange{ChangeType: "edit"}
	if !found {
		ch.ChangeType = "add"
	}
	ch.Item.Path = path
	ch.NewContent.Content, ch.NewContent.ContentType = content, "rawtext"
	require.NoError(t, b.admin.do(ctx, "test push", http.MethodPost, b.admin.url("/pushes", url.Values{}), map[string]any{
		"refUpdates": []map[string]string{{"name": "refs/heads/" + b.info.Branch, "oldObjectId": tip}},
		"commits":    []map[string]any{{"comment": "by hand", "changes": []pushChange{ch}}},
	}, nil))
}

// raw reads path at the branch's tip as raw bytes (the items API without
// JSON), so what the test checks is not what the sink's own code parsed.
func (b *simBundle) raw(t testing.TB, path string) (string, bool) {
	t.Helper()
	u := b.admin.base + "/items?" + url.Values{"path": {path}, "versionDescriptor.version": {b.info.Branch},
		"versionDescriptor.versionType": {"branch"}, "api-version": {APIVersion}}.Encode()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.SetBasicAuth("", b.info.PAT)
	resp, err := b.sim.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusNotFound {
		return "", false
	}
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	return string(body), true
}

func (b *simBundle) decrypt(t testing.TB, enc string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(enc)
	require.NoError(t, err, "the committed value is base64 of an age file")
	r, err := age.Decrypt(bytes.NewReader(raw), b.identity)
	require.NoError(t, err)
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(out)
}

// spec is a sink spec on the demo repository.
func (b *simBundle) spec(path, key, meta string, recipients bool) domain.SinkSpec {
	s := map[string]any{
		KeyOrganizationURL: b.info.URL, KeyProject: b.info.Project, KeyRepository: b.info.Repository,
		KeyPath: path, KeyKey: key, KeyPAT: map[string]any{"env": envPAT},
	}
	if meta != "" {
		s[KeyMetadataKey] = meta
	}
	if recipients {
		s[KeyRecipients] = []any{b.identity.Recipient().String(), b.info.AgeRecipient}
	}
	return domain.SinkSpec{Type: Type, Settings: s}
}

func lookupValue(t testing.TB, content, path string) *yaml.Node {
	t.Helper()
	d, err := parseYAML([]byte(content))
	require.NoError(t, err)
	l, err := d.lookup(path, "test")
	require.NoError(t, err)
	return l.value
}

// TestConformance runs the sink suite against the simulator's Azure DevOps
// Git over HTTPS, with PAT authentication.
func TestConformance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, conformanceFile, "# conformance targets, one key per application\nplaceholder: true\n")
	sinktest.Run(t, &harness{b: b})
}

const conformanceFile = "/conformance/values.yaml"

type harness struct {
	b *simBundle
	n atomic.Int64
}

var (
	_ sinktest.Harness  = (*harness)(nil)
	_ sinktest.Tamperer = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

// Request names the key and its metadata after a fresh application's
// display name, at the top of a shared file.
func (h *harness) Request(*testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	id := fmt.Sprintf("conf-app-%d", n)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: h.b.sim.Info.Tenants[0].ID, ObjectID: "obj-" + id, AppID: id,
		DisplayName: fmt.Sprintf("Conformance App %d", n)}
	return sink.BuildRequest{Spec: h.b.spec(conformanceFile, "{{ .App.DisplayName | slug }}-secret", "{{ .App.DisplayName | slug }}-rotor", true),
		Connection: connSim, App: app}
}

func (h *harness) target(t *testing.T, id sink.TargetID) Target {
	tg, err := ParseTarget(id)
	require.NoError(t, err)
	return tg
}

// Foreign commits a value of someone else's at the key, without metadata.
func (h *harness) Foreign(t *testing.T, id sink.TargetID) {
	tg := h.target(t, id)
	content, ok := h.b.raw(t, tg.Path)
	require.True(t, ok)
	h.b.put(t, tg.Path, content+tg.Key+": someone-elses-value\n")
}

func (h *harness) Read(t *testing.T, id sink.TargetID) sinktest.Held {
	tg := h.target(t, id)
	if tg.OrgURL != h.b.info.URL {
		return sinktest.Held{} // the unreachable organization
	}
	content, ok := h.b.raw(t, tg.Path)
	if !ok {
		return sinktest.Held{}
	}
	v := lookupValue(t, content, tg.Key)
	if v == nil {
		return sinktest.Held{}
	}
	val := v.Value
	if raw, err := base64.StdEncoding.DecodeString(val); err == nil && strings.HasPrefix(string(raw), "age-encryption.org/v1\n") {
		val = h.b.decrypt(t, val)
	}
	return sinktest.Held{Exists: true, Version: BlobID([]byte(content)), Secret: secret.New(val)}
}

// Denied uses a PAT Azure DevOps refuses (its 203 sign-in page).
func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[KeyPAT] = map[string]any{"env": envBadPAT}
	return req
}

// Unreachable points the organization at a closed loopback port.
func (h *harness) Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[KeyOrganizationURL] = "https://" + addr + "/" + h.b.info.Organization
	return req
}

// Tamper edits the file by hand (a comment at its end), leaving rotor's
// key and metadata as they are.
func (h *harness) Tamper(t *testing.T, id sink.TargetID) {
	tg := h.target(t, id)
	content, ok := h.b.raw(t, tg.Path)
	require.True(t, ok)
	h.b.put(t, tg.Path, content+"# edited by hand\n")
}

func demoApp(t testing.TB, b *simBundle) domain.Application {
	return domain.Application{Org: domain.DefaultOrg, TenantID: b.sim.Info.Tenants[0].ID, ObjectID: "obj-payments",
		AppID: "11111111-2222-3333-4444-555555555555", DisplayName: "Payments API"}
}

func delivery(app domain.Application, keyID, value string) sink.Delivery {
	now := time.Now().UTC().Truncate(time.Second)
	return sink.Delivery{Org: app.Org, RunID: "run-" + keyID, App: app, TenantID: app.TenantID, ClientID: app.AppID,
		KeyID: keyID, Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(90 * 24 * time.Hour)}
}

func (b *simBundle) build(t testing.TB, spec domain.SinkSpec, app domain.Application) sink.Sink {
	t.Helper()
	sk, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: connSim, App: app})
	require.NoError(t, err)
	return sk
}

// goldenValues is a values file with everything a byte-preserving edit
// must keep: comments in odd places, anchors and aliases, every quoting
// style, extra spaces, a flow sequence, non-ASCII text, CRLF-free but
// tab-bearing comments, and no newline at the end.
const goldenValues = "# top comment\t(with a tab)\n" +
	"global: &g\n" +
	"  region:   westeurope   # two spaces, three spaces\n" +
	"  labels: {team: 'payments', tier: \"1\"}\n" +
	"\n" +
	"app:\n" +
	"  <<: *g\n" +
	"  name: 'Zahlungs-API — prod'\n" +
	"  azure:\n" +
	"      # indented by six\n" +
	"      clientId:    \"cid\"\n" +
	"      clientSecret: \"\"      # rotor fills this\n" +
	"      rotor:   {}\n" +
	"  list: [a, \"b\", 'c']\n" +
	"tail: last"

// TestEditPreservesEveryOtherByte delivers twice into the golden file:
// after each delivery the file equals the previous one with only the
// secret's and the metadata's bytes replaced.
func TestEditPreservesEveryOtherByte(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const path = "/golden/values.yaml"
	b.put(t, path, goldenValues)
	app := demoApp(t, b)
	spec := b.spec(path, "app.azure.clientSecret", "", true)
	prev := goldenValues
	for i, v := range []string{"first-value", "second-value"} {
		d := delivery(app, fmt.Sprintf("key-%d", i), v)
		res, err := b.build(t, spec, app).Deliver(context.Background(), d)
		require.NoError(t, err)
		require.True(t, res.Changed)
		got, ok := b.raw(t, path)
		require.True(t, ok)
		require.Equal(t, BlobID([]byte(got)), res.Version, "the version is the pushed blob's id")

		sealed := lookupValue(t, got, "app.azure.clientSecret").Value
		require.Equal(t, v, b.decrypt(t, sealed))
		// Replace exactly the two values in the previous file, by hand.
		oldSecret := lookupValue(t, prev, "app.azure.clientSecret").Value
		oldMeta := "{}"
		if i > 0 {
			oldMeta = metaText(app.AppID, "key-0", d.End)
		}
		want := strings.Replace(prev, `clientSecret: "`+oldSecret+`"`, `clientSecret: "`+sealed+`"`, 1)
		want = strings.Replace(want, "rotor:   "+oldMeta, "rotor:   "+metaText(app.AppID, d.KeyID, d.End), 1)
		require.NotEqual(t, prev, want)
		require.Equal(t, want, got, "delivery %d changed only the value's and the metadata's bytes", i+1)
		prev = got
	}
}

// TestCreatesAMissingKeyInItsParent adds the key and the metadata as new
// lines of the parent mapping, and refuses a key whose parent is missing.
func TestCreatesAMissingKeyInItsParent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const path = "/new/values.yaml"
	const orig = "azure:\n  clientId: x   # keep\nother: 1\n"
	b.put(t, path, orig)
	app := demoApp(t, b)
	d1 := delivery(app, "k1", "v1")
	_, err := b.build(t, b.spec(path, "azure.clientSecret", "", true), app).Deliver(context.Background(), d1)
	require.NoError(t, err)
	got, _ := b.raw(t, path)
	sealed := lookupValue(t, got, "azure.clientSecret").Value
	require.Equal(t, "azure:\n  clientId: x   # keep\n  clientSecret: \""+sealed+"\"\n  rotor: "+
		metaText(app.AppID, "k1", d1.End)+"\nother: 1\n", got)

	sk := b.build(t, b.spec(path, "missing.clientSecret", "", true), app)
	_, err = sk.Deliver(context.Background(), delivery(app, "k2", "v2"))
	var pe *PathError
	require.ErrorAs(t, err, &pe)
	require.True(t, sink.IsPermanent(err))
	require.Contains(t, err.Error(), "its parent missing does not exist")
	require.Equal(t, sink.StatusFailed, sk.(sink.Validator).Validate(context.Background()).Status)
}

// TestRetriesWhenTheBranchMoves moves the branch between the sink's read
// and its push: the push is refused (409 TF401028) and the sink commits on
// the new tip, keeping the other commit's change.
func TestRetriesWhenTheBranchMoves(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := demoApp(t, b)
	var moved atomic.Int64
	hook := func(r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/pushes") && moved.Add(1) == 1 {
			b.put(t, "/README.md", "# deploy\n\nMoved behind rotor's back.\n")
		}
	}
	b.before.Store(&hook)
	t.Cleanup(func() { b.before.Store(nil) })

	res, err := b.build(t, b.spec(b.info.Path, "azure.clientSecret", "", true), app).Deliver(context.Background(), delivery(app, "k1", "moved-value"))
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Contains(t, res.Note, "attempt 2")
	require.EqualValues(t, 2, moved.Load(), "one refused push, one that went through")
	readme, _ := b.raw(t, "/README.md")
	require.Contains(t, readme, "Moved behind rotor's back", "the other commit is kept")
	got, _ := b.raw(t, b.info.Path)
	require.Equal(t, "moved-value", b.decrypt(t, lookupValue(t, got, "azure.clientSecret").Value))
}

// TestGivesUpWhenTheBranchKeepsMoving is retryable after MaxAttempts.
func TestGivesUpWhenTheBranchKeepsMoving(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := demoApp(t, b)
	var n atomic.Int64
	hook := func(r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/pushes") {
			b.put(t, "/README.md", fmt.Sprintf("moved %d\n", n.Add(1)))
		}
	}
	b.before.Store(&hook)
	t.Cleanup(func() { b.before.Store(nil) })
	_, err := b.build(t, b.spec(b.info.Path, "azure.clientSecret", "", true), app).Deliver(context.Background(), delivery(app, "k1", "v"))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err), "a busy branch may calm down: %v", err)
	require.EqualValues(t, MaxAttempts, n.Load())
}

// TestMetadataOnlyCommitsNoSecret: without recipients, the pushed content
// holds the key id and expiry but not the value, and the key is untouched.
func TestMetadataOnlyCommitsNoSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := demoApp(t, b)
	const value = "metadata-only-value-that-must-not-be-committed"
	var pushed bytes.Buffer
	hook := func(r *http.Request) {
		if r.Method == http.MethodPost && r.Body != nil {
			body, _ := io.ReadAll(r.Body)
			pushed.Write(body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	b.before.Store(&hook)
	t.Cleanup(func() { b.before.Store(nil) })
	before, _ := b.raw(t, b.info.Path)

	sk := b.build(t, b.spec(b.info.Path, "azure.clientSecret", "", false), app)
	require.Equal(t, sink.StatusReady, sk.(sink.Validator).Validate(context.Background()).Status)
	d := delivery(app, "k-meta", value)
	res, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Contains(t, res.Note, "metadata only")
	require.NotEmpty(t, pushed.String(), "a push went out")
	require.NotContains(t, pushed.String(), value, "the value is in no request")
	got, _ := b.raw(t, b.info.Path)
	require.NotContains(t, got, value)
	require.Equal(t, strings.Replace(before, "rotor: {}", "rotor: "+metaText(app.AppID, d.KeyID, d.End), 1), got)
	held, err := sk.(sink.Holder).Holds(context.Background(), "k-meta")
	require.NoError(t, err)
	require.True(t, held)
	for _, c := range b.sim.Server.Consumers() {
		require.NotEqual(t, "adogit", c.Service, "a metadata-only commit records no consumer")
	}
	again, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.False(t, again.Changed)
}

// TestAgeRoundTripAndConsumers: the committed value decrypts to the
// delivered one with an identity of the recipients; the simulator records
// a consumer it can decrypt, and a sealed one it cannot.
func TestAgeRoundTripAndConsumers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := demoApp(t, b)
	_, err := b.build(t, b.spec(b.info.Path, "azure.clientSecret", "", true), app).Deliver(context.Background(), delivery(app, "k1", "round-trip"))
	require.NoError(t, err)
	got, _ := b.raw(t, b.info.Path)
	require.Equal(t, "round-trip", b.decrypt(t, lookupValue(t, got, "azure.clientSecret").Value))
	target := fmt.Sprintf("%s/%s/%s/%s:%s", b.info.Organization, b.info.Project, b.info.Repository, b.info.Branch, b.info.Path)
	requireConsumer(t, b, target, "azure.clientSecret", false)

	// Only the test's recipient: the simulator cannot read it.
	const path = "/sealed/values.yaml"
	b.put(t, path, "azure:\n  clientSecret: \"\"\n")
	spec := b.spec(path, "azure.clientSecret", "", true)
	spec.Settings[KeyRecipients] = []any{b.identity.Recipient().String()}
	_, err = b.build(t, spec, app).Deliver(context.Background(), delivery(app, "k2", "sealed"))
	require.NoError(t, err)
	requireConsumer(t, b, fmt.Sprintf("%s/%s/%s/%s:%s", b.info.Organization, b.info.Project, b.info.Repository, b.info.Branch, path), "azure.clientSecret", true)
}

func requireConsumer(t *testing.T, b *simBundle, target, field string, sealed bool) {
	t.Helper()
	for _, c := range b.sim.Server.Consumers() {
		if c.Service == "adogit" && c.Target == target && c.Field == field {
			require.Equal(t, sealed, c.Sealed)
			return
		}
	}
	t.Fatalf("no adogit consumer %s %s in %+v", target, field, b.sim.Server.Consumers())
}

// TestEntraConnection authenticates as the connection (an Entra token for
// Azure DevOps) instead of a PAT; a refused credential is permanent.
func TestEntraConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := demoApp(t, b)
	spec := b.spec(b.info.Path, "azure.clientSecret", "", true)
	delete(spec.Settings, KeyPAT)
	sk := b.build(t, spec, app)
	require.Equal(t, sink.StatusReady, sk.(sink.Validator).Validate(context.Background()).Status)
	_, err := sk.Deliver(context.Background(), delivery(app, "k1", "entra-value"))
	require.NoError(t, err)

	denied, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: connDenied, App: app})
	require.NoError(t, err)
	_, err = denied.Deliver(context.Background(), delivery(app, "k2", "entra-denied"))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err), "%v", err)
	sinktest.NoSecret(t, err, "entra-denied")
}

// TestDiscover lists the demo project's repositories and branches.
func TestDiscover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.builder.(sink.Discoverer)
	spec := domain.SinkSpec{Type: Type, Settings: map[string]any{KeyOrganizationURL: b.info.URL, KeyProject: b.info.Project, KeyPAT: map[string]any{"env": envPAT}}}
	repos, err := d.Discover(context.Background(), sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: spec, Key: KeyRepository})
	require.NoError(t, err)
	var names []string
	for _, c := range repos {
		names = append(names, c.Value)
	}
	require.Equal(t, []string{"deploy", "infra"}, names)
	spec.Settings[KeyRepository] = "deploy"
	branches, err := d.Discover(context.Background(), sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: spec, Key: KeyBranch})
	require.NoError(t, err)
	require.Len(t, branches, 1)
	require.Equal(t, "main", branches[0].Value)
	_, err = d.Discover(context.Background(), sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: spec, Key: "nope"})
	require.Error(t, err)
}
