package core

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSeed(t *testing.T) {
	t.Parallel()
	base := SeedSpec{Apps: 50, Tenants: 1, Expiring: time.Hour}
	with := func(f func(*SeedSpec)) SeedSpec { s := base; f(&s); return s }
	cases := []struct {
		spec string
		want SeedSpec
		err  bool
	}{
		{spec: "", want: SeedSpec{Demo: true}},
		{spec: "demo", want: SeedSpec{Demo: true}},
		{spec: "apps=100000", want: with(func(s *SeedSpec) { s.Apps = 100000 })},
		{spec: " apps = 7 , tenants=3,expiring=36h, replication=2s ", want: with(func(s *SeedSpec) {
			s.Apps, s.Tenants, s.Expiring, s.Replication = 7, 3, 36*time.Hour, 2*time.Second
		})},
		{spec: "tenants=2", want: with(func(s *SeedSpec) { s.Tenants = 2 })},
		{spec: "apps=0", want: with(func(s *SeedSpec) { s.Apps = 0 })},
		{spec: "apps=-1", err: true},
		{spec: "apps=2000000", err: true},
		{spec: "tenants=0", err: true},
		{spec: "tenants=101", err: true},
		{spec: "expiring=0s", err: true},
		{spec: "expiring=soon", err: true},
		{spec: "replication=2h", err: true},
		{spec: "apps=1,apps=2", err: true},
		{spec: "colour=blue", err: true},
		{spec: "apps", err: true},
		{spec: "apps=", err: true},
		{spec: "demo,apps=1", err: true},
		{spec: "apps=100000,owned=1000", want: with(func(s *SeedSpec) { s.Apps, s.Unowned = 100000, 99000 })},
		{spec: "owned=0", want: with(func(s *SeedSpec) { s.Unowned = 50 })},
		{spec: "owned=50", want: base},
		{spec: "owned=51", err: true},
		{spec: "owned=-1", err: true},
	}
	for _, tc := range cases {
		got, err := ParseSeed(tc.spec)
		if tc.err {
			require.Error(t, err, tc.spec)
			continue
		}
		require.NoError(t, err, tc.spec)
		require.Equal(t, tc.want, got, tc.spec)
	}
}

func FuzzParseSeed(f *testing.F) {
	for _, s := range []string{"demo", "apps=5", "apps=1,tenants=2,expiring=1h,replication=1s", "tenants=,", "=,=", "apps=9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := ParseSeed(spec)
		if err != nil || got.Demo {
			return
		}
		if got.Apps < 0 || got.Apps > maxBulkApps || got.Tenants < 1 || got.Tenants > maxBulkTenants || got.Expiring <= 0 || got.Replication < 0 ||
			got.Unowned < 0 || got.Unowned > got.Apps {
			t.Fatalf("ParseSeed(%q) accepted out-of-range %+v", spec, got)
		}
	})
}

func TestDemoSeed(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	w, err := SeedWorld(SeedSpec{Demo: true}, now)
	require.NoError(t, err)
	tenants := w.Tenants()
	require.Len(t, tenants, 2)
	require.Equal(t, "contoso", tenants[0].Name)
	require.Equal(t, "fabrikam", tenants[1].Name)
	require.NotNil(t, tenants[0].Policy)
	require.Equal(t, 90*24*time.Hour, tenants[0].Policy.MaxPasswordLifetime)
	require.Nil(t, tenants[1].Policy)

	band := func(end time.Time) string {
		switch d := end.Sub(now); {
		case d <= 0:
			return "expired"
		case d <= time.Hour:
			return "hour"
		case d <= 7*24*time.Hour:
			return "week"
		case d <= 30*24*time.Hour:
			return "month"
		case d <= 90*24*time.Hour:
			return "quarter"
		case d > 365*24*time.Hour:
			return "healthy"
		}
		return "other"
	}
	for _, tn := range tenants {
		require.Equal(t, 3*time.Second, tn.ReplicationDelay)
		rotApp := tn.AppByAppID(tn.RotationClientID)
		require.NotNil(t, rotApp)
		rotSP := tn.SPByAppID(tn.RotationClientID)
		require.ElementsMatch(t, []string{RoleReadWriteOwned, RoleReadAll}, rotSP.AppRoles)
		require.False(t, rotApp.OwnedBy(rotSP.ObjectID), "the rotation app must not own itself")
		require.Len(t, rotApp.Passwords, 1)
		require.Equal(t, HashSecret(tn.RotationSecret), rotApp.Passwords[0].SecretHash)
		require.True(t, rotApp.Passwords[0].End.After(now.AddDate(0, 6, 0)))

		mi := tn.SPByAppID(tn.ManagedIdentityClientID)
		require.NotNil(t, mi)
		require.True(t, mi.ManagedIdentity)
		require.Equal(t, []string{RoleReadAll}, mi.AppRoles)
		require.Nil(t, tn.AppByAppID(mi.AppID), "a managed identity has no app registration")
		require.Contains(t, tn.Vaults, "kv-"+tn.Name)
		require.Equal(t, tn.ID, tn.Vaults["kv-"+tn.Name].TenantID)

		var owned, other, none, web int
		pwBands, keyBands := map[string]int{}, map[string]int{}
		for _, a := range tn.Apps {
			if a == rotApp || a.DisplayName == "ci-deployer" {
				continue
			}
			require.NotNil(t, tn.SPByAppID(a.AppID), a.DisplayName)
			switch {
			case len(a.Owners) == 0:
				none++
			case a.OwnedBy(rotSP.ObjectID):
				owned++
			default:
				other++
			}
			if strings.HasPrefix(a.DisplayName, "web-") {
				web++
			}
			for _, p := range a.Passwords {
				pwBands[band(p.End)]++
				require.True(t, p.Start.Before(p.End))
				require.False(t, p.AddedAt.After(now), "seeded credentials are already replicated")
				require.Len(t, p.Hint, 3)
			}
			for _, k := range a.Keys {
				keyBands[band(k.End)]++
				require.NotNil(t, k.Cert)
				require.Equal(t, k.End, k.Cert.NotAfter)
				require.Len(t, k.ThumbprintSHA1, 20)
				require.Len(t, k.ThumbprintS256, 32)
			}
		}
		// People own a few applications (owned_apps_only has something
		// to show): oscar two, vera one, each also owned by rotor's
		// identity, so rotor manages them.
		for user, apps := range demoAppOwners {
			u := tn.UserByName(user + "@" + strings.SplitN(tn.UsersInOrder()[0].UserPrincipalName, "@", 2)[1])
			require.NotNil(t, u, user)
			var mine []string
			for _, a := range tn.Apps {
				if a.OwnedBy(u.ObjectID) {
					require.True(t, a.OwnedBy(rotSP.ObjectID), "%s owns %s, which rotor can change", user, a.DisplayName)
					mine = append(mine, a.DisplayName)
				}
			}
			require.ElementsMatch(t, apps, mine, user)
		}
		require.Equal(t, len(demoAppNames), owned+other+none)
		require.GreaterOrEqual(t, len(demoAppNames), 35)
		require.Greater(t, owned, 10)
		require.Greater(t, other, 3)
		require.GreaterOrEqual(t, none, 3)
		require.GreaterOrEqual(t, web, 4)
		for _, b := range demoBands {
			require.Positive(t, pwBands[b.name], "%s passwords in band %s", tn.Name, b.name)
		}
		require.Zero(t, pwBands["other"])
		for _, b := range demoBands {
			require.Positive(t, keyBands[b.name], "%s certificates in band %s", tn.Name, b.name)
		}
	}
	require.NotEqual(t, tenants[0].ID, tenants[1].ID)
}

// TestBulkSeedOwned: owned=N leaves the others without an owner, spread
// over the tenant.
func TestBulkSeedOwned(t *testing.T) {
	t.Parallel()
	spec, err := ParseSeed("apps=1000,owned=30")
	require.NoError(t, err)
	w, err := SeedWorld(spec, time.Now())
	require.NoError(t, err)
	tn := w.Tenants()[0]
	rotSP := tn.SPByAppID(tn.RotationClientID)
	var owned []int
	for i, a := range tn.Apps[1:] { // the rotation app comes first
		if a.OwnedBy(rotSP.ObjectID) {
			owned = append(owned, i)
			continue
		}
		require.Empty(t, a.Owners, a.DisplayName)
	}
	require.Len(t, owned, 30)
	require.Greater(t, owned[0], 10, "spread, not the first thirty")
	require.Greater(t, owned[29], 900)
}

func TestBulkSeed(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	spec := SeedSpec{Apps: 100_000, Tenants: 1, Expiring: 2 * time.Hour}
	start := time.Now()
	w, err := SeedWorld(spec, now)
	require.NoError(t, err)
	t.Logf("bulk seed of %d apps took %s", spec.Apps, time.Since(start))

	tn := w.Tenants()[0]
	require.Equal(t, "tenant1", tn.Name)
	require.Zero(t, tn.ReplicationDelay)
	require.Contains(t, tn.Vaults, "kv-tenant1")
	rotSP := tn.SPByAppID(tn.RotationClientID)
	require.Len(t, tn.Apps, spec.Apps+1) // + the rotation app
	var last time.Time
	seen := map[string]bool{}
	for _, a := range tn.Apps {
		if a.AppID == tn.RotationClientID {
			require.False(t, a.OwnedBy(rotSP.ObjectID))
			continue
		}
		// Plain checks: require's reflection is slow over 100k apps.
		if len(a.Owners) != 1 || a.Owners[0] != rotSP.ObjectID || len(a.Passwords) != 1 || seen[a.AppID] {
			t.Fatalf("%s: owners %v, %d passwords, duplicate id %v", a.DisplayName, a.Owners, len(a.Passwords), seen[a.AppID])
		}
		seen[a.AppID] = true
		end := a.Passwords[0].End
		if !end.After(now) || end.After(now.Add(spec.Expiring)) || end.Before(last) {
			t.Fatalf("%s ends %s: outside the window or out of order", a.DisplayName, end)
		}
		last = end
	}

	w2, err := SeedWorld(SeedSpec{Apps: 2, Tenants: 3, Expiring: time.Hour, Replication: time.Second}, now)
	require.NoError(t, err)
	require.Len(t, w2.Tenants(), 3)
	require.Equal(t, "tenant3", w2.Tenants()[2].Name)
	require.Equal(t, time.Second, w2.Tenants()[2].ReplicationDelay)
}

func BenchmarkBulkSeed100k(b *testing.B) {
	now := time.Now()
	spec := SeedSpec{Apps: 100_000, Tenants: 1, Expiring: time.Hour}
	var w *World
	for b.Loop() {
		var err error
		if w, err = SeedWorld(spec, now); err != nil {
			b.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "retained-MiB")
	runtime.KeepAlive(w)
}
