package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
)

type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestGraphDirectoryChanges runs Graph's answers the simulator does not
// give through the adapter: a soft-deleted application ("changed"), which
// leaves the inventory like a deleted one, and a stored link Graph answers
// with 410 Gone, which is an expired link.
func TestGraphDirectoryChanges(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	base := srv.URL + "/v1.0"
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1.0/applications/delta", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("$deltatoken") {
		case "gone":
			write(w, http.StatusGone, map[string]any{"error": map[string]any{"code": "", "message": "resync required"}})
		default:
			write(w, 200, map[string]any{
				"@odata.deltaLink": base + "/applications/delta?$deltatoken=next",
				"value": []map[string]any{
					{"id": "obj-soft", "@removed": map[string]any{"reason": "changed"}},
					{"id": "obj-hard", "@removed": map[string]any{"reason": "deleted"}},
					{"id": "obj-renamed", "displayName": "renamed"},
				},
			})
		}
	})
	client, err := graph.New(staticToken{}, azure.Endpoints{Cloud: azure.Sim, GraphURL: base, GraphScope: "https://graph.microsoft.com/.default", HTTPClient: srv.Client()})
	require.NoError(t, err)
	dir := inventory.NewGraphDirectory(client, tenant, principal).(inventory.ChangeTracker)

	var got []inventory.Change
	next, err := dir.Changes(t.Context(), base+"/applications/delta?$deltatoken=now", func(p []inventory.Change) error {
		got = append(got, p...)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, base+"/applications/delta?$deltatoken=next", next)
	all := inventory.FieldAppID | inventory.FieldDisplayName | inventory.FieldSignInAudience | inventory.FieldCreatedAt | inventory.FieldSecrets | inventory.FieldCertificates
	require.Equal(t, []inventory.Change{
		{App: domain.Application{TenantID: tenant, ObjectID: "obj-soft"}, Removed: true},
		{App: domain.Application{TenantID: tenant, ObjectID: "obj-hard"}, Removed: true},
		{App: domain.Application{TenantID: tenant, ObjectID: "obj-renamed", DisplayName: "renamed", Credentials: []domain.Credential{}},
			Missing: all &^ inventory.FieldDisplayName},
	}, got)

	_, err = dir.Changes(t.Context(), base+"/applications/delta?$deltatoken=gone", func([]inventory.Change) error { return nil })
	require.ErrorIs(t, err, inventory.ErrLinkExpired)
	_, err = dir.Changes(t.Context(), "https://graph.microsoft.com/v1.0/applications/delta?$deltatoken=x", func([]inventory.Change) error { return nil })
	require.ErrorIs(t, err, inventory.ErrLinkExpired, "a link of another endpoint is started over, never followed")
	require.Equal(t, tenant+"/"+principal, dir.TrackingScope())
}
