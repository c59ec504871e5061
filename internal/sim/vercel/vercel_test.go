package vercel_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sim/vercel"
)

type bundle struct {
	s *simtest.Sim
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{})
	require.NotNil(t, s.Info.Vercel)
	tok, err := os.ReadFile(s.Info.Vercel.TokenFile)
	require.NoError(t, err)
	require.Equal(t, s.Info.Vercel.Token+"\n", string(tok), "the demo token's file")
	return bundle{s: s}
}

// do calls the API as tok in the demo team (team "" for none).
func (b bundle) do(t *testing.T, tok, team, method, path string, body any) (int, map[string]any) {
	t.Helper()
	u := b.s.Info.Vercel.URL + path
	if team != "" {
		sep := "?"
		for _, c := range path {
			if c == '?' {
				sep = "&"
			}
		}
		u += sep + "teamId=" + team
	}
	hdr := map[string]string{}
	if tok != "" {
		hdr["Authorization"] = "Bearer " + tok
	}
	return b.s.Do(t, method, u, body, hdr)
}

func errorOf(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	require.True(t, ok, "Vercel's error shape {error:{code,message}}: %v", body)
	require.NotEmpty(t, e["message"])
	return e
}

func TestAuthAndScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.s.Info.Vercel
	path := "/v9/projects/" + v.Project

	code, body := b.do(t, "", v.TeamID, http.MethodGet, path, nil)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, true, errorOf(t, body)["missingToken"])

	code, body = b.do(t, "not-a-token", v.TeamID, http.MethodGet, path, nil)
	require.Equal(t, http.StatusForbidden, code)
	e := errorOf(t, body)
	require.Equal(t, "forbidden", e["code"])
	require.Equal(t, true, e["invalidToken"])

	code, body = b.do(t, v.DeniedToken, v.TeamID, http.MethodGet, path, nil)
	require.Equal(t, http.StatusForbidden, code, "a valid token of a non-member")
	require.Nil(t, errorOf(t, body)["invalidToken"])

	code, _ = b.do(t, v.Token, v.OtherTeamID, http.MethodGet, path, nil)
	require.Equal(t, http.StatusForbidden, code)

	code, body = b.do(t, v.Token, "", http.MethodGet, path, nil)
	require.Equal(t, http.StatusNotFound, code, "the personal scope has no such project")
	require.Equal(t, "not_found", errorOf(t, body)["code"])

	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, v.ProjectID, body["id"])
	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, "/v9/projects/"+v.ProjectID, nil)
	require.Equal(t, http.StatusOK, code, "by id as by name")
	require.Equal(t, v.Project, body["name"])

	code, body = b.do(t, v.Token, "", http.MethodGet, "/v2/teams", nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, body["teams"], 1)
}

func TestEnvVariables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.s.Info.Vercel
	env := "/v10/projects/" + v.Project + "/env"
	create := func(body any, upsert bool) (int, map[string]any) {
		p := env
		if upsert {
			p += "?upsert=true"
		}
		return b.do(t, v.Token, v.TeamID, http.MethodPost, p, body)
	}

	code, body := create(map[string]any{"key": "API_SECRET", "value": "v1", "type": "encrypted", "target": []string{"production", "preview"}, "comment": "c1"}, false)
	require.Equal(t, http.StatusCreated, code, body)
	created := body["created"].(map[string]any)
	id := created["id"].(string)
	require.NotEqual(t, "v1", created["value"], "an answer shows no plain value")
	firstUpdated := created["updatedAt"].(float64)

	code, body = create(map[string]any{"key": "API_SECRET", "value": "v2", "type": "encrypted", "target": []string{"production"}}, false)
	require.Equal(t, http.StatusForbidden, code, "a taken key and target without upsert")
	require.Equal(t, "ENV_ALREADY_EXISTS", errorOf(t, body)["code"])

	b.s.AdvanceClock(time.Second)
	code, body = create(map[string]any{"key": "API_SECRET", "value": "v2", "type": "encrypted", "target": []string{"production", "preview"}, "comment": "c2"}, true)
	require.Equal(t, http.StatusCreated, code, body)
	require.Equal(t, id, body["created"].(map[string]any)["id"], "upsert updates in place")
	require.Greater(t, body["created"].(map[string]any)["updatedAt"].(float64), firstUpdated)

	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, env, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "pagination")
	envs := body["envs"].([]any)
	require.Len(t, envs, 1)
	require.NotEqual(t, "v2", envs[0].(map[string]any)["value"])
	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, env+"?decrypt=true", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "v2", body["envs"].([]any)[0].(map[string]any)["value"])
	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, "/v1/projects/"+v.Project+"/env/"+id, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "v2", body["value"])
	require.Equal(t, true, body["decrypted"])

	// A sensitive value is never shown again.
	code, body = create(map[string]any{"key": "SENS", "value": "s1", "type": "sensitive", "target": []string{"production"}}, false)
	require.Equal(t, http.StatusCreated, code, body)
	sid := body["created"].(map[string]any)["id"].(string)
	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, "/v1/projects/"+v.Project+"/env/"+sid, nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, "value")
	require.Equal(t, false, body["decrypted"])
	code, body = b.do(t, v.Token, v.TeamID, http.MethodPatch, "/v9/projects/"+v.Project+"/env/"+sid, map[string]any{"type": "encrypted"})
	require.Equal(t, http.StatusBadRequest, code, "sensitive stays sensitive")
	errorOf(t, body)

	for name, bad := range map[string]map[string]any{
		"sensitive in development": {"key": "S2", "value": "x", "type": "sensitive", "target": []string{"development"}},
		"branch on production":     {"key": "B", "value": "x", "type": "encrypted", "target": []string{"production"}, "gitBranch": "main"},
		"bad key":                  {"key": "1BAD", "value": "x", "type": "encrypted", "target": []string{"production"}},
		"no target":                {"key": "NT", "value": "x", "type": "encrypted", "target": []string{}},
		"bad type":                 {"key": "BT", "value": "x", "type": "nope", "target": []string{"production"}},
	} {
		code, body := create(bad, true)
		require.Equal(t, http.StatusBadRequest, code, name)
		errorOf(t, body)
	}

	// Consumers: every target of a written variable.
	seen := map[string]bool{}
	for _, c := range b.s.Server.Consumers() {
		if c.Service == "vercel" {
			seen[c.Target+"#"+c.Field] = true
		}
	}
	require.True(t, seen["rotor-demo/storefront/API_SECRET#production"])
	require.True(t, seen["rotor-demo/storefront/API_SECRET#preview"])
	require.True(t, seen["rotor-demo/storefront/SENS#production"])
}

func TestRedeploy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.s.Info.Vercel
	code, body := b.do(t, v.Token, v.TeamID, http.MethodGet, "/v6/deployments?projectId="+v.ProjectID+"&target=production", nil)
	require.Equal(t, http.StatusOK, code)
	ds := body["deployments"].([]any)
	require.Len(t, ds, 1, "the demo seeds one production deployment")
	seed := ds[0].(map[string]any)
	require.Equal(t, "READY", seed["readyState"])

	code, _ = b.do(t, v.Token, v.TeamID, http.MethodPost, "/v10/projects/"+v.Project+"/env", map[string]any{"key": "K", "value": "built-with", "type": "encrypted", "target": []string{"production"}})
	require.Equal(t, http.StatusCreated, code)
	code, body = b.do(t, v.Token, v.TeamID, http.MethodPost, "/v13/deployments", map[string]any{"name": v.Project, "deploymentId": seed["uid"], "target": "production", "meta": map[string]string{"by": "test"}})
	require.Equal(t, http.StatusOK, code, body)
	id := body["id"].(string)
	require.Equal(t, "BUILDING", body["readyState"])
	b.s.AdvanceClock(vercel.BuildTime)
	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, "/v13/deployments/"+id, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "READY", body["readyState"])
	require.Equal(t, "test", body["meta"].(map[string]any)["by"])

	code, body = b.do(t, v.Token, v.TeamID, http.MethodGet, "/v6/deployments?projectId="+v.Project+"&target=production", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, id, body["deployments"].([]any)[0].(map[string]any)["uid"], "newest first")

	var found bool
	for _, c := range b.s.Server.Consumers() {
		found = found || (c.Service == "vercel" && c.Target == "rotor-demo/storefront/deployment" && c.Field == "K")
	}
	require.True(t, found, "the deployment's build read K")

	code, body = b.do(t, v.Token, v.TeamID, http.MethodPost, "/v13/deployments", map[string]any{"name": v.Project})
	require.Equal(t, http.StatusBadRequest, code, "only redeploys are simulated")
	errorOf(t, body)
	code, _ = b.do(t, v.DeniedToken, v.TeamID, http.MethodPost, "/v13/deployments", map[string]any{"name": v.Project, "deploymentId": seed["uid"]})
	require.Equal(t, http.StatusForbidden, code)
}
