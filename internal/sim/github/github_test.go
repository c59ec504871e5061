package github_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	gh "github.com/google/go-github/v84/github"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/nacl/box"

	"github.com/rotor-dev/rotor/internal/sim/core"
	simgithub "github.com/rotor-dev/rotor/internal/sim/github"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

type bundle struct {
	sim   *simtest.Sim
	admin *gh.Client
	read  *gh.Client
	ctx   context.Context
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
	require.NotNil(t, s.Info.GitHub, "sim.json describes the GitHub API")
	tok, err := os.ReadFile(s.Info.GitHub.TokenFile)
	require.NoError(t, err)
	require.Equal(t, s.Info.GitHub.Token+"\n", string(tok), "the token file holds the demo token")
	return bundle{sim: s, admin: client(t, s, s.Info.GitHub.Token), read: client(t, s, s.Info.GitHub.ReadOnlyToken), ctx: context.Background()}
}

// client is google/go-github, the client rotor's sink uses, on the simulator.
func client(t *testing.T, s *simtest.Sim, token string) *gh.Client {
	t.Helper()
	c := gh.NewClient(s.HTTP).WithAuthToken(token)
	u, err := url.Parse(s.Info.GitHub.URL)
	require.NoError(t, err)
	c.BaseURL = u
	return c
}

func seal(t *testing.T, pk *gh.PublicKey, value string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(pk.GetKey())
	require.NoError(t, err)
	require.Len(t, raw, 32)
	var pub [32]byte
	copy(pub[:], raw)
	out, err := box.SealAnonymous(nil, []byte(value), &pub, rand.Reader)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(out)
}

// held reads a secret's value through the control API.
func held(t *testing.T, s *simtest.Sim, target string) (string, int) {
	t.Helper()
	st, body := s.Do(t, http.MethodGet, s.Info.GitHub.URL+"_sim/github/secret?target="+url.QueryEscape(target), nil, s.AdminHeader())
	v, _ := body["value"].(string)
	return v, st
}

func consumer(t *testing.T, s *simtest.Sim, target string) (core.Consumer, bool) {
	t.Helper()
	for _, c := range s.Server.Consumers() {
		if c.Service == simgithub.ServiceName && c.Target == target {
			return c, true
		}
	}
	return core.Consumer{}, false
}

func TestRepoSecretSealedRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gi := b.sim.Info.GitHub
	pk, _, err := b.admin.Actions.GetRepoPublicKey(b.ctx, gi.Owner, gi.Repo)
	require.NoError(t, err)
	require.NotEmpty(t, pk.GetKeyID())

	resp, err := b.admin.Actions.CreateOrUpdateRepoSecret(b.ctx, gi.Owner, gi.Repo, &gh.EncryptedSecret{
		Name: "app_secret", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "first-value")})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "a new secret is 201")
	v, st := held(t, b.sim, "contoso/storefront/APP_SECRET")
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "first-value", v, "the simulator opened the sealed box; names are upper-cased")
	_, ok := consumer(t, b.sim, "contoso/storefront/APP_SECRET")
	require.True(t, ok, "the write is in the consumer list")

	meta, _, err := b.admin.Actions.GetRepoSecret(b.ctx, gi.Owner, gi.Repo, "APP_SECRET")
	require.NoError(t, err)
	require.Equal(t, "APP_SECRET", meta.Name)
	first := meta.UpdatedAt

	b.sim.AdvanceClock(2 * time.Second)
	resp, err = b.admin.Actions.CreateOrUpdateRepoSecret(b.ctx, gi.Owner, gi.Repo, &gh.EncryptedSecret{
		Name: "APP_SECRET", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "second-value")})
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "an update is 204")
	meta, _, err = b.admin.Actions.GetRepoSecret(b.ctx, gi.Owner, gi.Repo, "APP_SECRET")
	require.NoError(t, err)
	require.True(t, meta.UpdatedAt.After(first.Time), "updated_at moves with a write")
	require.Equal(t, first.Time, meta.CreatedAt.Time, "created_at stays")
	v, _ = held(t, b.sim, "contoso/storefront/APP_SECRET")
	require.Equal(t, "second-value", v)

	list, _, err := b.admin.Actions.ListRepoSecrets(b.ctx, gi.Owner, gi.Repo, nil)
	require.NoError(t, err)
	require.Equal(t, 2, list.TotalCount, "the seeded foreign secret and ours")
}

func TestPutRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gi := b.sim.Info.GitHub
	pk, _, err := b.admin.Actions.GetRepoPublicKey(b.ctx, gi.Owner, gi.Repo)
	require.NoError(t, err)
	other, _, err := b.admin.Actions.GetRepoPublicKey(b.ctx, gi.Owner, simgithub.DemoOtherRepo)
	require.NoError(t, err)
	require.NotEqual(t, pk.GetKeyID(), other.GetKeyID(), "every repository has its own key")

	for name, es := range map[string]*gh.EncryptedSecret{
		"bad key id":            {Name: "X1", KeyID: "123", EncryptedValue: seal(t, pk, "v")},
		"sealed to another key": {Name: "X2", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, other, "v")},
		"not base64":            {Name: "X3", KeyID: pk.GetKeyID(), EncryptedValue: "%%%"},
		"GITHUB_ prefix":        {Name: "GITHUB_X", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "v")},
		"bad name":              {Name: "1X", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "v")},
	} {
		_, err := b.admin.Actions.CreateOrUpdateRepoSecret(b.ctx, gi.Owner, gi.Repo, es)
		var er *gh.ErrorResponse
		require.ErrorAs(t, err, &er, name)
		require.Equal(t, http.StatusUnprocessableEntity, er.Response.StatusCode, name)
	}
	list, _, err := b.admin.Actions.ListRepoSecrets(b.ctx, gi.Owner, gi.Repo, nil)
	require.NoError(t, err)
	require.Equal(t, 1, list.TotalCount, "nothing refused was stored")
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gi := b.sim.Info.GitHub

	// The read-only token sees the repository, not its secrets.
	repo, _, err := b.read.Repositories.Get(b.ctx, gi.Owner, gi.Repo)
	require.NoError(t, err)
	require.True(t, repo.GetPrivate())
	_, _, err = b.read.Actions.GetRepoPublicKey(b.ctx, gi.Owner, gi.Repo)
	var er *gh.ErrorResponse
	require.ErrorAs(t, err, &er)
	require.Equal(t, http.StatusForbidden, er.Response.StatusCode)
	require.Equal(t, "Resource not accessible by personal access token", er.Message)

	st, _ := b.sim.Do(t, http.MethodGet, gi.URL+"repos/contoso/storefront", nil,
		map[string]string{"Authorization": "Bearer " + gi.Token, "X-GitHub-Api-Version": "1999-01-01"})
	require.Equal(t, http.StatusBadRequest, st, "an unknown API version is refused")
	st, _ = b.sim.Do(t, http.MethodGet, gi.URL+"repos/contoso/storefront", nil, nil)
	require.Equal(t, http.StatusUnauthorized, st, "no token: Requires authentication")

	bad := client(t, b.sim, "ghp_wrong")
	_, _, err = bad.Repositories.Get(b.ctx, gi.Owner, gi.Repo)
	require.ErrorAs(t, err, &er)
	require.Equal(t, http.StatusUnauthorized, er.Response.StatusCode)
	require.Equal(t, "Bad credentials", er.Message)

	_, _, err = b.admin.Actions.GetRepoPublicKey(b.ctx, gi.Owner, "no-such-repo")
	require.ErrorAs(t, err, &er)
	require.Equal(t, http.StatusNotFound, er.Response.StatusCode)

	// The throttled token meets the secondary rate limit, which go-github
	// recognises by its documentation_url, with Retry-After.
	_, _, err = client(t, b.sim, gi.ThrottledToken).Actions.GetRepoPublicKey(b.ctx, gi.Owner, gi.Repo)
	var abuse *gh.AbuseRateLimitError
	require.ErrorAs(t, err, &abuse)
	require.Equal(t, simgithub.RetryAfterSeconds*time.Second, abuse.GetRetryAfter())
}

func TestEnvironmentSecretsBothPaths(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gi := b.sim.Info.GitHub
	repo, _, err := b.admin.Repositories.Get(b.ctx, gi.Owner, gi.Repo)
	require.NoError(t, err)
	envs, _, err := b.admin.Repositories.ListEnvironments(b.ctx, gi.Owner, gi.Repo, nil)
	require.NoError(t, err)
	require.Equal(t, 2, envs.GetTotalCount())

	// go-github uses /repositories/{id}/environments/…
	pk, _, err := b.admin.Actions.GetEnvPublicKey(b.ctx, int(repo.GetID()), gi.Environment)
	require.NoError(t, err)
	resp, err := b.admin.Actions.CreateOrUpdateEnvSecret(b.ctx, int(repo.GetID()), gi.Environment, &gh.EncryptedSecret{
		Name: "ENV_SECRET", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "env-value")})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	v, _ := held(t, b.sim, "contoso/storefront/env/production/ENV_SECRET")
	require.Equal(t, "env-value", v)

	// … and GitHub's current docs /repos/{owner}/{repo}/environments/….
	st, body := b.sim.Do(t, http.MethodGet, gi.URL+"repos/contoso/storefront/environments/production/secrets/ENV_SECRET", nil,
		map[string]string{"Authorization": "Bearer " + gi.Token})
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "ENV_SECRET", body["name"])
	repoPK, _, err := b.admin.Actions.GetRepoPublicKey(b.ctx, gi.Owner, gi.Repo)
	require.NoError(t, err)
	require.NotEqual(t, repoPK.GetKeyID(), pk.GetKeyID(), "an environment has its own key")
}

func TestOrgSecretVisibility(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gi := b.sim.Info.GitHub
	pk, _, err := b.admin.Actions.GetOrgPublicKey(b.ctx, gi.Org)
	require.NoError(t, err)
	_, err = b.admin.Actions.CreateOrUpdateOrgSecret(b.ctx, gi.Org, &gh.EncryptedSecret{
		Name: "ORG_SECRET", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "v")})
	var er *gh.ErrorResponse
	require.ErrorAs(t, err, &er, "visibility is required")
	require.Equal(t, http.StatusUnprocessableEntity, er.Response.StatusCode)

	repo, _, err := b.admin.Repositories.Get(b.ctx, gi.Owner, gi.Repo)
	require.NoError(t, err)
	resp, err := b.admin.Actions.CreateOrUpdateOrgSecret(b.ctx, gi.Org, &gh.EncryptedSecret{
		Name: "ORG_SECRET", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "org-value"),
		Visibility: "selected", SelectedRepositoryIDs: gh.SelectedRepoIDs{repo.GetID()}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	meta, _, err := b.admin.Actions.GetOrgSecret(b.ctx, gi.Org, "ORG_SECRET")
	require.NoError(t, err)
	require.Equal(t, "selected", meta.Visibility)
	require.NotEmpty(t, meta.SelectedRepositoriesURL)
	v, _ := held(t, b.sim, "org/contoso/ORG_SECRET")
	require.Equal(t, "org-value", v)

	_, _, err = b.admin.Actions.GetOrgPublicKey(b.ctx, simgithub.DemoUser)
	require.ErrorAs(t, err, &er, "a user is no organization")
	require.Equal(t, http.StatusNotFound, er.Response.StatusCode)
}

func TestControlNeedsAdminToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st, _ := b.sim.Do(t, http.MethodGet, b.sim.Info.GitHub.URL+"_sim/github/secret?target=contoso/storefront/DEPLOY_KEY", nil,
		map[string]string{"Authorization": "Bearer " + b.sim.Info.GitHub.Token})
	require.Equal(t, http.StatusUnauthorized, st, "a GitHub token cannot read values")
	v, st := held(t, b.sim, "contoso/storefront/"+simgithub.DemoForeignSecret)
	require.Equal(t, http.StatusOK, st)
	require.NotEmpty(t, v)
}
