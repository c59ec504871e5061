package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// PasswordLimit is how many password credentials Entra lets the
// application hold: 2 when its signInAudience admits personal Microsoft
// accounts (AzureADandPersonalMicrosoftAccount, PersonalMicrosoftAccount;
// addPassword refuses a third with "You can only add a maximum of 2
// encrypted credentials"), else 0 — no limit rotor has to plan for.
func (a Application) PasswordLimit() int {
	switch a.SignInAudience {
	case "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount":
		return 2
	}
	return 0
}

// Room is what a rotation of an application with a password limit must do
// before it adds its new secret.
type Room struct {
	// Free lists the credentials to remove first, oldest first: expired
	// ones rotor made, and expired foreign ones when the policy retires
	// unmanaged credentials. Nothing that still works is removed before
	// its overlap has passed.
	Free []Credential
	// OK is false when, even after Free, a new secret would not fit; Why
	// then says what a human can do.
	OK  bool
	Why string
}

// PasswordRoom plans a rotation within the application's password limit
// (PasswordLimit), given its credentials as Entra has them now. A rotation
// holds the current secret and the new one through the overlap, so it
// needs one free place; it makes one only from credentials that no
// longer work.
func PasswordRoom(app Application, creds []Credential, retireUnmanaged bool, now time.Time) Room {
	limit := app.PasswordLimit()
	if limit == 0 {
		return Room{OK: true}
	}
	var passwords, free, live []Credential
	for _, c := range creds {
		if c.Kind != KindSecret {
			continue
		}
		passwords = append(passwords, c)
		switch expired := !c.End.After(now); {
		case expired && (c.RotorCreated() || retireUnmanaged):
			free = append(free, c)
		default:
			live = append(live, c)
		}
	}
	need := len(passwords) + 1 - limit
	if need <= 0 {
		return Room{OK: true}
	}
	sortByStart(free)
	if len(free) >= need {
		return Room{Free: free[:need], OK: true}
	}
	var held []string
	for _, c := range live {
		who := "made by rotor"
		if !c.RotorCreated() {
			who = fmt.Sprintf("%q, not made by rotor", c.DisplayName)
		}
		state := "ends"
		if !c.End.After(now) {
			state = "ended"
		}
		held = append(held, fmt.Sprintf("%s (%s, %s %s)", shortKey(c.KeyID), who, state, c.End.UTC().Format(time.RFC3339)))
	}
	why := fmt.Sprintf("its signInAudience %s admits personal Microsoft accounts, so Entra lets it hold at most %d secrets, and a rotation keeps the current one beside the new one until the overlap passes; it holds %d rotor may not remove yet: %s. Remove one in Entra",
		app.SignInAudience, limit, len(live), strings.Join(held, "; "))
	if !retireUnmanaged && hasForeign(live) {
		why += ", or set retire_unmanaged on the policy so rotor may remove an expired secret it did not make"
	}
	why += ", or wait until one expires"
	return Room{Free: free, Why: why}
}

func hasForeign(cs []Credential) bool {
	for _, c := range cs {
		if !c.RotorCreated() {
			return true
		}
	}
	return false
}

func sortByStart(cs []Credential) {
	slices.SortStableFunc(cs, func(a, b Credential) int { return a.Start.Compare(b.Start) })
}
