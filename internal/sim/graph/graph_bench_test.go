package graph_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// BenchmarkGraphListDeepPage fetches one page of 999 applications from the
// middle of a 100,000-app tenant. Its cost must not depend on how deep the
// page is (the $skiptoken resumes at an index, not by a scan).
//
//	go test ./internal/sim/graph/ -run '^$' -bench GraphListDeepPage -benchtime 50x
func BenchmarkGraphListDeepPage(b *testing.B) {
	s := simtest.Start(b, simtest.Options{Seed: "apps=100000,tenants=1,expiring=720h"})
	srv, info, hc := s.Server, s.Info, s.HTTP
	tn := info.Tenants[0]
	tok, err := srv.MintToken(tn.ID, tn.Rotation.ClientID, sim.GraphResource)
	require.NoError(b, err)

	get := func(u string) map[string]any {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, u, nil)
		require.NoError(b, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		require.NoError(b, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, resp.StatusCode, "%s", raw)
		var m map[string]any
		require.NoError(b, json.Unmarshal(raw, &m))
		return m
	}
	next := info.GraphURL + "/applications?$top=999&$select=id,appId,displayName,passwordCredentials"
	for range 50 {
		next = get(next)["@odata.nextLink"].(string)
	}
	b.ResetTimer()
	for b.Loop() {
		require.Len(b, get(next)["value"], 999)
	}
}
