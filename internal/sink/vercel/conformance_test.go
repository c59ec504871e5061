package vercel

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// bundle is what every test of the sink against the simulator needs.
type bundle struct {
	sim     *simtest.Sim
	v       *simfile.Vercel
	builder sink.Builder
}

// envSecrets resolves {env: NAME} from a map, as the server resolves it
// from the environment.
type envSecrets map[string]string

func (m envSecrets) Resolve(_ context.Context, ref sink.SecretRef) (secret.Value, error) {
	v, ok := m[ref.Env]
	if !ok {
		return secret.Value{}, sink.Permanent(fmt.Errorf("%s is not set", ref))
	}
	return secret.New(v), nil
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{})
	require.NotNil(t, s.Info.Vercel, "sim.json names the Vercel API")
	v := s.Info.Vercel
	b, err := Kind{}.NewBuilder(sink.Deps{
		HTTPClient: s.HTTP, Clock: clock.Real{},
		Secrets: envSecrets{"VERCEL_TOKEN": v.Token, "VERCEL_DENIED_TOKEN": v.DeniedToken},
	})
	require.NoError(t, err)
	return bundle{sim: s, v: v, builder: b}
}

// spec is a spec on the demo project, with tweaks.
func (b bundle) spec(key string, tweak map[string]any) domain.SinkSpec {
	st := map[string]any{
		KeyProject: b.v.Project, KeyTeamID: b.v.TeamID, KeyKey: key,
		KeyToken: map[string]any{"env": "VERCEL_TOKEN"}, KeyAPIURL: b.v.URL,
	}
	maps.Copy(st, tweak)
	return domain.SinkSpec{Type: Type, Settings: st}
}

// api calls the simulated Vercel API with the test's own token, which may
// read values.
func (b bundle) api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	sep := "?"
	if containsQuery(path) {
		sep = "&"
	}
	return b.sim.Do(t, method, b.v.URL+path+sep+"teamId="+b.v.TeamID, body, map[string]string{"Authorization": "Bearer " + b.v.Token})
}

func containsQuery(p string) bool {
	for _, c := range p {
		if c == '?' {
			return true
		}
	}
	return false
}

// find returns the variable at loc as the API lists it, or nil.
func (b bundle) find(t *testing.T, loc Locator) map[string]any {
	t.Helper()
	code, body := b.api(t, http.MethodGet, "/v10/projects/"+loc.Project+"/env", nil)
	require.Equal(t, http.StatusOK, code, body)
	envs, _ := body["envs"].([]any)
	for _, e := range envs {
		m := e.(map[string]any)
		branch, _ := m["gitBranch"].(string)
		var ts []string
		for _, x := range m["target"].([]any) {
			ts = append(ts, x.(string))
		}
		if m["key"] == loc.Key && branch == loc.GitBranch && overlap(ts, loc.Targets) {
			return m
		}
	}
	return nil
}

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
	_ sinktest.Ticker   = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

// Request names each variable after a fresh application's display name.
func (h *harness) Request(*testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	id := fmt.Sprintf("conf-app-%d", n)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: "tenant-conf", ObjectID: "obj-" + id, AppID: id, DisplayName: fmt.Sprintf("Conformance App %d", n)}
	return sink.BuildRequest{Spec: h.b.spec("{{ .App.DisplayName | envname }}_CLIENT_SECRET", nil), App: app}
}

func (h *harness) loc(t *testing.T, target sink.TargetID) (Locator, bool) {
	loc, err := ParseTarget(target)
	require.NoError(t, err)
	return loc, "https://"+loc.Host == h.b.v.URL
}

// Foreign creates the variable by hand, with no comment.
func (h *harness) Foreign(t *testing.T, target sink.TargetID) {
	loc, _ := h.loc(t, target)
	code, body := h.b.api(t, http.MethodPost, "/v10/projects/"+loc.Project+"/env",
		map[string]any{"key": loc.Key, "value": "someone-elses-value", "type": "encrypted", "target": loc.Targets})
	require.Equal(t, http.StatusCreated, code, body)
}

// Read reads the variable and its decrypted value (GET /v1/…/env/{id}).
func (h *harness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	loc, here := h.loc(t, target)
	if !here {
		return sinktest.Held{}
	}
	e := h.b.find(t, loc)
	if e == nil {
		return sinktest.Held{}
	}
	code, full := h.b.api(t, http.MethodGet, "/v1/projects/"+loc.Project+"/env/"+e["id"].(string), nil)
	require.Equal(t, http.StatusOK, code, full)
	val, _ := full["value"].(string)
	return sinktest.Held{Exists: true, Version: strconv.FormatInt(int64(e["updatedAt"].(float64)), 10), Secret: secret.New(val)}
}

// Denied uses a valid token of a user who is not a member of the team.
func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[KeyToken] = map[string]any{"env": "VERCEL_DENIED_TOKEN"}
	return req
}

// Unreachable points api_url at a loopback port nothing listens on.
func (h *harness) Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[KeyAPIURL] = "https://" + addr
	return req
}

// Tamper edits the value by hand in place, leaving rotor's comment.
func (h *harness) Tamper(t *testing.T, target sink.TargetID) {
	loc, _ := h.loc(t, target)
	e := h.b.find(t, loc)
	require.NotNil(t, e)
	code, body := h.b.api(t, http.MethodPatch, "/v9/projects/"+loc.Project+"/env/"+e["id"].(string), map[string]any{"value": "pasted-by-hand"})
	require.Equal(t, http.StatusOK, code, body)
}

func (h *harness) Tick() { h.b.sim.AdvanceClock(time.Second) }
