package domain

import (
	"fmt"
	"strings"
	"time"
)

// CheckResult is the outcome of one named check.
type CheckResult string

// Check outcomes. Pass lets the chain go on; Stop ends it with the
// decision the check made; Info only adds context.
const (
	CheckPass CheckResult = "pass"
	CheckStop CheckResult = "stop"
	CheckInfo CheckResult = "info"
)

// Check is one link of the "why is this application (not) due?" chain.
type Check struct {
	Name    string      `json:"name"`
	Result  CheckResult `json:"result"`
	Reason  string      `json:"reason"`  // a short CamelCase reason, stable for machines
	Message string      `json:"message"` // one sentence for humans
}

// Decision answers "is this application due for rotation, and why?".
type Decision struct {
	Due     bool      `json:"due"`
	DueAt   time.Time `json:"due_at,omitzero"` // zero when never (no policy, not manageable…)
	Trigger Trigger   `json:"trigger,omitempty"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Checks  []Check   `json:"checks"`
}

// DecideInput is what the chain looks at.
type DecideInput struct {
	App    Application
	Policy *Policy // the policy governing the app, nil when none matches
	// ActiveRun is a run that still holds the app, if any.
	ActiveRun *Run
	// Held, when not nil, is every credential Entra holds (the
	// inventory's, before the journal's corrections hide failed runs'
	// secrets from App): what counts against the application's password
	// limit. Nil means App.Credentials.
	Held []Credential
	Now  time.Time
}

// Decide runs the chain of checks, in order, until one stops it. It is a
// pure function: the planner, `rotor explain` and the UI all call it, so
// what they say is what rotor does.
func Decide(in DecideInput) Decision {
	var d Decision
	stop := func(reason, msg string) Decision {
		d.Checks = append(d.Checks, Check{Name: reason, Result: CheckStop, Reason: reason, Message: msg})
		d.Reason, d.Message = reason, msg
		return d
	}
	pass := func(name, reason, msg string) {
		d.Checks = append(d.Checks, Check{Name: name, Result: CheckPass, Reason: reason, Message: msg})
	}
	info := func(name, reason, msg string) {
		d.Checks = append(d.Checks, Check{Name: name, Result: CheckInfo, Reason: reason, Message: msg})
	}

	if in.Policy == nil {
		return stop("NoPolicy", "no policy selects this application, so rotor only watches it")
	}
	p := in.Policy
	pass("PolicyMatched", "PolicyMatched", fmt.Sprintf("policy %q selects it (%s)", p.Name, p.Selector))
	for _, o := range p.Overrides {
		info("ApplicationSetting", "SetOnApplication", o.Message())
	}
	if !p.Enabled {
		if _, ok := p.Overridden("enabled"); ok {
			return stop("PolicyDisabled", fmt.Sprintf("this application's setting turns rotation off (policy %q would rotate it)", p.Name))
		}
		return stop("PolicyDisabled", fmt.Sprintf("policy %q is disabled", p.Name))
	}
	if !in.App.CanChange(p.Connection) {
		if !in.App.SeenBy(p.Connection) {
			seen := "no connection"
			if cs := in.App.Connections(); len(cs) > 0 {
				seen = "only " + strings.Join(cs, ", ")
			}
			return stop("NotManageable", fmt.Sprintf("the policy rotates through connection %q, which has not seen this application (%s has); make that connection's identity an owner of the application and sync", p.Connection, seen))
		}
		return stop("NotManageable", fmt.Sprintf("connection %q (the policy's rotation identity) is not an owner of this application, so Application.ReadWrite.OwnedBy cannot change it; add it as an owner to let rotor rotate", p.Connection))
	}
	pass("Manageable", "OwnedByRotor", fmt.Sprintf("connection %q, rotor's rotation identity, owns the application", p.Connection))

	for _, c := range in.App.Credentials {
		if c.Kind == p.Kind && !c.RotorCreated() {
			state := "expires"
			if !c.End.After(in.Now) {
				state = "expired"
			}
			info("ForeignCredential", "NotCreatedByRotor",
				fmt.Sprintf("credential %s (%q) was not created by rotor and %s %s; rotor leaves it alone%s",
					shortKey(c.KeyID), c.DisplayName, state, c.End.UTC().Format(time.RFC3339), retireNote(p)))
		}
	}

	if in.ActiveRun != nil {
		return stop("RunInProgress", fmt.Sprintf("run %s is %s", in.ActiveRun.ID, in.ActiveRun.State))
	}
	pass("NoRunInProgress", "Idle", "no rotation is running for it")

	// room stops a due decision that the application's password limit
	// would make fail, and says what a rotation removes first.
	room := func() (Decision, bool) {
		if p.Kind != KindSecret || in.App.PasswordLimit() == 0 {
			return d, true
		}
		held := in.Held
		if held == nil {
			held = in.App.Credentials
		}
		r := PasswordRoom(in.App, held, p.RetireUnmanaged, in.Now)
		if !r.OK {
			d.Due, d.Trigger = false, ""
			return stop("PasswordLimit", "it is due, but a new secret would not fit: "+r.Why), false
		}
		msg := fmt.Sprintf("Entra lets it hold at most %d secrets", in.App.PasswordLimit())
		if len(r.Free) > 0 {
			var ids []string
			for _, c := range r.Free {
				ids = append(ids, shortKey(c.KeyID))
			}
			msg += "; the rotation first removes the expired " + strings.Join(ids, ", ")
		}
		pass("PasswordLimit", "RoomForNewSecret", msg)
		return d, true
	}

	newest, ok := NewestRotorCredential(in.App.Credentials, p.Kind)
	if !ok {
		d.Due, d.DueAt, d.Trigger = true, in.Now, TriggerAdoption
		if blocked, ok := room(); !ok {
			return blocked
		}
		return stop("Adoption", "it has no credential made by rotor yet, so it is due now (adoption)")
	}
	pass("RotorCredential", "Found", fmt.Sprintf("newest rotor credential %s ends %s", shortKey(newest.KeyID), newest.End.UTC().Format(time.RFC3339)))

	at := RenewalTime(newest.End, p.RenewBefore)
	d.DueAt = at
	if !in.Now.Before(at) {
		d.Due, d.Trigger = true, TriggerDue
		if blocked, ok := room(); !ok {
			return blocked
		}
		return stop("RenewalTimeReached", fmt.Sprintf("renewal time %s (end − renew_before %s) has passed", at.UTC().Format(time.RFC3339), FormatDuration(p.RenewBefore)))
	}
	return stop("NotYetDue", fmt.Sprintf("due at %s (end − renew_before %s), in %s", at.UTC().Format(time.RFC3339), FormatDuration(p.RenewBefore), HumanDuration(at.Sub(in.Now))))
}

func retireNote(p *Policy) string {
	if p.RetireUnmanaged {
		return " until a rotation retires it after the overlap"
	}
	return " until it expires"
}

func shortKey(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
