package adoconnection

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// envSecrets resolves {env: NAME} from a map: the test's environment.
type envSecrets map[string]string

func (e envSecrets) Resolve(_ context.Context, ref sink.SecretRef) (secret.Value, error) {
	v, ok := e[ref.Env]
	if !ok {
		return secret.Value{}, fmt.Errorf("%s is not set", ref)
	}
	return secret.New(v), nil
}

// creds hands out simulator identities by connection name.
type creds struct {
	co azcore.ClientOptions
	m  map[string]azcore.TokenCredential
}

func (c creds) TokenCredential(_ domain.OrgID, connection string) (sink.AzureIdentity, error) {
	cred, ok := c.m[connection]
	if !ok {
		return sink.AzureIdentity{}, fmt.Errorf("unknown connection %q", connection)
	}
	co := c.co
	co.Retry = policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}
	return sink.AzureIdentity{Credential: cred, ClientOptions: co, Simulator: true}, nil
}

// bundle is a simulator with its Azure DevOps and the builder on it.
type bundle struct {
	s       *simtest.Sim
	ado     *simfile.AzureDevOps
	builder sink.Builder
}

const (
	envPAT      = "ADO_PAT"
	envReadOnly = "ADO_READONLY_PAT"
	envNoAccess = "ADO_NOACCESS_PAT"
	envBogus    = "ADO_BOGUS_PAT"
	connSim     = "sim"
	connOther   = "other"
)

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h"})
	a := s.Info.AzureDevOps
	require.NotNil(t, a, "sim.json has azure_devops")
	tn := s.Tenant(t, a.TenantID)
	b, err := Kind{}.NewBuilder(sink.Deps{
		HTTPClient: s.HTTP,
		Secrets:    envSecrets{envPAT: a.PAT, envReadOnly: a.ReadOnlyPAT, envNoAccess: a.NoAccessPAT, envBogus: "not-a-pat-anyone-issued"},
		Credentials: creds{co: s.ClientOptions, m: map[string]azcore.TokenCredential{
			connSim:   s.RotationCredential(t, tn.ID),
			connOther: s.ConsumerCredential(t, tn.ID),
		}},
	})
	require.NoError(t, err)
	return bundle{s: s, ado: a, builder: b}
}

func (b bundle) basic() map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+b.ado.PAT))}
}

func (b bundle) control(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	u := strings.TrimSuffix(b.ado.URL, "/"+b.ado.Organization) + "/_sim/ado/" + path
	st, m := b.s.Do(t, method, u, body, b.s.AdminHeader())
	require.Less(t, st, 300, "control %s %s: %v", method, path, m)
	return m
}

// newConnection creates an azurerm connection without a key, as a person
// would before the first rotation, and returns its id.
func (b bundle) newConnection(t *testing.T, name, clientID string) string {
	t.Helper()
	m := b.control(t, http.MethodPost, "endpoints", map[string]any{"name": name, "client_id": clientID, "tenant_id": b.ado.TenantID})
	return m["id"].(string)
}

// idOf finds a connection's id by name through the REST API ("" if none).
func (b bundle) idOf(t *testing.T, name string) string {
	t.Helper()
	st, m := b.s.Do(t, http.MethodGet, b.ado.URL+"/"+b.ado.Project+"/_apis/serviceendpoint/endpoints?api-version=7.1&endpointNames="+url.QueryEscape(name), nil, b.basic())
	require.Equal(t, http.StatusOK, st)
	for _, v := range m["value"].([]any) {
		e := v.(map[string]any)
		if strings.EqualFold(e["name"].(string), name) {
			return e["id"].(string)
		}
	}
	return ""
}

func (b bundle) spec(endpoint string, auth map[string]any) domain.SinkSpec {
	st := map[string]any{ado_org: b.ado.URL, "project": b.ado.Project, KeyEndpoint: endpoint}
	maps.Copy(st, auth)
	return domain.SinkSpec{Type: Type, Settings: st}
}

const ado_org = "organization_url"

func pat(env string) map[string]any { return map[string]any{"pat": map[string]any{"env": env}} }

// TestConformance runs the sink suite against the simulated Azure DevOps
// over HTTPS.
func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)})
}

// TestConformanceCertificates runs it with certificates: each delivery
// makes the connection an spnCertificate one holding the PEM.
func TestConformanceCertificates(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t), certs: true}, sinktest.WithCertificates())
}

type harness struct {
	b     bundle
	n     atomic.Int64
	certs bool
}

var (
	_ sinktest.Harness  = (*harness)(nil)
	_ sinktest.Tamperer = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

// Request makes a fresh application and a connection named after it
// that holds no key yet.
func (h *harness) Request(t *testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: h.b.ado.TenantID, ObjectID: uuid.NewString(), AppID: uuid.NewString(),
		DisplayName: fmt.Sprintf("Conformance App %d", n)}
	h.b.newConnection(t, keyvault.Slug(app.DisplayName)+"-conn", app.AppID)
	req := sink.BuildRequest{Spec: h.b.spec("{{ .App.DisplayName | slug }}-conn", pat(envPAT)), Connection: connSim, App: app}
	if h.certs {
		req.Kind = domain.KindCertificate
	}
	return req
}

func (h *harness) name(t *testing.T, target sink.TargetID) (string, bool) {
	org, _, id, name, err := ParseTarget(target)
	require.NoError(t, err)
	if org != strings.ToLower(h.b.ado.URL) {
		return "", false
	}
	if id != "" {
		return id, true
	}
	id = h.b.idOf(t, name)
	return id, id != ""
}

// Foreign points the connection at another application, with its key.
func (h *harness) Foreign(t *testing.T, target sink.TargetID) {
	id, ok := h.name(t, target)
	require.True(t, ok)
	h.b.control(t, http.MethodPut, "endpoints/"+id, map[string]any{"client_id": uuid.NewString(), "key": "someone-elses-key"})
}

func (h *harness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	id, ok := h.name(t, target)
	if !ok {
		return sinktest.Held{}
	}
	m := h.b.control(t, http.MethodGet, "endpoints/"+id, nil)
	key, _ := m["key"].(string)
	if key == "" {
		return sinktest.Held{}
	}
	return sinktest.Held{Exists: true, Version: fmt.Sprint(m["rev"]), Secret: secret.New(key)}
}

// Denied signs in with the PAT of someone who is not a member of the
// project: every call is 401.
func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Spec = h.b.spec(req.Spec.Settings[KeyEndpoint].(string), pat(envNoAccess))
	return req
}

func (h *harness) Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[ado_org] = "https://" + addr + "/" + h.b.ado.Organization
	return req
}

// Tamper is a person editing the connection in the portal: a new key and
// description, the same service principal.
func (h *harness) Tamper(t *testing.T, target sink.TargetID) {
	id, ok := h.name(t, target)
	require.True(t, ok)
	h.b.control(t, http.MethodPut, "endpoints/"+id, map[string]any{"key": "pasted-by-hand", "description": "edited by hand"})
}
