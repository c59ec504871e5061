package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
)

// staticCred is the one hand-written fake here: unit tests exercise Graph
// parsing against an httptest server, not Entra (the simulator tests do).
type staticCred struct{}

func (staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "test-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type fixture struct {
	srv    *httptest.Server
	mux    *http.ServeMux
	client *Client
	base   string // Graph base URL (…/v1.0)
}

func setup(t *testing.T) *fixture {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if _, err := uuid.Parse(r.Header.Get(HeaderClientRequestID)); err != nil {
			http.Error(w, "no client-request-id", http.StatusBadRequest)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ep := azure.Endpoints{
		Cloud:      azure.Sim,
		GraphURL:   srv.URL + "/v1.0",
		GraphScope: "https://graph.microsoft.com/.default",
		HTTPClient: srv.Client(),
	}
	c, err := New(staticCred{}, ep)
	require.NoError(t, err)
	return &fixture{srv: srv, mux: mux, client: c, base: srv.URL + "/v1.0"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("request-id", "req-123")
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]string{"request-id": "req-123", "date": "2025-01-01T00:00:00"},
	}})
}

func TestListApplicationsPages(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const total = 250
	var gotQuery []string
	var mu sync.Mutex
	f.mux.HandleFunc("GET /v1.0/applications", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotQuery = append(gotQuery, r.URL.RawQuery)
		mu.Unlock()
		q := r.URL.Query()
		top, _ := strconv.Atoi(q.Get("$top"))
		skip, _ := strconv.Atoi(q.Get("$skiptoken"))
		var vals []map[string]any
		for i := skip; i < total && i < skip+top; i++ {
			vals = append(vals, map[string]any{
				"id": fmt.Sprintf("oid-%d", i), "appId": fmt.Sprintf("app-%d", i), "displayName": fmt.Sprintf("App %d", i),
				"createdDateTime": "2024-05-01T10:00:00Z",
				"passwordCredentials": []map[string]any{{
					"keyId": "k", "hint": "abc", "displayName": "d", "customKeyIdentifier": nil, "secretText": nil,
					"startDateTime": "2024-05-01T10:00:00Z", "endDateTime": "2025-05-01T10:00:00Z",
				}},
				"keyCredentials": []any{},
			})
		}
		body := map[string]any{"@odata.context": "x", "value": vals}
		if skip+top < total {
			body["@odata.nextLink"] = fmt.Sprintf("%s/applications?$top=%d&$skiptoken=%d&$select=%s", f.base, top, skip+top, q.Get("$select"))
		}
		writeJSON(w, 200, body)
	})

	p := f.client.ListApplications(ListOptions{Top: 100, Select: []string{"id", "appId", "displayName", "passwordCredentials"}})
	var n int
	for p.More() {
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		for _, a := range page {
			require.Equal(t, fmt.Sprintf("oid-%d", n), a.ID)
			require.Len(t, a.PasswordCredentials, 1)
			require.Equal(t, 2025, a.PasswordCredentials[0].EndDateTime.Year())
			require.True(t, a.PasswordCredentials[0].SecretText.IsZero())
			n++
		}
	}
	require.Equal(t, total, n)
	require.Equal(t, 3, p.PageCount())
	require.EqualValues(t, 3, p.Requests())
	require.EqualValues(t, 3, f.client.Requests())
	require.Contains(t, gotQuery[0], "$select=id,appId,displayName,passwordCredentials")
	require.Contains(t, gotQuery[0], "$top=100")
	_, err := p.NextPage(t.Context())
	require.Error(t, err)

	// All over a fresh pager yields the same items.
	var m int
	for a, err := range f.client.ListApplications(ListOptions{Top: 999}).All(t.Context()) {
		require.NoError(t, err)
		require.NotEmpty(t, a.AppID)
		m++
	}
	require.Equal(t, total, m)
}

func TestPagerRefusesForeignNextLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /v1.0/applications", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []any{map[string]string{"id": "1"}}, "@odata.nextLink": "https://evil.example/v1.0/applications?$skiptoken=x"})
	})
	items, err := f.client.ListApplications(ListOptions{}).Collect(t.Context())
	require.ErrorContains(t, err, "refusing to follow")
	require.Len(t, items, 1)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /v1.0/applications/missing", func(w http.ResponseWriter, r *http.Request) {
		graphError(w, 404, CodeNotFound, "Resource 'missing' does not exist")
	})
	f.mux.HandleFunc("POST /v1.0/applications/notmine/addPassword", func(w http.ResponseWriter, r *http.Request) {
		graphError(w, 403, CodeAuthorizationDenied, "Insufficient privileges to complete the operation.")
	})
	f.mux.HandleFunc("POST /v1.0/applications/policy/addPassword", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("request-id", "req-123")
		writeJSON(w, 400, map[string]any{"error": map[string]any{
			"code":    CodePolicyLifetime,
			"message": "Credential lifetime exceeds the max value allowed as per assigned policy 'p'.",
			"details": []map[string]string{{"code": "InvalidKeyEndDate", "target": "EndDate"}},
		}})
	})
	f.mux.HandleFunc("GET /v1.0/applications/throttled", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120") // over MaxRetryDelay: azcore hands it back at once
		w.Header().Set("x-ms-throttle-scope", "Tenant_Application/ReadWrite/t/a")
		graphError(w, 429, "TooManyRequests", "Too many requests")
	})

	ctx := t.Context()
	_, err := f.client.GetApplication(ctx, "missing", nil)
	require.True(t, IsNotFound(err))
	ge, ok := asError(err)
	require.True(t, ok)
	require.Equal(t, "req-123", ge.RequestID)
	require.NotEmpty(t, ge.ClientRequestID)
	require.Contains(t, err.Error(), "404")
	require.Contains(t, err.Error(), CodeNotFound)
	require.Contains(t, err.Error(), "does not exist")
	require.Contains(t, err.Error(), "req-123")

	end := time.Now().Add(24 * time.Hour)
	_, err = f.client.AddPassword(ctx, "notmine", AddPasswordRequest{EndDateTime: end})
	require.True(t, IsForbidden(err))
	require.False(t, IsNotFound(err))

	_, err = f.client.AddPassword(ctx, "policy", AddPasswordRequest{EndDateTime: end})
	require.True(t, IsPolicyViolation(err))
	ge, _ = asError(err)
	require.Equal(t, []ErrorDetail{{Code: "InvalidKeyEndDate", Target: "EndDate"}}, ge.Details)

	_, err = f.client.GetApplication(ctx, "throttled", nil)
	require.True(t, IsThrottled(err))
	ge, _ = asError(err)
	require.Equal(t, 120*time.Second, ge.RetryAfter)
	require.Equal(t, "Tenant_Application/ReadWrite/t/a", ge.ThrottleScope)

	require.False(t, IsNotFound(fmt.Errorf("plain")))
	require.True(t, IsNotFound(fmt.Errorf("wrapped: %w", &Error{StatusCode: 404})))
}

func TestRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var calls atomic.Int32
	var ids sync.Map
	f.mux.HandleFunc("POST /v1.0/applications/app1/addPassword", func(w http.ResponseWriter, r *http.Request) {
		ids.Store(r.Header.Get(HeaderClientRequestID), true)
		b, _ := io.ReadAll(r.Body)
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			graphError(w, 503, "serviceUnavailable", "try later")
			return
		case 2:
			hj, ok := w.(http.Hijacker)
			require.True(t, ok)
			conn, _, err := hj.Hijack()
			require.NoError(t, err)
			conn.Close() // a dropped connection
			return
		case 3:
			w.Header().Set("retry-after-ms", "10")
			graphError(w, 429, "TooManyRequests", "slow down")
			return
		}
		var req struct {
			PasswordCredential map[string]any `json:"passwordCredential"`
		}
		require.NoError(t, json.Unmarshal(b, &req), "body must be resent intact on retries")
		require.Equal(t, "rotor:run-1", req.PasswordCredential["displayName"])
		require.NotEmpty(t, req.PasswordCredential["endDateTime"])
		writeJSON(w, 200, map[string]any{
			"keyId": "new-key", "displayName": "rotor:run-1", "hint": "s3c", "secretText": "s3cr3t-value-xyz",
			"startDateTime": "2025-01-01T00:00:00Z", "endDateTime": "2025-04-01T00:00:00Z", "customKeyIdentifier": nil,
		})
	})
	p, err := f.client.AddPassword(t.Context(), "app1", AddPasswordRequest{
		DisplayName: "rotor:run-1", EndDateTime: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC),
	})
	require.NoError(t, err)
	require.EqualValues(t, 4, calls.Load())
	require.Equal(t, "new-key", p.KeyID)
	require.Equal(t, "s3cr3t-value-xyz", p.SecretText.Reveal())
	n := 0
	ids.Range(func(any, any) bool { n++; return true })
	require.Equal(t, 1, n, "retries of one call share its client-request-id")

	// The secret never comes back out through fmt or JSON.
	require.NotContains(t, fmt.Sprintf("%v %+v %#v", p, *p, p.SecretText), "s3cr3t")
	b, err := json.Marshal(p)
	require.NoError(t, err)
	require.NotContains(t, string(b), "s3cr3t")
	require.NotContains(t, string(b), "secretText")
}

func TestAddPasswordNeedsEndDate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.client.AddPassword(t.Context(), "app1", AddPasswordRequest{DisplayName: "x"})
	require.ErrorContains(t, err, "end date")
	start := time.Now()
	_, err = f.client.AddPassword(t.Context(), "app1", AddPasswordRequest{StartDateTime: start, EndDateTime: start.Add(-time.Hour)})
	require.ErrorContains(t, err, "after its start")
	require.Zero(t, f.client.Requests())
}

func TestRemovePasswordIdempotent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("POST /v1.0/applications/{id}/removePassword", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		if r.PathValue("id") == "gone" {
			graphError(w, 404, CodeNotFound, "nope")
			return
		}
		if r.PathValue("id") == "forbidden" {
			graphError(w, 403, CodeAuthorizationDenied, "nope")
			return
		}
		require.Equal(t, "k1", body["keyId"])
		w.WriteHeader(204)
	})
	require.NoError(t, f.client.RemovePassword(t.Context(), "app", "k1"))
	require.NoError(t, f.client.RemovePassword(t.Context(), "gone", "k1"))
	require.True(t, IsForbidden(f.client.RemovePassword(t.Context(), "forbidden", "k1")))
}

func TestGetApplicationByAppIDAndSP(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /v1.0/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1.0/applications(appId='11111111-2222-3333-4444-555555555555')":
			require.Equal(t, "id,keyCredentials", r.URL.Query().Get("$select"))
			writeJSON(w, 200, map[string]any{"id": "oid", "appId": "11111111-2222-3333-4444-555555555555",
				"keyCredentials": []map[string]any{{"keyId": "kk", "type": "AsymmetricX509Cert", "usage": "Verify", "key": "AQID",
					"customKeyIdentifier": "q83v", "endDateTime": "2030-01-01T00:00:00Z", "startDateTime": nil}}})
		case r.URL.Path == "/v1.0/servicePrincipals":
			require.Equal(t, "appId eq 'abc'", r.URL.Query().Get("$filter"))
			writeJSON(w, 200, map[string]any{"value": []map[string]string{{"id": "sp1", "appId": "abc"}}})
		default:
			graphError(w, 404, CodeNotFound, r.URL.Path)
		}
	})
	a, err := f.client.GetApplicationByAppID(t.Context(), "11111111-2222-3333-4444-555555555555", []string{"id", "keyCredentials"})
	require.NoError(t, err)
	require.Equal(t, "oid", a.ID)
	require.Equal(t, []byte{1, 2, 3}, a.KeyCredentials[0].Key)
	require.True(t, a.KeyCredentials[0].StartDateTime.IsZero())
	sp, err := f.client.GetServicePrincipalByAppID(t.Context(), "abc")
	require.NoError(t, err)
	require.Equal(t, "sp1", sp.ID)
}

func TestOwnedObjectsAndOwners(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /v1.0/servicePrincipals/sp1/ownedObjects", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []map[string]any{
			{"@odata.type": TypeApplication, "id": "a1", "appId": "app1", "displayName": "One",
				"passwordCredentials": []map[string]string{{"keyId": "p1"}}},
			{"@odata.type": TypeServicePrincipal, "id": "s1", "appId": "app1"},
		}})
	})
	f.mux.HandleFunc("GET /v1.0/applications/a1/owners", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []map[string]any{{"@odata.type": TypeServicePrincipal, "id": "sp1"}}})
	})
	objs, err := f.client.ListOwnedObjects("sp1").Collect(t.Context())
	require.NoError(t, err)
	require.Len(t, objs, 2)
	require.NotNil(t, objs[0].Application)
	require.Equal(t, "p1", objs[0].Application.PasswordCredentials[0].KeyID)
	require.Nil(t, objs[1].Application)
	owners, err := f.client.ListOwners(t.Context(), "a1")
	require.NoError(t, err)
	require.Equal(t, []DirectoryObject{{ODataType: TypeServicePrincipal, ID: "sp1"}}, owners)

	_, err = f.client.ListOwnedObjects("").Collect(t.Context())
	require.Error(t, err)
}

func TestKeysAndFederatedCredentials(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("POST /v1.0/applications/a1/addKey", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]json.RawMessage
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		require.JSONEq(t, `{"type":"AsymmetricX509Cert","usage":"Verify","key":"AQID","displayName":"rotor:r"}`, string(body["keyCredential"]))
		require.Equal(t, "null", string(body["passwordCredential"]))
		require.Equal(t, `"proof-jwt"`, string(body["proof"]))
		writeJSON(w, 200, map[string]any{"keyId": "new", "type": "AsymmetricX509Cert"})
	})
	f.mux.HandleFunc("POST /v1.0/applications/a1/removeKey", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		require.Equal(t, map[string]string{"keyId": "old", "proof": "proof-jwt"}, body)
		w.WriteHeader(204)
	})
	f.mux.HandleFunc("PATCH /v1.0/applications/a1", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		require.JSONEq(t, `{"keyCredentials":[{"keyId":"k","type":"AsymmetricX509Cert","usage":"Verify","key":"AQID","endDateTime":"2030-01-01T00:00:00Z"}]}`, string(b))
		w.WriteHeader(204)
	})
	f.mux.HandleFunc("POST /v1.0/applications/a1/federatedIdentityCredentials", func(w http.ResponseWriter, r *http.Request) {
		var fic FederatedIdentityCredential
		require.NoError(t, json.NewDecoder(r.Body).Decode(&fic))
		require.Equal(t, []string{"api://AzureADTokenExchange"}, fic.Audiences)
		fic.ID = "fic1"
		writeJSON(w, 201, fic)
	})
	f.mux.HandleFunc("GET /v1.0/applications/a1/federatedIdentityCredentials", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"value": []map[string]any{{"id": "fic1", "name": "gh", "issuer": "i", "subject": "s", "audiences": []string{"a"}}}})
	})
	ctx := t.Context()
	k, err := f.client.AddKey(ctx, "a1", KeyCredential{Key: []byte{1, 2, 3}, DisplayName: "rotor:r"}, "proof-jwt")
	require.NoError(t, err)
	require.Equal(t, "new", k.KeyID)
	require.NoError(t, f.client.RemoveKey(ctx, "a1", "old", "proof-jwt"))
	require.NoError(t, f.client.UpdateKeyCredentials(ctx, "a1", []KeyCredential{{
		KeyID: "k", Type: "AsymmetricX509Cert", Usage: "Verify", Key: []byte{1, 2, 3}, EndDateTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}}))
	fic, err := f.client.AddFederatedCredential(ctx, "a1", FederatedIdentityCredential{Name: "gh", Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:o/r:ref:refs/heads/main"})
	require.NoError(t, err)
	require.Equal(t, "fic1", fic.ID)
	fics, err := f.client.ListFederatedCredentials(ctx, "a1")
	require.NoError(t, err)
	require.Len(t, fics, 1)
	_, err = f.client.AddFederatedCredential(ctx, "a1", FederatedIdentityCredential{Name: strings.Repeat("x", 121), Issuer: "i", Subject: "s"})
	require.Error(t, err)
}

func TestNewValidatesEndpoints(t *testing.T) {
	t.Parallel()
	_, err := New(staticCred{}, azure.Endpoints{GraphURL: "http://127.0.0.1/v1.0", GraphScope: "s"})
	require.Error(t, err)
	_, err = New(nil, azure.Endpoints{GraphURL: "https://127.0.0.1/v1.0", GraphScope: "s"})
	require.Error(t, err)
	_, err = New(staticCred{}, azure.Endpoints{GraphURL: "https://127.0.0.1/v1.0"})
	require.Error(t, err)
}
