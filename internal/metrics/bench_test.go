package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// BenchmarkInventoryRead is one reading of the expiry gauges over 10,000
// applications with two credentials each, seen by one connection: what a
// scrape costs at most once per 30 s.
//
//	go test -run '^$' -bench InventoryRead -benchtime 5x ./internal/metrics/
func BenchmarkInventoryRead(b *testing.B) {
	bd := setup(b)
	const n, page = 10_000, 1000
	for i := 0; i < n; i += page {
		apps := make([]domain.Application, 0, page)
		for j := i; j < i+page; j++ {
			apps = append(apps, app(fmt.Sprintf("app-%06d", j), true, time.Duration(j%120)*day, 200*day))
		}
		bd.sync(b, "main", apps...)
	}
	c := newInventoryCollector(bd.store, bd.clock, 30*time.Second, nil)
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.read(bd.ctx, t0); err != nil {
			b.Fatal(err)
		}
	}
}
