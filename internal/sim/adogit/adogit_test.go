package adogit_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/adogit"
	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

type bundle struct {
	s    *simtest.Sim
	repo string // the demo repository's API base
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h"})
	info := s.Info.AzureDevOpsGit
	require.NotNil(t, info)
	require.Equal(t, adogit.DemoPath, info.Path)
	require.True(t, strings.HasPrefix(info.AgeRecipient, "age1"))
	return bundle{s: s, repo: info.URL + "/" + info.Project + "/_apis/git/repositories/" + info.Repository}
}

// call sends a request with auth (a func setting the header) and returns
// the status, headers and body.
func (b bundle) call(t *testing.T, method, u string, body any, auth func(*http.Request)) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	auth(req)
	resp, err := b.s.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, out
}

func (b bundle) pat(r *http.Request) { r.SetBasicAuth("", b.s.Info.AzureDevOpsGit.PAT) }

func TestAuthLikeAzureDevOps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	refs := b.repo + "/refs?filter=heads/main&api-version=7.1"

	st, _, _ := b.call(t, http.MethodGet, refs, nil, b.pat)
	require.Equal(t, http.StatusOK, st)

	st, hdr, body := b.call(t, http.MethodGet, refs, nil, func(r *http.Request) { r.SetBasicAuth("", "wrong") })
	require.Equal(t, http.StatusNonAuthoritativeInfo, st, "a refused PAT gets the sign-in page, as in Azure DevOps")
	require.Contains(t, hdr.Get("Content-Type"), "text/html")
	require.Contains(t, string(body), "Sign In")

	st, _, body = b.call(t, http.MethodGet, refs, nil, func(*http.Request) {})
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, string(body), "TF400813")

	tok := b.s.Info.Tenants[0]
	cred := b.s.RotationCredential(t, tok.ID)
	at, err := cred.GetToken(t.Context(), policyScope())
	require.NoError(t, err, "Entra issues tokens for Azure DevOps")
	st, _, _ = b.call(t, http.MethodGet, refs, nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+at.Token) })
	require.Equal(t, http.StatusOK, st)
}

func TestPushesCompareAndSet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var refs struct {
		Value []struct{ Name, ObjectID string }
	}
	st, _, body := b.call(t, http.MethodGet, b.repo+"/refs?filter=heads/ma&api-version=7.1", nil, b.pat)
	require.Equal(t, http.StatusOK, st)
	require.NoError(t, json.Unmarshal(body, &refs))
	require.Len(t, refs.Value, 1, "the filter is a prefix")
	tip := refs.Value[0].ObjectID

	q := url.Values{"path": {adogit.DemoPath}, "includeContent": {"true"}, "versionDescriptor.version": {"main"},
		"versionDescriptor.versionType": {"branch"}, "api-version": {"7.1"}}
	var it struct{ ObjectID, CommitID, Content string }
	st, _, body = b.call(t, http.MethodGet, b.repo+"/items?"+q.Encode(), nil, b.pat)
	require.Equal(t, http.StatusOK, st)
	require.NoError(t, json.Unmarshal(body, &it))
	require.Equal(t, adogit.DemoValues, it.Content)
	require.Equal(t, adogit.BlobID([]byte(adogit.DemoValues)), it.ObjectID)
	require.Equal(t, tip, it.CommitID)

	push := func(old string) (int, []byte) {
		st, _, body := b.call(t, http.MethodPost, b.repo+"/pushes?api-version=7.1", map[string]any{
			"refUpdates": []map[string]string{{"name": "refs/heads/main", "oldObjectId": old}},
			"commits": []map[string]any{{"comment": "edit", "changes": []map[string]any{{
				"changeType": "edit", "item": map[string]string{"path": adogit.DemoPath},
				"newContent": map[string]string{"content": it.Content + "# more\n", "contentType": "rawtext"}}}}},
		}, b.pat)
		return st, body
	}
	st, body = push(tip)
	require.Equal(t, http.StatusCreated, st, "%s", body)
	st, body = push(tip)
	require.Equal(t, http.StatusConflict, st, "a stale oldObjectId is refused")
	var e struct{ Message, TypeKey string }
	require.NoError(t, json.Unmarshal(body, &e))
	require.Equal(t, "GitReferenceStaleException", e.TypeKey)
	require.True(t, strings.HasPrefix(e.Message, "TF401028: The reference 'refs/heads/main' has already been updated by another client"), e.Message)

	q.Set("path", "/nope.yaml")
	st, _, body = b.call(t, http.MethodGet, b.repo+"/items?"+q.Encode(), nil, b.pat)
	require.Equal(t, http.StatusNotFound, st)
	require.Contains(t, string(body), "GitItemNotFoundException")
	st, _, body = b.call(t, http.MethodGet, b.s.Info.AzureDevOpsGit.URL+"/payments/_apis/git/repositories/nope/refs?api-version=7.1", nil, b.pat)
	require.Equal(t, http.StatusNotFound, st)
	require.Contains(t, string(body), "TF401019")
}

func policyScope() policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{core.AzureDevOpsResource + "/.default"}}
}
