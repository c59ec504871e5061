package adovariables

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
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
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
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

func (b bundle) spec(group any, variable string, auth map[string]any) domain.SinkSpec {
	st := map[string]any{ado_org: b.ado.URL, "project": b.ado.Project, KeyGroup: group, KeyVariable: variable}
	maps.Copy(st, auth)
	return domain.SinkSpec{Type: Type, Settings: st}
}

const ado_org = "organization_url"

func pat(env string) map[string]any { return map[string]any{"pat": map[string]any{"env": env}} }
