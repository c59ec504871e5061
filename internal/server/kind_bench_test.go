package server

import (
	"runtime"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim"
)

// BenchmarkRotateKind puts one certificate rotation beside one secret
// rotation, in the same run and the same scene: one op is one rotation of
// a fresh application (Engine.Rotate, through retiring: create, Key Vault,
// verify, schedule the retirement) on SQLite against the simulator, one
// at a time, with no injected latency or throttling and no replication
// delay, so what differs is the work each kind costs rotor (and the
// simulator, which shares the process and its allocation counts).
//
// A secret is an addPassword and a client-secret token. A certificate is
// an RSA 2048 key pair and a self-signed certificate made in memory
// (certgen; BenchmarkGenerate in internal/certgen is this floor), a
// guarded keyCredentials update (reads, PATCH, read back: no bootstrap
// certificate, ADR 33), a PEM secret, and a token by client assertion.
// ms/rot-<phase> say where each rotation's time goes (BenchmarkRotate1000's
// phases); the key is made in "create".
//
//	go test -run '^$' -bench BenchmarkRotateKind -benchtime=40x -count=6 ./internal/server/
func BenchmarkRotateKind(b *testing.B) {
	for _, kind := range []string{"secret", "certificate"} {
		b.Run("kind="+kind, func(b *testing.B) { benchRotateKind(b, kind) })
	}
}

func benchRotateKind(b *testing.B, kind string) {
	reqs, phases := newRequestCounter(), newPhaseClock()
	// One application per op, so every rotation is an application's first
	// under the policy, as in a wave; the scene is set-up, not timed.
	env := setupRotateScene(b, rotateScene{apps: b.N, conc: 1, kind: kind, faults: sim.FaultConfig{}}, reqs, phases)
	defer env.close()
	ctx, org := b.Context(), env.srv.Config().Organization
	pol := env.srv.PolicyFor(env.apps[0])
	if string(pol.Kind) != kind {
		b.Fatalf("policy kind %q, want %q", pol.Kind, kind)
	}
	phases.reset()
	runtime.GC()
	reqs.on.Store(true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		app := env.apps[i]
		start := time.Now()
		run, err := env.srv.Engine().Rotate(ctx, org, app, *env.srv.PolicyFor(app), domain.TriggerManual)
		if err != nil {
			b.Fatalf("%s: %v", app.DisplayName, err)
		}
		if run.State != domain.RunRetiring {
			b.Fatalf("%s: run %s is %s: %s", app.DisplayName, run.ID, run.State, run.Error)
		}
		phases.finish(run.ID, start)
	}
	b.StopTimer()
	reqs.on.Store(false)
	b.ReportMetric(reqs.perRotation(float64(b.N)), "requests/rot")
	for _, p := range phases.means() {
		b.ReportMetric(p.ms, "ms/rot-"+p.name)
	}
	b.Logf("kind=%s: %d rotations; requests per rotation:\n%s", kind, b.N, reqs.breakdown(float64(b.N)))
}
