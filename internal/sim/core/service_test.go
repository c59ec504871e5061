package core_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// echoService is the smallest service: a route on the main listener, a
// listener of its own, and its address in sim.json. It stands for the
// services to come (Azure DevOps, Vercel, GitHub, …), which need nothing
// else from the core.
type echoService struct {
	*core.Core
	own *core.Listener
}

func (s *echoService) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	r.Handle("/echo/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "main") }))
	r.Handle("/echo/deep/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "deep") }))
	s.own = r.Listen("echo", false, s.WithFaults(nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "own")
	})))
	return nil
}

func (s *echoService) Started(info *simfile.Info) error {
	info.ARMURL = "http://" + s.own.HostPort() + "/"
	return nil
}

var (
	_ core.Service = (*echoService)(nil)
	_ core.Starter = (*echoService)(nil)
)

func TestServiceRegistersRoutesAndListeners(t *testing.T) {
	t.Parallel()
	svc := &echoService{}
	c, err := core.New(core.Options{StateDir: t.TempDir(), Seed: "apps=1"}, svc)
	require.NoError(t, err)
	require.NoError(t, c.Start(t.Context()))
	t.Cleanup(func() { _ = c.Close() })
	require.Same(t, c, svc.Core)

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback test of routing only
	get := func(url string) (int, string) {
		resp, err := hc.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	base := c.Info().AuthorityHost
	_, body := get(base + "echo/x")
	require.Equal(t, "main", body)
	_, body = get(base + "echo/deep/x")
	require.Equal(t, "deep", body, "the longest prefix wins")
	status, _ := get(base + "nothing-here")
	require.Equal(t, http.StatusNotFound, status, "no service claims /")
	_, body = get(c.Info().ARMURL)
	require.Equal(t, "own", body, "the service's own listener, published by Started")
	status, _ = get(base + "_sim/stats")
	require.Equal(t, http.StatusUnauthorized, status, "the core's control API is always there")
}
