package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/api"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
)

// TestEveryRouteIsDocumented holds the mux to the document: every
// pattern registered on the API's mux is an operation of the OpenAPI
// document, except the document itself (and its YAML and 3.0 renderings)
// and the catch-all that answers unknown routes with a problem; and every
// operation of the document is registered. Nothing can be served that
// the document does not describe.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	a := api.New(api.Options{App: (*app.Service)(nil), Auth: &auth.Authenticator{}})
	undocumented := []string{
		"GET " + api.DocumentPath, "GET /api/v1/openapi.yaml", "GET /api/v1/openapi-3.0.json", "GET /api/v1/openapi-3.0.yaml",
		api.Prefix + "/",
	}
	doc := a.OpenAPI()
	var documented []string
	for path, item := range doc.Paths {
		require.True(t, strings.HasPrefix(path, api.Prefix+"/"), path)
		for _, op := range operationsOf(item) {
			documented = append(documented, op.Method+" "+path)
			require.NotEmpty(t, op.OperationID, path)
			require.NotEmpty(t, op.Summary, path)
			require.NotEmpty(t, op.Description, path)
			for code, resp := range op.Responses {
				if code[0] == '4' || code[0] == '5' {
					require.Contains(t, resp.Content, "application/problem+json", "%s %s %s", op.Method, path, code)
				}
			}
			if path == api.LoginConfigPath {
				require.Empty(t, op.Security, "the CLI reads it before it holds a token")
				continue
			}
			require.Contains(t, op.Responses, "401", "%s %s: every route is behind the bearer check", op.Method, path)
		}
	}
	var served []string
	for _, r := range a.Routes() {
		if !slices.Contains(undocumented, r) {
			served = append(served, r)
		}
	}
	require.ElementsMatch(t, documented, served)
	require.Greater(t, len(served), 20)
	require.Contains(t, doc.Components.SecuritySchemes, "bearer")

	// The document served is the one built.
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.DocumentPath, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var served31 map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &served31))
	require.Equal(t, "3.1.0", served31["openapi"])
	require.Len(t, served31["paths"], len(doc.Paths))
}

func operationsOf(p *huma.PathItem) []*huma.Operation {
	var out []*huma.Operation
	for _, op := range []*huma.Operation{p.Get, p.Put, p.Post, p.Delete, p.Options, p.Head, p.Patch, p.Trace} {
		if op != nil {
			out = append(out, op)
		}
	}
	return out
}
