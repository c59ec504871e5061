package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func cred(id string, rotor bool, start, end time.Time) Credential {
	name := "manual"
	if rotor {
		name = DisplayNameFor("run-" + id)
	}
	return Credential{KeyID: id, Kind: KindSecret, DisplayName: name, Start: start, End: end}
}

func basePolicy() Policy {
	return Policy{
		Name: "web", Connection: "contoso", Selector: Selector{NamePrefix: "web-"}, Enabled: true,
		Kind: KindSecret, Lifetime: 21 * 24 * time.Hour, RenewBefore: time.Hour, Overlap: 24 * time.Hour, Verify: true,
	}
}

func baseApp() Application {
	return Application{ObjectID: "obj-1", AppID: "app-1", DisplayName: "web-storefront", Manageable: true,
		Access: []Access{{Connection: "contoso", CanChange: true}, {Connection: "contoso-read"}}}
}

func TestRenewalTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		end         time.Time
		renewBefore time.Duration
		want        time.Time
	}{
		{"threshold before end", t0, time.Hour, t0.Add(-time.Hour)},
		{"zero threshold is the end itself", t0, 0, t0},
		{"negative threshold never renews after the end", t0, -time.Hour, t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, RenewalTime(tc.end, tc.renewBefore))
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	pol := basePolicy()
	tests := []struct {
		name      string
		tweak     func(*DecideInput)
		due       bool
		reason    string
		trigger   Trigger
		wantDueAt time.Time
	}{
		{"no policy: only watched", func(in *DecideInput) { in.Policy = nil }, false, "NoPolicy", "", time.Time{}},
		{"disabled policy", func(in *DecideInput) { p := pol; p.Enabled = false; in.Policy = &p }, false, "PolicyDisabled", "", time.Time{}},
		{"not owned by rotor", func(in *DecideInput) { in.App.Access[0].CanChange = false }, false, "NotManageable", "", time.Time{}},
		{"seen only by a read connection", func(in *DecideInput) { in.App.Access = in.App.Access[1:] }, false, "NotManageable", "", time.Time{}},
		{"owned through another connection than the policy's", func(in *DecideInput) {
			in.App.Access = []Access{{Connection: "fabrikam", CanChange: true}}
		}, false, "NotManageable", "", time.Time{}},
		{"no rotor credential yet: adoption", func(in *DecideInput) {
			in.App.Credentials = []Credential{cred("a", false, t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))}
		}, true, "Adoption", TriggerAdoption, t0},
		{"run in progress holds the app", func(in *DecideInput) {
			in.ActiveRun = &Run{ID: "r1", State: RunCreated}
		}, false, "RunInProgress", "", time.Time{}},
		{"rotor credential not yet due", func(in *DecideInput) {
			in.App.Credentials = []Credential{cred("a", true, t0.Add(-time.Hour), t0.Add(10*time.Hour))}
		}, false, "NotYetDue", "", t0.Add(9 * time.Hour)},
		{"exactly at renewal time is due", func(in *DecideInput) {
			in.App.Credentials = []Credential{cred("a", true, t0.Add(-time.Hour), t0.Add(time.Hour))}
		}, true, "RenewalTimeReached", TriggerDue, t0},
		{"newest rotor credential decides, not an older one", func(in *DecideInput) {
			in.App.Credentials = []Credential{
				cred("old", true, t0.AddDate(0, 0, -20), t0.Add(30*time.Minute)),
				cred("new", true, t0.Add(-time.Minute), t0.AddDate(0, 0, 21)),
			}
		}, false, "NotYetDue", "", t0.AddDate(0, 0, 21).Add(-time.Hour)},
		{"a foreign credential expiring does not make it due", func(in *DecideInput) {
			in.App.Credentials = []Credential{
				cred("foreign", false, t0.AddDate(-1, 0, 0), t0.Add(time.Minute)),
				cred("mine", true, t0.Add(-time.Minute), t0.AddDate(0, 0, 21)),
			}
		}, false, "NotYetDue", "", t0.AddDate(0, 0, 21).Add(-time.Hour)},
		{"a certificate policy ignores rotor secrets", func(in *DecideInput) {
			p := pol
			p.Kind = KindCertificate
			in.Policy = &p
			in.App.Credentials = []Credential{cred("mine", true, t0, t0.AddDate(0, 0, 21))}
		}, true, "Adoption", TriggerAdoption, t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := pol
			in := DecideInput{App: baseApp(), Policy: &p, Now: t0}
			tc.tweak(&in)
			d := Decide(in)
			require.Equal(t, tc.due, d.Due)
			require.Equal(t, tc.reason, d.Reason)
			require.Equal(t, tc.trigger, d.Trigger)
			require.True(t, tc.wantDueAt.Equal(d.DueAt), "due at %s, want %s", d.DueAt, tc.wantDueAt)
			require.NotEmpty(t, d.Checks)
			last := d.Checks[len(d.Checks)-1]
			require.Equal(t, CheckStop, last.Result, "the chain ends with the check that decided")
			require.Equal(t, tc.reason, last.Reason)
			require.NotEmpty(t, d.Message)
		})
	}
}

func TestDecideExplainsForeignCredentials(t *testing.T) {
	t.Parallel()
	p := basePolicy()
	app := baseApp()
	app.Credentials = []Credential{cred("abcdef0123", false, t0.AddDate(-1, 0, 0), t0.Add(-time.Hour))}
	d := Decide(DecideInput{App: app, Policy: &p, Now: t0})
	var found bool
	for _, c := range d.Checks {
		if c.Reason == "NotCreatedByRotor" {
			found = true
			require.Contains(t, c.Message, "expired")
			require.Contains(t, c.Message, "until it expires")
		}
	}
	require.True(t, found)
}

func TestToRetire(t *testing.T) {
	t.Parallel()
	keep := cred("keep", true, t0, t0.AddDate(0, 0, 21))
	older := cred("older", true, t0.AddDate(0, 0, -21), t0.Add(time.Hour))
	abandoned := cred("abandoned", true, t0.Add(-time.Minute), t0.AddDate(0, 0, 21))
	newer := cred("newer", true, t0.Add(time.Minute), t0.AddDate(0, 0, 22))
	foreign := cred("foreign", false, t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))
	cert := Credential{KeyID: "cert", Kind: KindCertificate, DisplayName: DisplayNameFor("x"), Start: t0.AddDate(0, -1, 0), End: t0.AddDate(0, 1, 0)}
	all := []Credential{newer, foreign, keep, older, cert, abandoned}

	got := ToRetire(all, keep, false, nil)
	require.Equal(t, []string{"older", "abandoned"}, keyIDs(got), "older rotor credentials of the same kind, oldest first; never foreign, newer, or another kind")

	got = ToRetire(all, keep, true, nil)
	require.Equal(t, []string{"foreign", "older", "abandoned"}, keyIDs(got), "retire_unmanaged adds foreign credentials")
}

// TestToRetireJournalOrder: where the journal knows a rotor credential's
// run, its order decides, not start times — the regression behind a CI
// failure where a run's retirement removed the secret of a run started
// in the same second (Entra's start times have seconds).
func TestToRetireJournalOrder(t *testing.T) {
	t.Parallel()
	keep := cred("keep", true, t0, t0.AddDate(0, 0, 30))
	sameSecond := cred("same-second", true, t0, t0.AddDate(0, 0, 30))           // a later run, same start
	skewed := cred("skewed", true, t0.Add(-time.Hour), t0.AddDate(0, 0, 30))    // a later run on a host whose clock is behind
	earlier := cred("earlier", true, t0.Add(time.Second), t0.AddDate(0, 0, 30)) // an earlier run on a host whose clock is ahead
	unknown := cred("unknown", true, t0, t0.AddDate(0, 0, 30))                  // no run in the journal: start times decide
	unknownNewer := cred("unknown-newer", true, t0.Add(time.Minute), t0.AddDate(0, 0, 30))
	later := map[string]bool{"run-same-second": true, "run-skewed": true, "run-earlier": false}
	order := func(c Credential) (bool, bool) {
		l, ok := later[c.RunID()]
		return l, ok
	}
	got := ToRetire([]Credential{keep, sameSecond, skewed, earlier, unknown, unknownNewer}, keep, false, order)
	require.ElementsMatch(t, []string{"earlier", "unknown"}, keyIDs(got), "later runs kept whatever their start; unknown runs by start time")
}

func keyIDs(cs []Credential) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.KeyID)
	}
	return out
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(*Policy)
		want  string // substring of the error; empty = valid
	}{
		{"valid", func(*Policy) {}, ""},
		{"threshold equal to lifetime", func(p *Policy) { p.RenewBefore = p.Lifetime }, "renew_before (21d) must be shorter than lifetime (21d)"},
		{"threshold over lifetime", func(p *Policy) { p.RenewBefore = 30 * 24 * time.Hour }, "must be shorter than lifetime"},
		{"no threshold", func(p *Policy) { p.RenewBefore = 0 }, "renew_before must be positive"},
		{"no lifetime", func(p *Policy) { p.Lifetime = 0 }, "lifetime must be positive"},
		{"overlap as long as lifetime", func(p *Policy) { p.Overlap = p.Lifetime }, "overlap (21d) must be shorter"},
		{"negative overlap", func(p *Policy) { p.Overlap = -time.Hour }, "overlap must not be negative"},
		{"unknown kind", func(p *Policy) { p.Kind = "token" }, `kind "token" is not known`},
		{"no selector", func(p *Policy) { p.Selector = Selector{} }, "exactly one of name_prefix, ids or all_owned"},
		{"two selectors", func(p *Policy) { p.Selector.AllOwned = true }, "exactly one of"},
		{"no name", func(p *Policy) { p.Name = "" }, "name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := basePolicy()
			tc.tweak(&p)
			err := p.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	t.Parallel()
	app := baseApp()
	require.True(t, Selector{NamePrefix: "web-"}.Matches(app, "contoso"))
	require.False(t, Selector{NamePrefix: "api-"}.Matches(app, "contoso"))
	require.True(t, Selector{IDs: []string{"APP-1"}}.Matches(app, "contoso"), "ids match app ids case-insensitively")
	require.True(t, Selector{IDs: []string{"obj-1"}}.Matches(app, "contoso"), "ids match object ids too")
	require.True(t, Selector{AllOwned: true}.Matches(app, "contoso"))
	require.False(t, Selector{AllOwned: true}.Matches(app, "contoso-read"), "all_owned means owned by the policy's connection")
	app.Access[0].CanChange = false
	require.False(t, Selector{AllOwned: true}.Matches(app, "contoso"))
	require.False(t, Selector{}.Matches(app, "contoso"))
}

func TestCredentialRunID(t *testing.T) {
	t.Parallel()
	c := Credential{DisplayName: DisplayNameFor("0190-abc")}
	require.True(t, c.RotorCreated())
	require.Equal(t, "0190-abc", c.RunID())
	require.Empty(t, Credential{DisplayName: "rotorish"}.RunID())
	require.True(t, strings.HasPrefix(DisplayNameFor("x"), RotorPrefix))
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	require.Equal(t, "21d", FormatDuration(21*24*time.Hour))
	require.Equal(t, "36h", FormatDuration(36*time.Hour))
	require.Equal(t, "15m", FormatDuration(15*time.Minute))
	require.Equal(t, "1.5s", FormatDuration(1500*time.Millisecond))
	require.Equal(t, "0s", FormatDuration(0))
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	require.Equal(t, "20d 23h", HumanDuration(20*24*time.Hour+23*time.Hour+59*time.Minute))
	require.Equal(t, "3d", HumanDuration(72*time.Hour))
	require.Equal(t, "5h 12m", HumanDuration(5*time.Hour+12*time.Minute))
	require.Equal(t, "2h", HumanDuration(2*time.Hour))
	require.Equal(t, "7m", HumanDuration(7*time.Minute+10*time.Second))
	require.Equal(t, "42s", HumanDuration(42*time.Second))
	require.Equal(t, "1h", HumanDuration(-time.Hour))
}

func TestUnjournaledRotorCredential(t *testing.T) {
	t.Parallel()
	known := map[string]bool{"run-journaled": true}
	isKnown := func(id string) bool { return known[id] }
	journaled := cred("journaled", true, t0.Add(time.Hour), t0.AddDate(0, 0, 30))
	lost := cred("lost", true, t0.Add(2*time.Hour), t0.AddDate(0, 0, 30))
	lostNewer := cred("lost-newer", true, t0.Add(3*time.Hour), t0.AddDate(0, 0, 30))
	lostOlder := cred("lost-older", true, t0.Add(-time.Hour), t0.AddDate(0, 0, 30)) // before the run it would explain
	foreign := cred("foreign", false, t0.Add(4*time.Hour), t0.AddDate(0, 0, 30))
	lostCert := Credential{KeyID: "cert", Kind: KindCertificate, DisplayName: DisplayNameFor("run-cert"), Start: t0.Add(5 * time.Hour), End: t0.AddDate(0, 0, 30)}
	for _, tc := range []struct {
		name  string
		creds []Credential
		want  string // "" when none
	}{
		{"none", nil, ""},
		{"only journaled, foreign, older or other kinds", []Credential{journaled, foreign, lostOlder, lostCert}, ""},
		{"a lost run's secret", []Credential{journaled, lost, foreign}, "lost"},
		{"the newest of several", []Credential{lost, lostNewer, lostOlder}, "lost-newer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := UnjournaledRotorCredential(tc.creds, KindSecret, t0, isKnown)
			require.Equal(t, tc.want != "", ok)
			require.Equal(t, tc.want, got.KeyID)
		})
	}
}
