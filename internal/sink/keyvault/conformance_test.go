package keyvault

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// TestConformance runs the sink suite against the simulator's vault over
// HTTPS, with the production builder making Microsoft's azsecrets clients.
func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &simHarness{b: setupSim(t)})
}

// simHarness is sinktest.Harness on the simulator. It reads back with the
// test's own client, which may get values; the sinks' clients fail the test
// if they do.
type simHarness struct {
	b simBundle
	n atomic.Int64
}

var (
	_ sinktest.Harness = (*simHarness)(nil)
	_ sinktest.Ticker  = (*simHarness)(nil)
)

func (h *simHarness) Builder(*testing.T) sink.Builder { return h.b.builder }

// Request names each sink's secret after a fresh application's display
// name, so a rename would move it unless pinned.
func (h *simHarness) Request(*testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	id := fmt.Sprintf("conf-app-%d", n)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: h.b.tenantID, ObjectID: "obj-" + id, AppID: id, DisplayName: fmt.Sprintf("Conformance App %d", n)}
	spec := h.b.spec("{{ .App.DisplayName | slug }}-secret", false)
	return sink.BuildRequest{Spec: spec, Connection: connSim, App: app}
}

func (h *simHarness) Foreign(t *testing.T, target sink.TargetID) {
	_, name, err := ParseTarget(target)
	require.NoError(t, err)
	_, err = h.b.client.SetSecret(context.Background(), name, azsecrets.SetSecretParameters{
		Value: to.Ptr("someone-elses-value"), Tags: map[string]*string{"owner": to.Ptr("team-x")}}, nil)
	require.NoError(t, err)
}

func (h *simHarness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	vaultURL, name, err := ParseTarget(target)
	require.NoError(t, err)
	if vaultURL != h.b.vaultURL {
		return sinktest.Held{} // the unreachable vault: nothing there
	}
	resp, err := h.b.client.GetSecret(context.Background(), name, "", nil)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return sinktest.Held{}
	}
	require.NoError(t, err)
	return sinktest.Held{Exists: true, Version: resp.ID.Version(), Secret: secret.New(*resp.Value)}
}

// Denied uses the rotation identity with a wrong secret: the simulator
// does not model vault RBAC, so Entra's refusal is how it denies.
func (h *simHarness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Connection = connDenied
	return req
}

// Unreachable points the spec at a loopback port nothing listens on.
func (h *simHarness) Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[KeyVaultURL] = "https://" + addr + "/"
	return req
}

func (h *simHarness) Tick() { h.b.tick() }

var _ sinktest.Tamperer = (*simHarness)(nil)

// Tamper writes a new version by hand, keeping rotor's tags, as a person
// pasting a value into the portal would.
func (h *simHarness) Tamper(t *testing.T, target sink.TargetID) {
	_, name, err := ParseTarget(target)
	require.NoError(t, err)
	ctx := context.Background()
	cur, err := h.b.client.GetSecret(ctx, name, "", nil)
	require.NoError(t, err)
	_, err = h.b.client.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("pasted-by-hand"), Tags: cur.Tags}, nil)
	require.NoError(t, err)
}
