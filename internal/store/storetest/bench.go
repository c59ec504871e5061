package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// BenchApps is the size of the inventory Bench measures against.
const BenchApps = 100_000

// Bench measures the latency of the store operations rotor's planner,
// CLI, API and rotation engine make, against an organization holding
// BenchApps applications (object ids random, as Graph's are; two
// credentials each), so that both stores are measured by the same code:
//
//   - Get/ByObjectID, Get/ByAppID, Get/ByName: `rotor explain APP`;
//   - List/FirstPage: the first 100 applications by name (the UI's list);
//   - List/Due: what the planner reads, applications with a credential
//     ending within 10 days (1 % of them here), manageable only;
//   - Sync/UnchangedPage: one page of 999 applications the store already
//     holds unchanged (a daily full sync's work per page);
//   - Runs/Journal: a run created and moved through planned → created →
//     propagated → verified → retiring, each step fenced by the lease, as
//     the engine journals a rotation (one op = the whole rotation);
//   - Runs/Fence: one FenceRun, the check before every side effect.
//
// newStore returns an empty store; loading the applications is not timed.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	ctx := context.Background()
	s := newStore(b)
	b.Cleanup(func() { _ = s.Close() })
	const org = domain.OrgID("bench")
	require.NoError(b, s.EnsureOrg(ctx, org, "Bench"))
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	apps := make([]domain.Application, BenchApps)
	for i := range apps {
		sum := sha256.Sum256(fmt.Appendf(nil, "app-%d", i))
		oid := hex.EncodeToString(sum[:16])
		oid = oid[:8] + "-" + oid[8:12] + "-4" + oid[13:16] + "-8" + oid[17:20] + "-" + oid[20:32]
		end := t0.Add(time.Duration(30+i%100) * 24 * time.Hour)
		if i%100 == 0 {
			end = t0.Add(5 * 24 * time.Hour) // due
		}
		apps[i] = domain.Application{
			Org: org, TenantID: tenant1, ObjectID: oid, AppID: appID(i),
			DisplayName: fmt.Sprintf("app-%06d", i), SignInAudience: "AzureADMyOrg", CreatedAt: t0.Add(-time.Hour),
			Manageable: true,
			Credentials: []domain.Credential{
				{KeyID: keyID(i, 1), Kind: domain.KindSecret, DisplayName: "rotor:bench", Hint: "abc", Start: t0.Add(-24 * time.Hour), End: end},
				{KeyID: keyID(i, 2), Kind: domain.KindSecret, DisplayName: "ci", Hint: "xyz", Start: t0.Add(-48 * time.Hour), End: end.Add(24 * time.Hour)},
			},
		}
	}
	sync := func(at time.Time, page []domain.Application) int {
		n, err := s.SyncApplications(ctx, store.SyncApplicationsParams{Org: org, Connection: conn1, SyncStarted: at, Applications: page})
		require.NoError(b, err)
		return n
	}
	for i := 0; i < len(apps); i += 4995 {
		sync(t0, apps[i:min(i+4995, len(apps))])
	}

	b.Run("Get/ByObjectID", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, err := s.GetApplication(ctx, org, apps[i%len(apps)].ObjectID)
			require.NoError(b, err)
			i += 7919
		}
	})
	b.Run("Get/ByAppID", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, err := s.GetApplication(ctx, org, apps[i%len(apps)].AppID)
			require.NoError(b, err)
			i += 7919
		}
	})
	b.Run("Get/ByName", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, err := s.GetApplication(ctx, org, apps[i%len(apps)].DisplayName)
			require.NoError(b, err)
			i += 7919
		}
	})
	b.Run("List/FirstPage", func(b *testing.B) {
		for b.Loop() {
			got, err := s.ListApplications(ctx, store.ListApplicationsParams{Org: org, Limit: 100})
			require.NoError(b, err)
			require.Len(b, got, 100)
		}
	})
	b.Run("List/Due", func(b *testing.B) {
		for b.Loop() {
			got, err := s.ListApplications(ctx, store.ListApplicationsParams{Org: org, ManageableOnly: true, ExpiringBefore: t0.Add(10 * 24 * time.Hour)})
			require.NoError(b, err)
			require.Len(b, got, BenchApps/100)
		}
	})
	b.Run("Sync/UnchangedPage", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			from := (i * 999) % (len(apps) - 999)
			require.Zero(b, sync(t0.Add(time.Duration(i)*time.Second), apps[from:from+999]))
		}
	})
	const holder, ttl = "bench-process", time.Hour
	_, err := s.RenewLease(ctx, store.RenewLeaseParams{Holder: holder, Description: "benchmark", TTL: ttl})
	require.NoError(b, err)
	b.Run("Runs/Journal", func(b *testing.B) {
		for b.Loop() {
			// Numbered across -count repetitions, which share the store:
			// an application whose run was journalled keeps it active.
			i := int(benchRuns.Add(1))
			a := &apps[(i-1)%(len(apps)-100)]
			at := t0.Add(time.Duration(i) * time.Minute)
			r := &domain.Run{
				Org: org, ID: fmt.Sprintf("run-%08d", i), Connection: conn1, TenantID: a.TenantID, AppObjectID: a.ObjectID, AppID: a.AppID,
				AppName: a.DisplayName, Policy: "bench", Kind: domain.KindSecret, Trigger: domain.TriggerDue, State: domain.RunPlanned,
				Attempts: 1, CreatedAt: at, UpdatedAt: at, Holder: holder,
			}
			require.NoError(b, s.CreateRun(ctx, r))
			from := domain.RunPlanned
			for _, to := range []domain.RunState{domain.RunCreated, domain.RunPropagated, domain.RunVerified, domain.RunRetiring} {
				_, err := s.FenceRun(ctx, store.FenceRunParams{Org: org, RunID: r.ID, Holder: holder, TTL: ttl})
				require.NoError(b, err)
				require.NoError(b, s.TransitionRun(ctx, store.TransitionRunParams{
					Org: org, RunID: r.ID, Holder: holder, From: []domain.RunState{from}, To: to, Release: to == domain.RunRetiring,
					NewKeyID: "new-key", Event: domain.RunEvent{At: at, Message: "bench"},
				}))
				from = to
			}
		}
	})
	b.Run("Runs/Fence", func(b *testing.B) {
		k := int(benchFences.Add(1))
		a := &apps[len(apps)-k]
		r := &domain.Run{
			Org: org, ID: fmt.Sprintf("run-fenced-%d", k), Connection: conn1, TenantID: a.TenantID, AppObjectID: a.ObjectID, AppID: a.AppID,
			AppName: a.DisplayName, Policy: "bench", Kind: domain.KindSecret, Trigger: domain.TriggerDue, State: domain.RunPlanned,
			Attempts: 1, CreatedAt: t0, UpdatedAt: t0, Holder: holder,
		}
		require.NoError(b, s.CreateRun(ctx, r))
		for b.Loop() {
			_, err := s.FenceRun(ctx, store.FenceRunParams{Org: org, RunID: r.ID, Holder: holder, TTL: ttl})
			require.NoError(b, err)
		}
	})
}

// benchRuns and benchFences number the runs Bench creates, across the
// repetitions of -count, which share one store.
var benchRuns, benchFences atomic.Int64
