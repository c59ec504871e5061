package graph_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// BenchmarkListApplications100k lists a 100,000-app tenant the way inventory
// does ($top=999 and a $select) against the simulator with 20 ms of latency
// per request, and reports how many requests a full listing takes against
// the ideal ceil(N/999): paging must not cost more round trips than Graph
// needs (ratio 1.00 means no retries and no short pages).
func BenchmarkListApplications100k(b *testing.B) {
	e := setupSim(b, "tenant1", func(o *simtest.Options) {
		o.Seed = "apps=100000,tenants=1,expiring=24h"
		o.Faults = sim.FaultConfig{Latency: 20 * time.Millisecond}
	})
	opts := graph.ListOptions{Top: 999, Select: []string{"id", "appId", "displayName", "passwordCredentials", "keyCredentials"}}
	ctx := b.Context()
	var apps, requests, pages int64
	b.ReportAllocs()
	for b.Loop() {
		p := e.client.ListApplications(opts)
		n := 0
		for _, err := range p.All(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		apps += int64(n)
		requests += p.Requests()
		pages += int64(p.PageCount())
	}
	perOp := float64(apps) / float64(b.N)
	require.GreaterOrEqual(b, perOp, 100000.0)
	ideal := math.Ceil(perOp / 999)
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(pages)/float64(b.N), "pages/op")
	b.ReportMetric(float64(requests)/float64(b.N)/ideal, "ratio-to-ideal")
	b.ReportMetric(perOp, "apps/op")
}
