package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// The dashboard's fixed spans.
const (
	day = 24 * time.Hour
	// TimelineWeeks is how many weeks ahead the expiry timeline reaches.
	TimelineWeeks = 13
	// PlanShown is how many applications a plan or a list of failing
	// runs shows; the rest are counted.
	PlanShown = 50
	// planMaxCandidates bounds the applications one plan decides: loading
	// and deciding an application costs about 0.1 ms (SQLite), so the plan
	// takes about 100 ms at any inventory size. Past it the plan says it
	// is partial.
	planMaxCandidates = 1000
	planPage          = 1000
	// failedRunsRead bounds the failed runs the dashboard reads, newest
	// first.
	failedRunsRead = 500
)

// ExpiryWindows are the dashboard's "expiring within" counts, in days:
// the applications list's filter values, so each count links to its list.
var ExpiryWindows = []int{7, 30, 90}

// Dashboard is the organization at a glance: what expires when, what
// failed, what rotor will do next, and which connections are failing.
// Everything in it is computed from the store in a bounded number of
// queries, whatever the number of applications.
type Dashboard struct {
	// At is the moment it was computed (relative times are from it).
	At time.Time `json:"at"`
	// Expired counts credentials that ended at or before At.
	Expired int `json:"expired"`
	// Expiring counts, per ExpiryWindows entry, the credentials still
	// valid at At that end within that many days (cumulative: the 30-day
	// count includes the 7-day one; expired ones are in none).
	Expiring []WindowCount `json:"expiring"`
	// Weeks are the credentials ending in each of the next TimelineWeeks
	// weeks (disjoint).
	Weeks []WeekCount `json:"weeks"`
	// Failing are the applications whose newest failed run no later
	// successful run has superseded, newest first (at most PlanShown);
	// FailingMore counts the further applications with a failed run,
	// not examined.
	Failing     []FailingRun `json:"failing"`
	FailingMore int          `json:"failing_more"`
	// Blocked are applications due that rotor cannot rotate until a human
	// acts (Entra's password limit), among the plan's candidates.
	Blocked []PlanItem `json:"blocked"`
	// Next24h and Next7d are the plan: what rotor will rotate within a
	// day and within a week.
	Next24h Plan `json:"next_24h"`
	Next7d  Plan `json:"next_7d"`
	// FailingConnections are the connections whose last sign-in or sync
	// failed.
	FailingConnections []Connection `json:"failing_connections"`
}

// WindowCount is the number of credentials ending within Days days.
type WindowCount struct {
	Days  int `json:"days"`
	Count int `json:"count"`
}

// WeekCount is the number of credentials ending in (From, To].
type WeekCount struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Count int       `json:"count"`
}

// FailingRun is an application's newest failed run that nothing has
// superseded yet.
type FailingRun struct {
	Run RunRow `json:"run"`
	// NeedsHuman is true when the failure is permanent: a permission,
	// policy, ownership or target problem that retrying will not mend
	// (rotor backs off for long and waits). A transient one is retried
	// soon by the planner.
	NeedsHuman bool `json:"needs_human"`
}

// PlanItem is one application the planner will rotate, and when.
type PlanItem struct {
	Application ApplicationRef `json:"application"`
	Policy      string         `json:"policy"`
	// DueAt is when the planner rotates it (in the past or At: due now).
	DueAt   time.Time      `json:"due_at"`
	Due     bool           `json:"due"`
	Trigger domain.Trigger `json:"trigger,omitempty"`
	Reason  string         `json:"reason"`
	Message string         `json:"message"`
}

// Plan is a dry run: the applications the planner will rotate before
// Until, soonest first.
type Plan struct {
	Horizon time.Duration `json:"horizon"`
	Until   time.Time     `json:"until"`
	// Items are the first PlanShown; Total counts them all (Items
	// included).
	Items []PlanItem `json:"items"`
	Total int        `json:"total"`
	// Partial is true when more applications might be due than the plan
	// decided (it decides at most planMaxCandidates, those whose
	// credentials end soonest): Total is then a lower bound.
	Partial bool `json:"partial"`
}

// Plan lists what the planner will rotate within horizon from now, and
// when, soonest first: a dry run of the coming hours or days.
func (s *Service) Plan(ctx context.Context, scope Scope, horizon time.Duration) (*Plan, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectApplications); err != nil {
		return nil, err
	}
	if horizon <= 0 || horizon > 366*day {
		return nil, &InvalidError{Field: "horizon", Message: "must be more than 0 and at most a year"}
	}
	now := s.clock.Now()
	plans, _, err := s.plan(ctx, scope, now, horizon)
	if err != nil {
		return nil, err
	}
	return &plans[0], nil
}

// plan decides the candidates that may be due within the longest of
// horizons, once, and splits them into one plan per horizon. It also
// returns the candidates that are due but blocked (a human must act).
//
// A candidate is an application some connection may change with no
// rotor-made credential ending after now + horizon + the longest
// renew_before of the enabled policies: any other application's renewal
// time lies beyond the horizon. Candidates are read by earliest
// credential end, so when there are more than planMaxCandidates, those
// decided are the most urgent.
func (s *Service) plan(ctx context.Context, scope Scope, now time.Time, horizons ...time.Duration) ([]Plan, []PlanItem, error) {
	org := scope.Org
	longest := slices.Max(horizons)
	plans := make([]Plan, len(horizons))
	for i, h := range horizons {
		plans[i] = Plan{Horizon: h, Until: now.Add(h), Items: []PlanItem{}}
	}
	blocked := []PlanItem{}
	pols, err := s.policies.OrgPolicies(ctx, org)
	if err != nil {
		return nil, nil, fmt.Errorf("load policies: %w", err)
	}
	var renew time.Duration
	enabled := false
	for _, p := range pols.List() {
		if p.Enabled {
			enabled = true
			renew = max(renew, p.RenewBefore)
		}
	}
	if !enabled {
		return plans, blocked, nil
	}
	p := store.ListApplicationsParams{Org: org, ManageableOnly: true, RenewableBefore: now.Add(longest + renew),
		Order: store.OrderByExpiry, Limit: planPage, ObjectIDs: scope.Owned.IDs()}
	var due []PlanItem
	decided := 0
	partial := false
	for {
		apps, err := s.store.ListApplications(ctx, p)
		if err != nil {
			return nil, nil, fmt.Errorf("plan: list applications: %w", err)
		}
		decs, err := s.engine.Decisions(ctx, org, apps, pols)
		if err != nil {
			return nil, nil, fmt.Errorf("plan: decide: %w", err)
		}
		for i := range apps {
			pol := pols.PolicyFor(apps[i])
			d := decs[i]
			if pol == nil || !pol.Enabled || d.DueAt.IsZero() {
				continue // not rotor's to rotate, or a run holds it now
			}
			item := PlanItem{Application: refOf(&apps[i]), Policy: pol.Name, DueAt: d.DueAt, Due: d.Due, Trigger: d.Trigger, Reason: d.Reason, Message: d.Message}
			if d.Reason == "PasswordLimit" {
				blocked = append(blocked, item)
				continue
			}
			if !d.DueAt.After(now.Add(longest)) {
				due = append(due, item)
			}
		}
		decided += len(apps)
		if len(apps) < p.Limit {
			break
		}
		if decided >= planMaxCandidates {
			partial = true
			break
		}
		last := apps[len(apps)-1]
		p.AfterName, p.AfterObjectID, p.AfterMinEnd = last.DisplayName, last.ObjectID, codec.MinEnd(last.Credentials)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	slices.SortStableFunc(due, func(a, b PlanItem) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.Application.Name, b.Application.Name), cmp.Compare(a.Application.ObjectID, b.Application.ObjectID))
	})
	for i := range plans {
		pl := &plans[i]
		pl.Partial = partial
		for _, it := range due {
			if it.DueAt.After(pl.Until) {
				break
			}
			if pl.Total++; len(pl.Items) < PlanShown {
				pl.Items = append(pl.Items, it)
			}
		}
	}
	if len(blocked) > PlanShown {
		blocked = blocked[:PlanShown]
	}
	return plans, blocked, nil
}

// Dashboard computes the organization's dashboard.
func (s *Service) Dashboard(ctx context.Context, scope Scope) (*Dashboard, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectApplications); err != nil {
		return nil, err
	}
	if err := s.begin(ctx, scope, ActionRead, ObjectRuns); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	d := &Dashboard{At: now, Expiring: []WindowCount{}, Weeks: []WeekCount{}, Failing: []FailingRun{}, FailingConnections: []Connection{}}
	if err := s.expiry(ctx, scope, now, d); err != nil {
		return nil, err
	}
	if err := s.failing(ctx, scope, d); err != nil {
		return nil, err
	}
	plans, blocked, err := s.plan(ctx, scope, now, day, 7*day)
	if err != nil {
		return nil, err
	}
	d.Next24h, d.Next7d, d.Blocked = plans[0], plans[1], blocked
	if s.conns != nil {
		list, err := s.conns.OrgConnections(ctx, scope.Org)
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		for _, c := range list {
			if c.Failing {
				d.FailingConnections = append(d.FailingConnections, c)
			}
		}
	}
	return d, nil
}

// expiry fills the counts and the weekly timeline with one store query.
func (s *Service) expiry(ctx context.Context, scope Scope, now time.Time, d *Dashboard) error {
	bounds := []time.Time{now}
	for _, n := range ExpiryWindows {
		bounds = append(bounds, now.Add(time.Duration(n)*day))
	}
	weeks := len(bounds)
	for w := 1; w <= TimelineWeeks; w++ {
		bounds = append(bounds, now.Add(time.Duration(w)*7*day))
	}
	counts, err := s.store.CountCredentialsByExpiry(ctx, store.CountCredentialsByExpiryParams{Org: scope.Org, Bounds: bounds, ObjectIDs: scope.Owned.IDs()})
	if err != nil {
		return fmt.Errorf("count credentials by expiry: %w", err)
	}
	d.Expired = counts[0]
	for i, n := range ExpiryWindows {
		d.Expiring = append(d.Expiring, WindowCount{Days: n, Count: counts[1+i] - counts[0]})
	}
	prev, from := counts[0], now
	for w := range TimelineWeeks {
		to := bounds[weeks+w]
		d.Weeks = append(d.Weeks, WeekCount{From: from, To: to, Count: counts[weeks+w] - prev})
		prev, from = counts[weeks+w], to
	}
	return nil
}

// failing finds the applications whose newest failed run is newer than
// their newest successful one (retiring or done). Abandoned runs are left
// out: recovery replaces each at once.
func (s *Service) failing(ctx context.Context, scope Scope, d *Dashboard) error {
	org := scope.Org
	failed, err := s.store.ListRuns(ctx, store.ListRunsParams{Org: org, States: []domain.RunState{domain.RunFailed}, Limit: failedRunsRead, AppObjectIDs: scope.Owned.IDs()})
	if err != nil {
		return fmt.Errorf("list failed runs: %w", err)
	}
	seen := map[string]bool{}
	for i := range failed {
		r := &failed[i]
		k := r.TenantID + "/" + r.AppObjectID
		if seen[k] {
			continue // an older failure of an application already looked at
		}
		seen[k] = true
		if len(d.Failing) == PlanShown {
			d.FailingMore++
			continue
		}
		ok, err := s.store.ListRuns(ctx, store.ListRunsParams{Org: org, AppObjectID: r.AppObjectID, States: []domain.RunState{domain.RunRetiring, domain.RunDone}, Limit: 1})
		if err != nil {
			return fmt.Errorf("list successful runs of %s: %w", r.AppName, err)
		}
		if len(ok) > 0 && later(&ok[0], r) {
			continue
		}
		rows := runRows([]domain.Run{*r})
		d.Failing = append(d.Failing, FailingRun{Run: rows[0], NeedsHuman: r.Failure != domain.FailureTransient && r.Failure != domain.FailureRemoved})
	}
	return nil
}

// later reports whether run a came after run b of the same application:
// by the journal's sequence when both have one, else by creation time.
func later(a, b *domain.Run) bool {
	if a.Seq != 0 && b.Seq != 0 {
		return a.Seq > b.Seq
	}
	return a.CreatedAt.After(b.CreatedAt)
}
