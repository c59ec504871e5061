package graph_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These pin what msgraph-sdk-go (kiota) sends, found by the interop test in
// interop/msgraph: every request body gzipped by kiota's CompressionHandler,
// and type casts under the "graph." namespace alias.

func TestGraphAcceptsGzipRequestBodies(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	app := g.ownedApp(t)
	end := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)
	plain, err := json.Marshal(map[string]any{"passwordCredential": map[string]any{"displayName": "gz", "endDateTime": end.Format(time.RFC3339)}})
	require.NoError(t, err)

	post := func(body []byte, encoding string) (int, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.Info.GraphURL+"/applications/"+app.ObjectID+"/addPassword", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+g.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", encoding)
		resp, err := g.Client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, raw
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	status, raw := post(gz.Bytes(), "gzip")
	require.Equal(t, http.StatusOK, status, "body: %s", raw)
	require.Contains(t, string(raw), `"secretText"`)

	// An encoding Graph does not take is a 415, on which kiota resends plain.
	status, raw = post(plain, "br")
	require.Equal(t, http.StatusUnsupportedMediaType, status, "body: %s", raw)

	status, raw = post([]byte("not gzip"), "gzip")
	require.Equal(t, http.StatusBadRequest, status, "body: %s", raw)
}

func TestGraphOwnedObjectsCastUnderGraphAlias(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	ids := func(path string) map[string]bool {
		r := g.call(t, g.token, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.raw)
		out := map[string]bool{}
		for _, v := range values(t, r) {
			out[v["id"].(string)] = true
		}
		return out
	}
	base := "/servicePrincipals/" + g.tn.Rotation.ObjectID + "/ownedObjects"
	all := ids(base + "?$top=999")
	require.NotEmpty(t, all)
	require.Equal(t, all, ids(base+"/graph.application?$top=999"))
	require.Equal(t, all, ids(base+"/microsoft.graph.application?$top=999"))
}
