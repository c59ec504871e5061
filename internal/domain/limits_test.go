package domain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPasswordRoom: an application that admits personal Microsoft
// accounts holds at most two secrets. A rotation needs one free place; it
// may make one only from an expired credential (a foreign one only with
// retire_unmanaged), and otherwise says what a human can do.
func TestPasswordRoom(t *testing.T) {
	t.Parallel()
	personal := baseApp()
	personal.SignInAudience = "AzureADandPersonalMicrosoftAccount"
	current := cred("current", true, t0.AddDate(0, 0, -20), t0.AddDate(0, 0, 1))
	expiredRotor := cred("expired-rotor", true, t0.AddDate(0, 0, -60), t0.AddDate(0, 0, -30))
	foreign := cred("foreign", false, t0.AddDate(0, -6, 0), t0.AddDate(0, 6, 0))
	expiredForeign := cred("expired-foreign", false, t0.AddDate(-1, 0, 0), t0.AddDate(0, 0, -1))

	tests := []struct {
		name            string
		app             Application
		creds           []Credential
		retireUnmanaged bool
		free            []string
		ok              bool
		why             []string
	}{
		{name: "NoLimit", app: baseApp(), creds: []Credential{current, foreign, expiredRotor}, ok: true},
		{name: "OneHeld", app: personal, creds: []Credential{current}, ok: true},
		{name: "NoneHeld", app: personal, ok: true},
		{name: "TwoHeldOneExpiredRotor", app: personal, creds: []Credential{current, expiredRotor}, free: []string{"expired-rotor"}, ok: true},
		{name: "TwoLive", app: personal, creds: []Credential{current, foreign},
			why: []string{"at most 2 secrets", "curren", `"manual", not made by rotor`, "Remove one in Entra", "retire_unmanaged"}},
		{name: "ExpiredForeignNeedsRetireUnmanaged", app: personal, creds: []Credential{current, expiredForeign},
			why: []string{"retire_unmanaged"}},
		{name: "ExpiredForeignWithRetireUnmanaged", app: personal, creds: []Credential{current, expiredForeign}, retireUnmanaged: true,
			free: []string{"expired-foreign"}, ok: true},
		{name: "PersonalOnlyAudience", app: func() Application { a := personal; a.SignInAudience = "PersonalMicrosoftAccount"; return a }(),
			creds: []Credential{current, foreign}, why: []string{"PersonalMicrosoftAccount"}},
		{name: "CertificatesDoNotCount", app: personal,
			creds: []Credential{current, {KeyID: "cert", Kind: KindCertificate, Start: t0, End: t0.AddDate(1, 0, 0)}}, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := PasswordRoom(tc.app, tc.creds, tc.retireUnmanaged, t0)
			require.Equal(t, tc.ok, r.OK, r.Why)
			require.Equal(t, tc.free, keyIDs(r.Free))
			for _, w := range tc.why {
				require.Contains(t, r.Why, w)
			}
		})
	}
}

// TestDecideWithinPasswordLimit: a due application that a new secret
// would not fit is not due, with the PasswordLimit reason and the fix; one
// with an expired rotor secret is due and the decision says what goes
// first.
func TestDecideWithinPasswordLimit(t *testing.T) {
	t.Parallel()
	p := basePolicy()
	app := baseApp()
	app.SignInAudience = "PersonalMicrosoftAccount"
	app.Credentials = []Credential{
		cred("current", true, t0.AddDate(0, 0, -20), t0.Add(30*time.Minute)), // renewal time reached
		cred("foreign", false, t0.AddDate(0, -1, 0), t0.AddDate(0, 6, 0)),
	}
	d := Decide(DecideInput{App: app, Policy: &p, Now: t0})
	require.False(t, d.Due, d.Message)
	require.Equal(t, "PasswordLimit", d.Reason)
	require.Contains(t, d.Message, "a new secret would not fit")

	app.Credentials[1] = cred("old-rotor", true, t0.AddDate(0, -2, 0), t0.AddDate(0, 0, -1))
	d = Decide(DecideInput{App: app, Policy: &p, Now: t0})
	require.True(t, d.Due, d.Message)
	require.Equal(t, "RenewalTimeReached", d.Reason)
	found := false
	for _, c := range d.Checks {
		if c.Name == "PasswordLimit" {
			found = true
			require.Contains(t, c.Message, "first removes the expired old-roto")
		}
	}
	require.True(t, found, "%+v", d.Checks)
}
