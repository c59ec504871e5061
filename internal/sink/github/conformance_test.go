package github

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	gh "github.com/google/go-github/v84/github"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/nacl/box"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// Environment variable names the test's resolver knows.
const (
	envAdmin     = "GH_ADMIN"
	envReadOnly  = "GH_READONLY"
	envThrottled = "GH_THROTTLED"
	envBad       = "GH_BAD"
)

// envResolver resolves {env: NAME} from a map: the tokens sim.json gives.
type envResolver map[string]string

func (r envResolver) Resolve(_ context.Context, ref sink.SecretRef) (secret.Value, error) {
	v, ok := r[ref.Env]
	if !ok {
		return secret.Value{}, fmt.Errorf("%s is not set", ref)
	}
	return secret.New(v), nil
}

type bundle struct {
	sim     *simtest.Sim
	builder sink.Builder
	admin   *gh.Client
	ctx     context.Context
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
	gi := s.Info.GitHub
	require.NotNil(t, gi)
	b, err := Kind{}.NewBuilder(sink.Deps{
		Secrets:    envResolver{envAdmin: gi.Token, envReadOnly: gi.ReadOnlyToken, envThrottled: gi.ThrottledToken, envBad: "ghp_not_a_token"},
		HTTPClient: s.HTTP,
		Clock:      s.Clock,
	})
	require.NoError(t, err)
	admin := gh.NewClient(s.HTTP).WithAuthToken(gi.Token)
	admin.BaseURL, err = url.Parse(gi.URL)
	require.NoError(t, err)
	return bundle{sim: s, builder: b, admin: admin, ctx: context.Background()}
}

// spec is a sink spec of scope on the demo targets.
func (b bundle) spec(scope Scope, name string) domain.SinkSpec {
	gi := b.sim.Info.GitHub
	set := map[string]any{
		KeyScope: string(scope), KeyName: name, KeyToken: map[string]any{"env": envAdmin}, KeyAPIURL: gi.URL,
	}
	switch scope {
	case ScopeOrganization:
		set[KeyOrg] = gi.Org
	case ScopeEnvironment:
		set[KeyOwner], set[KeyRepo], set[KeyEnvironment] = gi.Owner, gi.Repo, gi.Environment
	default:
		set[KeyOwner], set[KeyRepo] = gi.Owner, gi.Repo
	}
	return domain.SinkSpec{Type: Type, Settings: set}
}

// TestConformance runs the sink suite against the simulated GitHub over
// HTTPS, for each scope, with go-github on both sides.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, scope := range []Scope{ScopeRepository, ScopeEnvironment, ScopeOrganization} {
		t.Run(string(scope), func(t *testing.T) {
			t.Parallel()
			sinktest.Run(t, &harness{b: setup(t), scope: scope})
		})
	}
}

type harness struct {
	b     bundle
	scope Scope
	n     atomic.Int64
}

var (
	_ sinktest.Harness  = (*harness)(nil)
	_ sinktest.Ticker   = (*harness)(nil)
	_ sinktest.Tamperer = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

func (h *harness) Request(*testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	id := fmt.Sprintf("conf-app-%d", n)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: "tenant-1", ObjectID: "obj-" + id, AppID: id, DisplayName: fmt.Sprintf("Conformance App %d", n)}
	return sink.BuildRequest{Spec: h.b.spec(h.scope, "{{ .App.DisplayName | slug }}_SECRET"), App: app}
}

// write sets target's value as a person with their own token would.
func (h *harness) write(t *testing.T, target sink.TargetID, value string) {
	t.Helper()
	tg, err := ParseTarget(target)
	require.NoError(t, err)
	ctx, c := h.b.ctx, h.b.admin
	var pk *gh.PublicKey
	var repoID int
	switch tg.Scope {
	case ScopeOrganization:
		pk, _, err = c.Actions.GetOrgPublicKey(ctx, tg.Org)
	case ScopeEnvironment:
		r, _, rerr := c.Repositories.Get(ctx, tg.Owner, tg.Repo)
		require.NoError(t, rerr)
		repoID = int(r.GetID())
		pk, _, err = c.Actions.GetEnvPublicKey(ctx, repoID, tg.Env)
	default:
		pk, _, err = c.Actions.GetRepoPublicKey(ctx, tg.Owner, tg.Repo)
	}
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(pk.GetKey())
	require.NoError(t, err)
	var pub [32]byte
	copy(pub[:], raw)
	sealed, err := box.SealAnonymous(nil, []byte(value), &pub, rand.Reader)
	require.NoError(t, err)
	es := &gh.EncryptedSecret{Name: tg.Name, KeyID: pk.GetKeyID(), EncryptedValue: base64.StdEncoding.EncodeToString(sealed)}
	switch tg.Scope {
	case ScopeOrganization:
		es.Visibility = "all"
		_, err = c.Actions.CreateOrUpdateOrgSecret(ctx, tg.Org, es)
	case ScopeEnvironment:
		_, err = c.Actions.CreateOrUpdateEnvSecret(ctx, repoID, tg.Env, es)
	default:
		_, err = c.Actions.CreateOrUpdateRepoSecret(ctx, tg.Owner, tg.Repo, es)
	}
	require.NoError(t, err)
}

func (h *harness) Foreign(t *testing.T, target sink.TargetID) {
	h.write(t, target, "someone-elses-value")
}

func (h *harness) Tamper(t *testing.T, target sink.TargetID) { h.write(t, target, "pasted-by-hand") }

// Read asks the simulator's control API, which stands for a workflow
// reading the secret (GitHub's API never returns a value).
func (h *harness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	tg, err := ParseTarget(target)
	require.NoError(t, err)
	if tg.APIURL != h.b.sim.Info.GitHub.URL {
		return sinktest.Held{} // the unreachable API: nothing there
	}
	st, body := h.b.sim.Do(t, http.MethodGet, tg.APIURL+"_sim/github/secret?target="+url.QueryEscape(tg.consumer()), nil, h.b.sim.AdminHeader())
	if st == http.StatusNotFound {
		return sinktest.Held{}
	}
	require.Equal(t, http.StatusOK, st, "%v", body)
	return sinktest.Held{Exists: true, Version: body["updated_at"].(string), Secret: secret.New(body["value"].(string))}
}

// Denied uses the read-only token: it sees the repository, not its secrets.
func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[KeyToken] = map[string]any{"env": envReadOnly}
	return req
}

func (h *harness) Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[KeyAPIURL] = "https://" + addr + "/"
	return req
}

// Tick moves the simulated clock past updated_at's whole second.
func (h *harness) Tick() { h.b.sim.AdvanceClock(2 * time.Second) }
