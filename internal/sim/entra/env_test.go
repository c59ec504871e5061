package entra_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// env is what a test against a running simulator needs, in the names
// these tests use.
type env struct {
	sim    *simtest.Sim
	srv    *sim.Server
	info   *simfile.Info
	dir    string
	http   *http.Client // trusts the simulator's CA
	client azcore.ClientOptions
}

// setup starts a simulator through simtest (which reads sim.json back, as
// any client would). Its SDK clients do not retry, so a refusal shows up
// as the answer it is.
func setup(t *testing.T, tweak ...func(*simtest.Options)) *env {
	t.Helper()
	var opts simtest.Options
	for _, f := range tweak {
		f(&opts)
	}
	s := simtest.Start(t, opts)
	hc := &http.Client{Transport: s.HTTP.Transport, Timeout: 10 * time.Second}
	client := s.ClientOptions
	client.Transport = hc
	client.Retry = policy.RetryOptions{MaxRetries: -1}
	return &env{sim: s, srv: s.Server, info: s.Info, dir: s.Dir, http: hc, client: client}
}

// advance moves the simulator's clock forward by d.
func (e *env) advance(t *testing.T, d time.Duration) {
	t.Helper()
	e.sim.AdvanceClock(d)
}

func (e *env) tenant(t *testing.T, name string) *simfile.Tenant {
	t.Helper()
	tn, ok := e.info.Tenant(name)
	require.True(t, ok, "tenant %s", name)
	return tn
}

func (e *env) tokenRequest(t *testing.T, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	return e.sim.TokenRequest(t, tenant, form)
}

func (e *env) do(t *testing.T, method, url string, body any, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	return e.sim.Do(t, method, url, body, hdr)
}

func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	return simtest.ClaimsOf(t, tok)
}

func secretForm(tn *simfile.Tenant, scope string) url.Values { return simtest.SecretForm(tn, scope) }

func decodeBody(t *testing.T, resp *http.Response) (int, map[string]any) {
	t.Helper()
	return simtest.DecodeBody(t, resp)
}
