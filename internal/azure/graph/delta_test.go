package graph

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApplicationsDeltaPages(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var (
		mu      sync.Mutex
		queries []string
	)
	f.mux.HandleFunc("GET /v1.0/applications/delta", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		switch r.URL.Query().Get("$skiptoken") {
		case "":
			writeJSON(w, 200, map[string]any{
				"@odata.nextLink": f.base + "/applications/delta?$skiptoken=p2",
				"value": []map[string]any{
					// a new application, whole
					{"id": "a1", "appId": "c1", "displayName": "One", "signInAudience": "AzureADMyOrg",
						"createdDateTime": "2024-05-01T10:00:00Z", "passwordCredentials": []any{}, "keyCredentials": []any{}},
					// a changed one: only what changed
					{"id": "a2", "passwordCredentials": []map[string]any{{"keyId": "k2", "hint": "abc",
						"startDateTime": "2024-05-01T10:00:00Z", "endDateTime": "2025-05-01T10:00:00Z"}}},
				},
			})
		default:
			writeJSON(w, 200, map[string]any{
				"@odata.deltaLink": f.base + "/applications/delta?$deltatoken=next",
				"value": []map[string]any{
					{"id": "a3", "@removed": map[string]string{"reason": "changed"}},
					{"id": "a4", "@removed": map[string]string{"reason": "deleted"}},
					{"id": "a5", "displayName": "renamed", "keyCredentials": nil},
				},
			})
		}
	})
	p := f.client.ApplicationsDelta(DeltaOptions{Select: []string{"id", "displayName", "passwordCredentials"}})
	var got []ApplicationChange
	for p.More() {
		require.Empty(t, p.DeltaLink(), "the delta link comes with the last page only")
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		got = append(got, page...)
	}
	require.Equal(t, f.base+"/applications/delta?$deltatoken=next", p.DeltaLink())
	require.Equal(t, 2, p.PageCount())
	mu.Lock()
	require.Equal(t, []string{"$select=id,displayName,passwordCredentials", "$skiptoken=p2"}, queries)
	mu.Unlock()
	require.Len(t, got, 5)

	one := got[0]
	require.Equal(t, "One", *one.DisplayName)
	require.NotNil(t, one.PasswordCredentials)
	require.Empty(t, *one.PasswordCredentials, "present and empty: the application has no secrets")
	require.Equal(t, 2024, one.CreatedDateTime.Year())

	two := got[1]
	require.Nil(t, two.DisplayName, "left out: unchanged")
	require.Nil(t, two.KeyCredentials)
	require.Equal(t, "k2", (*two.PasswordCredentials)[0].KeyID)

	require.Equal(t, RemovedChanged, got[2].Removed)
	require.Equal(t, RemovedDeleted, got[3].Removed)
	require.Empty(t, got[4].Removed)
	require.Nil(t, got[4].KeyCredentials, "null counts as left out")

	// A stored delta link is followed unchanged.
	f.mux.HandleFunc("GET /v1.0/applications/microsoft.graph.delta", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "$deltatoken=xyz", r.URL.RawQuery)
		writeJSON(w, 200, map[string]any{"@odata.deltaLink": f.base + "/applications/microsoft.graph.delta?$deltatoken=xyz2", "value": []any{}})
	})
	p = f.client.ApplicationsDeltaFrom(f.base + "/applications/microsoft.graph.delta?$deltatoken=xyz")
	page, err := p.NextPage(t.Context())
	require.NoError(t, err)
	require.Empty(t, page)
	require.False(t, p.More())
	require.Equal(t, f.base+"/applications/microsoft.graph.delta?$deltatoken=xyz2", p.DeltaLink())
}

func TestApplicationsDeltaLatest(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /v1.0/applications/delta", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "$select=id&$deltatoken=latest", r.URL.RawQuery)
		writeJSON(w, 200, map[string]any{"@odata.deltaLink": f.base + "/applications/delta?$deltatoken=now", "value": []any{}})
	})
	p := f.client.ApplicationsDelta(DeltaOptions{Select: []string{"id"}, Latest: true})
	_, err := p.NextPage(t.Context())
	require.NoError(t, err)
	require.Equal(t, f.base+"/applications/delta?$deltatoken=now", p.DeltaLink())
}

// TestApplicationsDeltaRefusesBadPages: Graph's rules are checked, and a
// link off Graph is never followed (the bearer token would go with it).
func TestApplicationsDeltaRefusesBadPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		page    func(base string) map[string]any
		wantErr string
		notLink bool
	}{
		{
			name: "BothLinks",
			page: func(base string) map[string]any {
				return map[string]any{"@odata.nextLink": base + "/applications/delta?$skiptoken=a", "@odata.deltaLink": base + "/applications/delta?$deltatoken=b", "value": []any{}}
			},
			wantErr: "both @odata.nextLink and @odata.deltaLink",
		},
		{
			name:    "NoLink",
			page:    func(string) map[string]any { return map[string]any{"value": []any{}} },
			wantErr: "neither",
		},
		{
			name: "DeltaLinkToAnotherHost",
			page: func(string) map[string]any {
				return map[string]any{"@odata.deltaLink": "https://evil.example/v1.0/applications/delta?$deltatoken=b", "value": []any{}}
			},
			wantErr: "not https://", notLink: true,
		},
		{
			name: "DeltaLinkWithCredentialsInIt",
			page: func(base string) map[string]any {
				return map[string]any{"@odata.deltaLink": base + "/applications/delta?$deltatoken=b&access_token=x", "value": []any{}}
			},
			wantErr: `query parameter "access_token" is not an OData option`, notLink: true,
		},
		{
			name: "NextLinkToAnotherFunction",
			page: func(base string) map[string]any {
				return map[string]any{"@odata.nextLink": base + "/servicePrincipals/delta?$skiptoken=a", "value": []any{}}
			},
			wantErr: "is not the applications delta function", notLink: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.mux.HandleFunc("GET /v1.0/applications/delta", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, tt.page(f.base))
			})
			p := f.client.ApplicationsDelta(DeltaOptions{})
			_, err := p.NextPage(t.Context())
			require.ErrorContains(t, err, tt.wantErr)
			require.Equal(t, tt.notLink, errors.Is(err, ErrNotDeltaLink))
			require.False(t, p.More())
			require.Empty(t, p.DeltaLink())
		})
	}
}

func TestCheckDeltaLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	u, err := url.Parse(f.base)
	require.NoError(t, err)
	withUser := *u
	withUser.User = url.UserPassword("a", "b")
	for link, ok := range map[string]bool{
		f.base + "/applications/delta?$deltatoken=x":                              true,
		f.base + "/applications/microsoft.graph.delta?$skiptoken=x":               true,
		strings.Replace(f.base, "https://", "http://", 1) + "/applications/delta": false,
		withUser.String() + "/applications/delta?$deltatoken=x":                   false,
		f.base + "/applications?$deltatoken=x":                                    false,
		f.base + "/applications/delta?sig=x":                                      false,
		"::not a url":                                                             false,
	} {
		err := f.client.CheckDeltaLink(link)
		if ok {
			require.NoError(t, err, link)
		} else {
			require.ErrorIs(t, err, ErrNotDeltaLink, link)
		}
	}
	p := f.client.ApplicationsDeltaFrom("https://evil.example/v1.0/applications/delta?$deltatoken=x")
	require.True(t, p.More())
	_, err = p.NextPage(t.Context())
	require.ErrorIs(t, err, ErrNotDeltaLink)
	require.False(t, IsDeltaExpired(err), "a foreign link is the caller's to handle")
}

func TestIsDeltaExpired(t *testing.T) {
	t.Parallel()
	f := setup(t)
	answer := map[string]func(w http.ResponseWriter){
		"expired": func(w http.ResponseWriter) {
			graphError(w, 400, "syncStateNotFound", "The sync state generation is not found.")
		},
		"resync": func(w http.ResponseWriter) { graphError(w, 410, "", "Gone") },
		"skip": func(w http.ResponseWriter) {
			graphError(w, 400, CodeExpiredPageToken, "The specified page token value has expired.")
		},
		"bad":      func(w http.ResponseWriter) { graphError(w, 400, "Request_BadRequest", "Invalid request.") },
		"denied":   func(w http.ResponseWriter) { graphError(w, 403, CodeAuthorizationDenied, "Insufficient privileges.") },
		"notfound": func(w http.ResponseWriter) { graphError(w, 404, CodeNotFound, "Not found.") },
	}
	f.mux.HandleFunc("GET /v1.0/applications/delta", func(w http.ResponseWriter, r *http.Request) {
		answer[r.URL.Query().Get("$deltatoken")](w)
	})
	for tok, want := range map[string]bool{"expired": true, "resync": true, "skip": true, "bad": false, "denied": false, "notfound": false} {
		_, err := f.client.ApplicationsDeltaFrom(f.base + "/applications/delta?$deltatoken=" + tok).NextPage(t.Context())
		require.Error(t, err, tok)
		require.Equal(t, want, IsDeltaExpired(err), "%s: %v", tok, err)
	}
	require.False(t, IsDeltaExpired(errors.New("graph: 400 syncStateNotFound")), "classified by type, never by text")
}

func TestListOwnedDirectoryObjects(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /v1.0/servicePrincipals/sp1/ownedObjects", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "$select=id&$top=999", r.URL.RawQuery)
		writeJSON(w, 200, map[string]any{"value": []map[string]any{
			{"@odata.type": TypeApplication, "id": "a1"},
			{"@odata.type": TypeServicePrincipal, "id": "s1"},
		}})
	})
	objs, err := f.client.ListOwnedDirectoryObjects("sp1", ListOptions{Select: []string{"id"}, Top: 999}).Collect(t.Context())
	require.NoError(t, err)
	require.Equal(t, []DirectoryObject{{ODataType: TypeApplication, ID: "a1"}, {ODataType: TypeServicePrincipal, ID: "s1"}}, objs)
	_, err = f.client.ListOwnedDirectoryObjects("", ListOptions{}).Collect(t.Context())
	require.Error(t, err)
}
