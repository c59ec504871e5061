package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type batchIn struct {
	Requests []batchItemJSON `json:"requests"`
}

func TestBatchValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	base := func() []BatchRequest {
		return []BatchRequest{{ID: "1", Method: "GET", URL: "/applications/a"}, {ID: "2", Method: "GET", URL: "/applications/b"}}
	}
	tests := []struct {
		name  string
		tweak func([]BatchRequest) []BatchRequest
		want  string
	}{
		{"empty", func([]BatchRequest) []BatchRequest { return nil }, "at least one"},
		{"too many", func(r []BatchRequest) []BatchRequest {
			for i := 3; i <= 21; i++ {
				r = append(r, BatchRequest{ID: fmt.Sprint(i), URL: "/applications"})
			}
			return r
		}, "at most 20"},
		{"duplicate id", func(r []BatchRequest) []BatchRequest { r[1].ID = "1"; return r }, "used twice"},
		{"missing id", func(r []BatchRequest) []BatchRequest { r[0].ID = ""; return r }, "no id"},
		{"absolute foreign url", func(r []BatchRequest) []BatchRequest { r[0].URL = "https://evil.example/x"; return r }, "relative"},
		{"unknown dependency", func(r []BatchRequest) []BatchRequest { r[1].DependsOn = []string{"9"}; return r }, "unknown request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.client.Batch(t.Context(), tc.tweak(base()))
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.Zero(t, f.client.Requests(), "invalid batches never reach Graph")
}

func TestBatchRetriesThrottledItems(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var mu sync.Mutex
	var rounds [][]batchItemJSON
	f.mux.HandleFunc("POST /v1.0/$batch", func(w http.ResponseWriter, r *http.Request) {
		var in batchIn
		require.NoError(t, json.NewDecoder(r.Body).Decode(&in))
		mu.Lock()
		rounds = append(rounds, in.Requests)
		round := len(rounds)
		mu.Unlock()
		var out []map[string]any
		// answer in reverse order: Graph's order is arbitrary
		for i := len(in.Requests) - 1; i >= 0; i-- {
			it := in.Requests[i]
			switch {
			case it.ID == "throttled" && round == 1:
				out = append(out, map[string]any{"id": it.ID, "status": 429, "headers": map[string]string{"Retry-After": "1"},
					"body": map[string]any{"error": map[string]string{"code": "TooManyRequests", "message": "slow"}}})
			case it.ID == "dependent" && round == 1:
				out = append(out, map[string]any{"id": it.ID, "status": 424, "body": map[string]any{"error": map[string]string{"code": "FailedDependency"}}})
			case it.ID == "missing":
				out = append(out, map[string]any{"id": it.ID, "status": 404, "body": map[string]any{"error": map[string]string{"code": CodeNotFound, "message": "gone"}}})
			default:
				out = append(out, map[string]any{"id": it.ID, "status": 200, "headers": map[string]string{"Content-Type": "application/json"},
					"body": map[string]string{"id": it.URL}})
			}
		}
		writeJSON(w, 200, map[string]any{"responses": out})
	})

	start := time.Now()
	res, err := f.client.Batch(t.Context(), []BatchRequest{
		{ID: "ok", Method: "get", URL: f.base + "/applications/a"},
		{ID: "throttled", Method: "POST", URL: "/applications/b/addPassword", Body: map[string]any{"passwordCredential": map[string]string{"displayName": "x"}}},
		{ID: "dependent", Method: "GET", URL: "applications/c", DependsOn: []string{"throttled"}},
		{ID: "missing", Method: "GET", URL: "/applications/d"},
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "waited for the item's Retry-After")

	require.Len(t, rounds, 2)
	first := rounds[0]
	require.Equal(t, "GET", first[0].Method)
	require.Equal(t, "/applications/a", first[0].URL, "absolute URLs are made relative")
	require.Equal(t, "/applications/c", first[2].URL)
	require.Equal(t, "application/json", first[1].Headers["Content-Type"], "bodies need a content type")
	var second []string
	for _, it := range rounds[1] {
		second = append(second, it.ID)
	}
	require.Equal(t, []string{"throttled", "dependent"}, second, "only throttled items and their dependents are resent")
	require.Equal(t, []string{"throttled"}, rounds[1][1].DependsOn)

	require.Equal(t, []string{"ok", "throttled", "dependent", "missing"}, []string{res[0].ID, res[1].ID, res[2].ID, res[3].ID})
	require.Equal(t, 200, res[1].Status)
	require.Equal(t, 200, res[2].Status)
	require.NoError(t, res[0].Err())
	require.True(t, IsNotFound(res[3].Err()))
	require.JSONEq(t, `{"id":"/applications/a"}`, string(res[0].Body))
}

func TestBatchGivesUpOnLongRetryAfter(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.client.batchItemMaxDelay = 2 * time.Second
	var calls int
	f.mux.HandleFunc("POST /v1.0/$batch", func(w http.ResponseWriter, r *http.Request) {
		calls++
		writeJSON(w, 200, map[string]any{"responses": []map[string]any{
			{"id": "1", "status": 429, "headers": map[string]string{"Retry-After": "300"}},
		}})
	})
	res, err := f.client.Batch(t.Context(), []BatchRequest{{ID: "1", Method: "GET", URL: "/applications"}})
	require.NoError(t, err)
	require.Equal(t, 1, calls)
	require.True(t, IsThrottled(res[0].Err()))
	ge, _ := asError(res[0].Err())
	require.Equal(t, 300*time.Second, ge.RetryAfter)
}

func TestBatchRetryIsBounded(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.client.batchItemRetries = 2
	var calls int
	f.mux.HandleFunc("POST /v1.0/$batch", func(w http.ResponseWriter, r *http.Request) {
		calls++
		writeJSON(w, 200, map[string]any{"responses": []map[string]any{
			{"id": "1", "status": 429, "headers": map[string]string{"Retry-After": "0.01"}},
		}})
	})
	res, err := f.client.Batch(t.Context(), []BatchRequest{{ID: "1", URL: "/applications"}})
	require.NoError(t, err)
	require.Equal(t, 3, calls)
	require.Equal(t, 429, res[0].Status)
}
