package adovariables

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// TestConformance runs the sink suite against the simulated Azure DevOps
// over HTTPS.
func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)})
}

type harness struct {
	b bundle
	n atomic.Int64
}

var (
	_ sinktest.Harness  = (*harness)(nil)
	_ sinktest.Tamperer = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

const varTemplate = "{{ .App.DisplayName | snake | upper }}_CLIENT_SECRET"

// newGroup creates a variable group holding other people's variables.
func (b bundle) newGroup(t *testing.T, name string) int {
	t.Helper()
	m := b.control(t, http.MethodPost, "variablegroups", map[string]any{"name": name, "variables": map[string]any{
		"REGION":       map[string]any{"value": "westeurope"},
		"SQL_PASSWORD": map[string]any{"value": "someone-elses-sql-password", "isSecret": true},
	}})
	return int(m["id"].(float64))
}

// groupVars reads a group with its values through the control API.
func (b bundle) groupVars(t *testing.T, id int) map[string]map[string]any {
	t.Helper()
	m := b.control(t, http.MethodGet, fmt.Sprintf("variablegroups/%d", id), nil)
	out := map[string]map[string]any{}
	for k, v := range m["variables"].(map[string]any) {
		out[k] = v.(map[string]any)
	}
	return out
}

// Request makes a fresh application and a fresh group for it.
func (h *harness) Request(t *testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: h.b.ado.TenantID, ObjectID: uuid.NewString(), AppID: uuid.NewString(),
		DisplayName: fmt.Sprintf("Conformance App %d", n)}
	id := h.b.newGroup(t, fmt.Sprintf("conformance-group-%d", n))
	return sink.BuildRequest{Spec: h.b.spec(fmt.Sprint(id), varTemplate, pat(envPAT)), Connection: connSim, App: app}
}

func (h *harness) parse(t *testing.T, target sink.TargetID) (int, string, bool) {
	org, _, gid, _, variable, err := ParseTarget(target)
	require.NoError(t, err)
	return gid, variable, org == strings.ToLower(h.b.ado.URL)
}

func (h *harness) Foreign(t *testing.T, target sink.TargetID) {
	gid, variable, ok := h.parse(t, target)
	require.True(t, ok)
	h.b.control(t, http.MethodPut, fmt.Sprintf("variablegroups/%d/variables/%s", gid, strings.ToUpper(variable)),
		map[string]any{"value": "someone-elses-value", "isSecret": true})
}

func (h *harness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	gid, variable, ok := h.parse(t, target)
	if !ok {
		return sinktest.Held{}
	}
	for k, v := range h.b.groupVars(t, gid) {
		if strings.EqualFold(k, variable) {
			return sinktest.Held{Exists: true, Version: fmt.Sprint(v["rev"]), Secret: secret.New(v["value"].(string))}
		}
	}
	return sinktest.Held{}
}

func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Spec = h.b.spec(req.Spec.Settings[KeyGroup], varTemplate, pat(envNoAccess))
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

// Tamper is a person pasting another value into the variable.
func (h *harness) Tamper(t *testing.T, target sink.TargetID) {
	gid, variable, ok := h.parse(t, target)
	require.True(t, ok)
	h.b.control(t, http.MethodPut, fmt.Sprintf("variablegroups/%d/variables/%s", gid, strings.ToUpper(variable)),
		map[string]any{"value": "pasted-by-hand", "isSecret": true})
}
