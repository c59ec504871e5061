package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// TestBounds: every numeric and duration key refuses values outside its
// bounds, naming the key, the value and the bound, and accepts the bounds
// themselves. Each case tweaks the valid base.
func TestBounds(t *testing.T) {
	t.Parallel()
	rot := func(k string, v any) func(map[string]any, *bundle) {
		return func(m map[string]any, _ *bundle) { m["rotation"] = map[string]any{k: v} }
	}
	// wide makes room in the policy for long rotation settings, so that
	// only the bound under test matters.
	wide := func(tweak func(map[string]any, *bundle)) func(map[string]any, *bundle) {
		return func(m map[string]any, b *bundle) {
			pol(m)["renew_before"] = "5d"
			tweak(m, b)
		}
	}
	tests := []struct {
		name  string
		tweak func(m map[string]any, b *bundle)
		// want has one entry per problem line; "|" separates fragments.
		// Empty: the configuration is valid and check runs.
		want  []string
		check func(t *testing.T, cfg *Config)
	}{
		// rotation.jitter: 0 .. 1d
		{name: "JitterNegative", tweak: rot("jitter", "-1s"), want: []string{`rotation.jitter (-1s, line |) must not be negative; 0s turns jitter off`}},
		{name: "JitterOverADay", tweak: wide(rot("jitter", "25h")), want: []string{`rotation.jitter (25h, line |) is too long: use at most 1d; a due rotation would wait up to that long`}},
		{name: "JitterZeroTurnsItOff", tweak: rot("jitter", "0s"), check: func(t *testing.T, cfg *Config) { require.Zero(t, cfg.Rotation.Jitter) }},
		{name: "JitterADay", tweak: wide(rot("jitter", "24h")), check: func(t *testing.T, cfg *Config) { require.Equal(t, day, cfg.Rotation.Jitter) }},
		{name: "JitterLongerThanPlanIntervalIsFine", tweak: func(m map[string]any, _ *bundle) {
			// Rotate jobs are unique while pending, so a later plan
			// never queues a second one (the demo runs 20s over 10s).
			m["rotation"] = map[string]any{"jitter": "20s", "plan_interval": "10s"}
		}, check: func(t *testing.T, cfg *Config) { require.Equal(t, 20*time.Second, cfg.Rotation.Jitter) }},

		// rotation.plan_interval: 1s .. 1d
		{name: "PlanIntervalZero", tweak: rot("plan_interval", "0s"), want: []string{`rotation.plan_interval (0s, line |) is too short: use at least 1s; the planner reads every application`}},
		{name: "PlanIntervalNegative", tweak: rot("plan_interval", "-1m"), want: []string{`rotation.plan_interval (-1m, line |) is too short: use at least 1s`}},
		{name: "PlanIntervalUnderASecond", tweak: rot("plan_interval", "500ms"), want: []string{`rotation.plan_interval (500ms, line |) is too short: use at least 1s`}},
		{name: "PlanIntervalOverADay", tweak: wide(rot("plan_interval", "2d")), want: []string{`rotation.plan_interval (2d, line |) is too long: use at most 1d; a credential that falls due would wait`}},
		{name: "PlanIntervalASecond", tweak: rot("plan_interval", "1s"), check: func(t *testing.T, cfg *Config) { require.Equal(t, time.Second, cfg.Rotation.PlanInterval) }},
		{name: "PlanIntervalADay", tweak: wide(rot("plan_interval", "1d")), check: func(t *testing.T, cfg *Config) { require.Equal(t, day, cfg.Rotation.PlanInterval) }},

		// rotation.sync_interval: 1m .. 1d
		{name: "SyncIntervalZero", tweak: rot("sync_interval", "0s"), want: []string{`rotation.sync_interval (0s, line |) is too short: use at least 1m; each sync reads every application`}},
		{name: "SyncIntervalUnderAMinute", tweak: rot("sync_interval", "30s"), want: []string{`rotation.sync_interval (30s, line |) is too short: use at least 1m`}},
		{name: "SyncIntervalOverADay", tweak: rot("sync_interval", "7d"), want: []string{`rotation.sync_interval (7d, line |) is too long: use at most 1d; applications and credentials added outside rotor`}},
		{name: "SyncIntervalAMinute", tweak: rot("sync_interval", "1m"), check: func(t *testing.T, cfg *Config) { require.Equal(t, time.Minute, cfg.Rotation.SyncInterval) }},
		{name: "SyncIntervalADay", tweak: rot("sync_interval", "1d"), check: func(t *testing.T, cfg *Config) { require.Equal(t, day, cfg.Rotation.SyncInterval) }},
		// rotation.full_sync_interval: 0s .. 1d
		{name: "FullSyncIntervalOverADay", tweak: rot("full_sync_interval", "2d"), want: []string{`rotation.full_sync_interval (2d, line |) is too long: use at most 1d; a change Graph's change tracking did not report`}},
		{name: "FullSyncIntervalZeroTurnsIncrementalOff", tweak: rot("full_sync_interval", "0s"), check: func(t *testing.T, cfg *Config) { require.Zero(t, cfg.Rotation.FullSyncInterval) }},
		// rotation.ownership_interval: 0s .. 1d
		{name: "OwnershipIntervalOverADay", tweak: rot("ownership_interval", "25h"), want: []string{`rotation.ownership_interval (25h, line |) is too long: use at most 1d; an application rotor was made an owner of`}},
		{name: "OwnershipIntervalZeroReadsEverySync", tweak: rot("ownership_interval", "0s"), check: func(t *testing.T, cfg *Config) { require.Zero(t, cfg.Rotation.OwnershipInterval) }},
		{name: "FullSyncIntervalAnHour", tweak: rot("full_sync_interval", "1h"), check: func(t *testing.T, cfg *Config) { require.Equal(t, time.Hour, cfg.Rotation.FullSyncInterval) }},

		// rotation.verify_timeout: 10s .. 45m
		{name: "VerifyTimeoutNegative", tweak: rot("verify_timeout", "-5m"), want: []string{`rotation.verify_timeout (-5m, line |) is too short: use at least 10s; Entra often takes tens of seconds`}},
		{name: "VerifyTimeoutUnderTenSeconds", tweak: rot("verify_timeout", "5s"), want: []string{`rotation.verify_timeout (5s, line |) is too short: use at least 10s`}},
		{name: "VerifyTimeoutOverFortyFiveMinutes", tweak: wide(rot("verify_timeout", "46m")), want: []string{`rotation.verify_timeout (46m, line |) is too long: use at most 45m; a rotation's job may run verify_timeout + 10m, and the job system runs a job again once it has run an hour`}},
		{name: "VerifyTimeoutOverADay", tweak: wide(rot("verify_timeout", "2d")), want: []string{`rotation.verify_timeout (2d, line |) is too long: use at most 45m`}},
		{name: "VerifyTimeoutTenSeconds", tweak: rot("verify_timeout", "10s"), check: func(t *testing.T, cfg *Config) { require.Equal(t, 10*time.Second, cfg.Rotation.VerifyTimeout) }},
		{name: "VerifyTimeoutFortyFiveMinutes", tweak: wide(rot("verify_timeout", "45m")), check: func(t *testing.T, cfg *Config) { require.Equal(t, 45*time.Minute, cfg.Rotation.VerifyTimeout) }},

		// rotation.concurrency_per_tenant: 1 .. 64, and tenants × it ≤ 5000
		{name: "ConcurrencyZero", tweak: rot("concurrency_per_tenant", 0), want: []string{`rotation.concurrency_per_tenant (0) must be at least 1: a tenant's rotations would never run`}},
		{name: "ConcurrencyNegative", tweak: rot("concurrency_per_tenant", -3), want: []string{`rotation.concurrency_per_tenant (-3) must be at least 1`}},
		{name: "ConcurrencyAboveSixtyFour", tweak: rot("concurrency_per_tenant", 65), want: []string{`rotation.concurrency_per_tenant (65) must be at most 64: Graph throttles`}},
		{name: "ConcurrencyTenToTheEleventh", tweak: rot("concurrency_per_tenant", 100_000_000_000), want: []string{`rotation.concurrency_per_tenant (100000000000) must be at most 64`}},
		{name: "ConcurrencyTenToTheEleventhFromEnv", tweak: func(_ map[string]any, b *bundle) {
			b.env["ROTOR_ROTATION_CONCURRENCY_PER_TENANT"] = "100000000000"
		}, want: []string{`rotation.concurrency_per_tenant (100000000000) must be at most 64`}},
		{name: "ConcurrencyOverflowsInt", tweak: func(_ map[string]any, b *bundle) {
			b.env["ROTOR_ROTATION_CONCURRENCY_PER_TENANT"] = "99999999999999999999"
		}, want: []string{`environment variable ROTOR_ROTATION_CONCURRENCY_PER_TENANT="99999999999999999999": want a whole number`}},
		{name: "ConcurrencyOne", tweak: rot("concurrency_per_tenant", 1), check: func(t *testing.T, cfg *Config) { require.Equal(t, 1, cfg.Rotation.ConcurrencyPerTenant) }},
		{name: "ConcurrencySixtyFour", tweak: rot("concurrency_per_tenant", 64), check: func(t *testing.T, cfg *Config) { require.Equal(t, 64, cfg.Rotation.ConcurrencyPerTenant) }},

		// rotation.max_in_flight: 1 .. 5000
		{name: "MaxInFlightZero", tweak: rot("max_in_flight", 0), want: []string{`rotation.max_in_flight (0) must be at least 1: no rotation would ever run`}},
		{name: "MaxInFlightOverTheLimit", tweak: rot("max_in_flight", 5001), want: []string{`rotation.max_in_flight (5001) must be at most 5000`}},
		{name: "MaxInFlightFromEnv", tweak: func(_ map[string]any, b *bundle) { b.env["ROTOR_ROTATION_MAX_IN_FLIGHT"] = "12" },
			check: func(t *testing.T, cfg *Config) { require.Equal(t, 12, cfg.Rotation.MaxInFlight) }},
		{name: "MaxInFlightAtTheLimit", tweak: rot("max_in_flight", 5000), check: func(t *testing.T, cfg *Config) { require.Equal(t, 5000, cfg.Rotation.MaxInFlight) }},
		{name: "TooManyWorkersInTotal", tweak: func(m map[string]any, _ *bundle) {
			m["rotation"] = map[string]any{"concurrency_per_tenant": 64}
			m["connections"] = append(m["connections"].([]any), tenants(78)...) // 79 tenants × 64 = 5056
		}, want: []string{`rotation.concurrency_per_tenant (64) × 79 tenants is 5056 rotations at once, over rotor's limit of 5000: lower concurrency_per_tenant to at most 63, or run several rotor processes`}},
		{name: "WorkersAtTheLimit", tweak: func(m map[string]any, _ *bundle) {
			m["rotation"] = map[string]any{"concurrency_per_tenant": 50}
			m["connections"] = append(m["connections"].([]any), tenants(99)...) // 100 × 50 = 5000
		}, check: func(t *testing.T, cfg *Config) { require.Len(t, cfg.Connections, 100) }},
		{name: "ConnectionsToOneTenantCountOnce", tweak: func(m map[string]any, _ *bundle) {
			m["rotation"] = map[string]any{"concurrency_per_tenant": 64}
			extra := tenants(200)
			for _, c := range extra {
				c.(map[string]any)["tenant_id"] = "same.onmicrosoft.com"
			}
			m["connections"] = append(m["connections"].([]any), extra...)
		}, check: func(t *testing.T, cfg *Config) { require.Len(t, cfg.Connections, 201) }},

		// listen: host:port, port 0 .. 65535
		{name: "ListenPortTooLarge", tweak: listen("127.0.0.1:99999"), want: []string{`listen "127.0.0.1:99999": port 99999 is not a port number (0-65535); use host:port, e.g. 127.0.0.1:8080`}},
		{name: "ListenPortJustTooLarge", tweak: listen(":65536"), want: []string{`listen ":65536": port 65536 is not a port number (0-65535)`}},
		{name: "ListenPortOverflows", tweak: listen(":99999999999999999999999"), want: []string{`port 99999999999999999999999 is not a port number (0-65535)`}},
		{name: "ListenPortNegative", tweak: listen(":-1"), want: []string{`listen ":-1": port "-1" must be a number 0-65535 (0 picks a free port)`}},
		{name: "ListenPortByServiceName", tweak: listen(":http"), want: []string{`port "http" must be a number 0-65535`}},
		{name: "ListenPortMissing", tweak: listen("127.0.0.1:"), want: []string{`listen "127.0.0.1:": the port is missing`}},
		{name: "ListenNoPort", tweak: listen("localhost"), want: []string{`listen "localhost" must be host:port, e.g. 127.0.0.1:8080`}},
		{name: "ListenBadHost", tweak: listen("bad_host!:8080"), want: []string{`listen "bad_host!:8080": host "bad_host!" is not an IP address or host name`}},
		{name: "ListenMistypedAddress", tweak: listen("300.1.1.1:8080"), want: []string{`host "300.1.1.1" is not an IP address or host name`}},
		{name: "ListenIPv6WithoutBrackets", tweak: listen("::1:8080"), want: []string{`listen "::1:8080" must be host:port`}},
		{name: "ListenHostAndPortBothWrong", tweak: listen("my host:77777"), want: []string{`listen "my host:77777": port 77777 is not a port number (0-65535) and host "my host" is not an IP address or host name`}},
		{name: "ListenFromEnvPortTooLarge", tweak: func(_ map[string]any, b *bundle) { b.env["ROTOR_LISTEN"] = ":70000" }, want: []string{`listen ":70000": port 70000 is not a port number`}},
		{name: "ListenAnyPort", tweak: listen("127.0.0.1:0"), check: listens("127.0.0.1:0")},
		{name: "ListenEveryInterface", tweak: listen(":65535"), check: listens(":65535")},
		{name: "ListenIPv6", tweak: listen("[::1]:8080"), check: listens("[::1]:8080")},
		{name: "ListenIPv6Zone", tweak: listen("[fe80::1%eth0]:8080"), check: listens("[fe80::1%eth0]:8080")},
		{name: "ListenHostName", tweak: listen("rotor.internal.contoso.com:443"), check: listens("rotor.internal.contoso.com:443")},

		// policies[].lifetime: 1h .. 3650d
		{name: "LifetimeZero", tweak: polKey("lifetime", "0s"), want: []string{`policies[0] "web": lifetime (0s, line |) is too short: use at least 1h; Entra takes minutes`}},
		{name: "LifetimeNegative", tweak: polKey("lifetime", "-21d"), want: []string{`policies[0] "web": lifetime (-21d, line |) is too short: use at least 1h`}},
		{name: "LifetimeUnderAnHour", tweak: polKey("lifetime", "30m"), want: []string{`lifetime (30m, line |) is too short: use at least 1h`}},
		{name: "LifetimeOverTenYears", tweak: func(m map[string]any, _ *bundle) {
			pol(m)["kind"] = "certificate" // the tenant's password cap does not apply
			pol(m)["lifetime"] = "3651d"
		}, want: []string{`policies[0] "web": lifetime (3651d, line |) is too long: use at most 3650d; a credential valid for over ten years`}},
		{name: "LifetimeTooLongForADuration", tweak: polKey("lifetime", "999999999d"), want: []string{`lifetime "999999999d" (line |) is not a duration`}},
		{name: "LifetimeAnHour", tweak: func(m map[string]any, _ *bundle) {
			p := pol(m)
			p["lifetime"], p["renew_before"], p["overlap"] = "1h", "30m", "10m"
		}, check: func(t *testing.T, cfg *Config) { require.Equal(t, time.Hour, cfg.Policies[0].Lifetime) }},
		{name: "LifetimeTenYears", tweak: func(m map[string]any, _ *bundle) {
			pol(m)["kind"] = "certificate"
			pol(m)["lifetime"] = "3650d"
		}, check: func(t *testing.T, cfg *Config) { require.Equal(t, 3650*day, cfg.Policies[0].Lifetime) }},

		// policies[].notify_before: 0 .. 3650d
		{name: "NotifyBeforeNegative", tweak: polKey("notify_before", "-1d"), want: []string{`policies[0] "web": notify_before (-1d, line |) must not be negative; 0s warns only once a credential has expired`}},
		{name: "NotifyBeforeOverTenYears", tweak: polKey("notify_before", "4000d"), want: []string{`notify_before (4000d, line |) is too long: use at most 3650d`}},
		{name: "NotifyBeforeZero", tweak: polKey("notify_before", "0s"), check: func(t *testing.T, cfg *Config) { require.Zero(t, cfg.Policies[0].NotifyBefore) }},

		// policies[].renew_before: longer than plan_interval + jitter +
		// verify_timeout (1m + 30s + 5m by default), shorter than lifetime
		{name: "RenewBeforeTooShortForTheSchedule", tweak: polKey("renew_before", "5m"), want: []string{
			`policies[0] "web": renew_before (5m, line |) must be longer than rotation.plan_interval + rotation.jitter + rotation.verify_timeout (1m + 30s + 5m = 6m30s): a due rotation may start that late`,
		}},
		{name: "RenewBeforeEqualToTheSchedule", tweak: polKey("renew_before", "6m30s"), want: []string{`renew_before (6m30s, line |) must be longer than`}},
		{name: "RenewBeforeJustLongEnough", tweak: polKey("renew_before", "6m31s"), check: func(t *testing.T, cfg *Config) {
			require.Equal(t, 6*time.Minute+31*time.Second, cfg.Policies[0].RenewBefore)
		}},
		{name: "RenewBeforeTooShortForLongVerify", tweak: func(m map[string]any, _ *bundle) {
			m["rotation"] = map[string]any{"verify_timeout": "45m", "jitter": "5m", "plan_interval": "10m"}
		}, want: []string{`renew_before (1h, line |) must be longer than rotation.plan_interval + rotation.jitter + rotation.verify_timeout (10m + 5m + 45m = 1h)`}},
		{name: "DefaultRenewBeforeTooShort", tweak: func(m map[string]any, _ *bundle) {
			p := pol(m)
			p["lifetime"], p["overlap"] = "1h", "10m"
			delete(p, "renew_before")
			m["rotation"] = map[string]any{"verify_timeout": "30m"}
		}, want: []string{`renew_before (20m, the default: a third of lifetime) must be longer than rotation.plan_interval + rotation.jitter + rotation.verify_timeout (1m + 30s + 30m = 31m30s)`}},
		{name: "RenewBeforeNegative", tweak: polKey("renew_before", "-1h"), want: []string{`policies[0] "web": renew_before must be positive`}},

		// policies[].overlap: 0 .. lifetime
		{name: "OverlapNegative", tweak: polKey("overlap", "-1h"), want: []string{`policies[0] "web": overlap must not be negative`}},
		{name: "OverlapZero", tweak: polKey("overlap", "0s"), check: func(t *testing.T, cfg *Config) { require.Zero(t, cfg.Policies[0].Overlap) }},

		{name: "EveryBoundAtOnce", tweak: func(m map[string]any, b *bundle) {
			m["listen"] = ":99999"
			m["rotation"] = map[string]any{"jitter": "-1s", "plan_interval": "0s", "sync_interval": "1s", "verify_timeout": "1s", "concurrency_per_tenant": 100_000_000_000}
			pol(m)["lifetime"] = "1m"
			pol(m)["notify_before"] = "-1d"
		}, want: []string{
			`listen ":99999": port 99999 is not a port number`,
			`rotation.jitter (-1s`,
			`rotation.verify_timeout (1s`,
			`rotation.plan_interval (0s`,
			`rotation.sync_interval (1s`,
			`rotation.concurrency_per_tenant (100000000000) must be at most 64`,
			`policies[0] "web": lifetime (1m`,
			`policies[0] "web": notify_before (-1d`,
		}},
		{name: "EnvOverrideNamedInBoundMessage", tweak: func(_ map[string]any, b *bundle) {
			b.env["ROTOR_ROTATION_PLAN_INTERVAL"] = "100ms"
		}, want: []string{`rotation.plan_interval (100ms, ROTOR_ROTATION_PLAN_INTERVAL) is too short: use at least 1s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := base()
			tt.tweak(m, b)
			cfg, err := b.parse(t, m)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				tt.check(t, cfg)
				return
			}
			require.Nil(t, cfg)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tt.want), "problems:\n%s", err)
			for i, w := range tt.want {
				for _, frag := range strings.Split(w, "|") {
					require.Contains(t, lines[i], frag, "problems:\n%s", err)
				}
			}
			require.NotContains(t, err.Error(), theSecret)
		})
	}
}

func listen(addr string) func(map[string]any, *bundle) {
	return func(m map[string]any, _ *bundle) { m["listen"] = addr }
}

func listens(addr string) func(*testing.T, *Config) {
	return func(t *testing.T, cfg *Config) { require.Equal(t, addr, cfg.Listen) }
}

func polKey(k, v string) func(map[string]any, *bundle) {
	return func(m map[string]any, _ *bundle) { pol(m)[k] = v }
}

// tenants returns n connections to n distinct tenants of the public
// cloud (managed identities: nothing to resolve).
func tenants(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{
			"name":             fmt.Sprintf("t%d", i),
			"tenant_id":        fmt.Sprintf("t%d.onmicrosoft.com", i),
			"purpose":          "read",
			"managed_identity": true,
		}
	}
	return out
}

// TestBoundsAreDocumented keeps the key tables of docs/configuration.md
// in step with the bounds the code enforces.
func TestBoundsAreDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	row := func(key string) string {
		for _, l := range strings.Split(string(doc), "\n") {
			if strings.HasPrefix(l, "| `"+key+"` |") {
				return l
			}
		}
		t.Fatalf("docs/configuration.md has no row for %s", key)
		return ""
	}
	for key, sp := range map[string]span{
		"rotation.jitter":                     jitterSpan,
		"rotation.plan_interval":              planIntervalSpan,
		"rotation.sync_interval":              syncIntervalSpan,
		"rotation.full_sync_interval":         fullSyncIntervalSpan,
		"rotation.verify_timeout":             verifyTimeoutSpan,
		"lifetime":                            lifetimeSpan,
		"notify_before":                       notifyBeforeSpan,
		"api_auth.entra.clock_skew":           clockSkewSpan,
		"api_auth.entra.key_max_age":          keyMaxAgeSpan,
		"api_auth.entra.key_refresh_interval": keyRefreshSpan,
		"sign_in.session_lifetime":            sessionLifetimeSpan,
	} {
		want := fmt.Sprintf("`%s`–`%s`", domain.FormatDuration(sp.min), domain.FormatDuration(sp.max))
		require.Contains(t, row(key), want, key)
	}
	require.Contains(t, row("rotation.concurrency_per_tenant"), fmt.Sprintf("1–%d", MaxConcurrencyPerTenant))
	require.Contains(t, row("rotation.concurrency_per_tenant"), fmt.Sprint(MaxRotationWorkers))
	require.Contains(t, row("rotation.max_in_flight"), fmt.Sprintf("1–%d", MaxRotationWorkers))
	require.Contains(t, row("listen"), "0–65535")
}
