package graph_test

import (
	"net/http"
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

func (e *env) tenant(t *testing.T, name string) *simfile.Tenant {
	t.Helper()
	tn, ok := e.info.Tenant(name)
	require.True(t, ok, "tenant %s", name)
	return tn
}

func withoutKid(t *testing.T, tok string) string {
	t.Helper()
	return simtest.WithoutKid(t, tok)
}
