package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// ApplicationRef identifies an application in results: enough to name it
// to a person and to find it again.
type ApplicationRef struct {
	Name     string `json:"name"`
	AppID    string `json:"app_id"`
	ObjectID string `json:"object_id"`
	TenantID string `json:"tenant_id"`
}

func refOf(a *domain.Application) ApplicationRef {
	return ApplicationRef{Name: a.DisplayName, AppID: a.AppID, ObjectID: a.ObjectID, TenantID: a.TenantID}
}

// ApplicationFilter narrows ListApplications. The zero value lists every
// application of the organization.
type ApplicationFilter struct {
	// Connection keeps one connection's applications.
	Connection string `json:"connection,omitempty"`
	// ManageableOnly keeps applications some connection may change.
	ManageableOnly bool `json:"manageable_only,omitempty"`
	// NamePrefix keeps applications whose display name starts with it.
	NamePrefix string `json:"name_prefix,omitempty"`
	// ExpiringWithin keeps applications with a credential ending within
	// this long from now (expired ones included); zero: no filter.
	ExpiringWithin time.Duration `json:"expiring_within,omitempty"`
	// ExpiringBefore keeps applications with a credential ending before
	// it (expired ones included); zero: no filter. With ExpiringWithin
	// too, the earlier of the two applies.
	ExpiringBefore time.Time `json:"expiring_before,omitzero"`
}

// params is the store query of f at now, in scope's organization and
// restricted to what scope may see.
func (f ApplicationFilter) params(scope Scope, now time.Time) (store.ListApplicationsParams, error) {
	if f.ExpiringWithin < 0 {
		return store.ListApplicationsParams{}, &InvalidError{Field: "expiring_within", Message: "must not be negative"}
	}
	p := store.ListApplicationsParams{Org: scope.Org, Connection: f.Connection, ManageableOnly: f.ManageableOnly, NamePrefix: f.NamePrefix,
		ExpiringBefore: f.ExpiringBefore, ObjectIDs: scope.Owned.IDs()}
	if f.ExpiringWithin > 0 {
		if at := now.Add(f.ExpiringWithin); p.ExpiringBefore.IsZero() || at.Before(p.ExpiringBefore) {
			p.ExpiringBefore = at
		}
	}
	return p, nil
}

// ApplicationRow is one line of an application listing: what the
// inventory knows and what rotor will do about it.
type ApplicationRow struct {
	Name     string `json:"name"`
	AppID    string `json:"app_id"`
	ObjectID string `json:"object_id"`
	TenantID string `json:"tenant_id"`
	// Connection lists the connections that see it, comma-separated.
	Connection string `json:"connection"`
	Manageable bool   `json:"manageable"`
	Secrets    int    `json:"secrets"`
	Certs      int    `json:"certificates"`
	// NextExpiry is the earliest end of a credential still valid;
	// EarliestEnd the earliest end of any, expired ones included (what
	// SortByExpiry orders by).
	NextExpiry  time.Time `json:"next_expiry,omitzero"`
	EarliestEnd time.Time `json:"earliest_end,omitzero"`
	Policy      string    `json:"policy,omitempty"`
	// Status says, for people, what rotor will do ("due now (adoption)",
	// "due in 19d 23h", "not manageable"); Reason is the decision's stable
	// reason for machines.
	Status string    `json:"status"`
	Reason string    `json:"reason"`
	Due    bool      `json:"due"`
	DueAt  time.Time `json:"due_at,omitzero"`
}

// listPage is how many applications ListApplications reads per store call.
const listPage = 1000

// ListApplications lists the organization's applications, ordered by name,
// each with the decision the planner would make now.
func (s *Service) ListApplications(ctx context.Context, scope Scope, f ApplicationFilter) ([]ApplicationRow, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectApplications); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	p, err := f.params(scope, now)
	if err != nil {
		return nil, err
	}
	p.Limit = listPage
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	rows := []ApplicationRow{}
	for {
		apps, err := s.store.ListApplications(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("list applications: %w", err)
		}
		decs, err := s.engine.Decisions(ctx, scope.Org, apps, pols)
		if err != nil {
			return nil, fmt.Errorf("decide: %w", err)
		}
		for i := range apps {
			rows = append(rows, rowOf(&apps[i], decs[i], pols.PolicyFor(apps[i]), now))
		}
		if len(apps) < p.Limit {
			return rows, nil
		}
		last := apps[len(apps)-1]
		p.AfterName, p.AfterObjectID = last.DisplayName, last.ObjectID
	}
}

func rowOf(a *domain.Application, dec domain.Decision, pol *domain.Policy, now time.Time) ApplicationRow {
	r := ApplicationRow{
		Name: a.DisplayName, AppID: a.AppID, ObjectID: a.ObjectID, TenantID: a.TenantID,
		Connection: strings.Join(a.Connections(), ","), Manageable: a.Manageable,
		Status: Status(dec, now), Reason: dec.Reason, Due: dec.Due, DueAt: dec.DueAt,
	}
	if pol != nil {
		r.Policy = pol.Name
	}
	r.EarliestEnd = codec.MinEnd(a.Credentials)
	for _, c := range a.Credentials {
		if c.Kind == domain.KindSecret {
			r.Secrets++
		} else {
			r.Certs++
		}
		if c.End.After(now) && (r.NextExpiry.IsZero() || c.End.Before(r.NextExpiry)) {
			r.NextExpiry = c.End
		}
	}
	return r
}

// Status says in a few words what a decision means at now: "due now
// (adoption)", "due in 3d 4h", "last run failed; retry in 40m", or the
// reason rotor will not rotate ("not manageable", "no policy").
func Status(d domain.Decision, now time.Time) string {
	switch {
	case d.Due:
		return "due now (" + string(d.Trigger) + ")"
	case d.Reason == "NotYetDue":
		return "due in " + domain.HumanDuration(d.DueAt.Sub(now))
	case d.Reason == "FailureBackoff":
		return "last run failed; retry in " + domain.HumanDuration(d.DueAt.Sub(now))
	}
	return strings.ToLower(splitCamel(d.Reason))
}

func splitCamel(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CredentialInfo is one credential as the inventory last saw it. It has no
// secret value: Entra itself only shows the hint.
type CredentialInfo struct {
	KeyID          string                `json:"key_id"`
	Kind           domain.CredentialKind `json:"kind"`
	DisplayName    string                `json:"display_name"`
	Hint           string                `json:"hint"`
	Start          time.Time             `json:"start"`
	End            time.Time             `json:"end"`
	CreatedByRotor bool                  `json:"created_by_rotor"`
	// Thumbprint is a certificate's SHA-1 thumbprint, upper-case hex
	// (Entra's customKeyIdentifier); empty for a secret.
	Thumbprint string `json:"thumbprint,omitempty"`
	// Certificate is what the certificate itself says, once the inventory
	// has read it; nil for a secret or a certificate not read yet.
	Certificate *CertificateDetail `json:"certificate,omitempty"`
	// PrivateKeyUnknown flags a certificate rotor created whose private
	// key no sink holds (domain.UnheldCertificates): valid in Entra, usable
	// by no consumer rotor knows. Set only where the sink delivery records
	// were read (an application's page, explain).
	PrivateKeyUnknown bool `json:"private_key_unknown,omitempty"`
}

// CertificateDetail is a certificate credential's public certificate.
type CertificateDetail struct {
	ThumbprintSHA256 string    `json:"thumbprint_sha256"`
	Subject          string    `json:"subject"`
	Issuer           string    `json:"issuer"`
	KeyAlgorithm     string    `json:"key_algorithm"`
	KeySize          int       `json:"key_size"`
	NotBefore        time.Time `json:"not_before,omitzero"`
	NotAfter         time.Time `json:"not_after,omitzero"`
}

// PrivateKeyUnknownAdvice says what the PrivateKeyUnknown flag means and
// what to do, for every surface that shows it.
const PrivateKeyUnknownAdvice = "rotor created this certificate, but no sink holds its private key (rotor keeps none at rest): " +
	"no consumer rotor knows of can use it. Rotate the application (rotate now) so a new certificate reaches the sinks and this one is retired after the overlap, " +
	"or remove it in Entra if nothing uses it"

// ApplicationDetail is one application with its credentials and which
// connections see it.
type ApplicationDetail struct {
	Name        string           `json:"name"`
	AppID       string           `json:"app_id"`
	ObjectID    string           `json:"object_id"`
	TenantID    string           `json:"tenant_id"`
	Access      []domain.Access  `json:"access"`
	Manageable  bool             `json:"manageable"`
	Credentials []CredentialInfo `json:"credentials"`
	// CreatedAt is when Entra created the application.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Owners is how many directory objects own it; OwnerIDs are their
	// directory object ids (sorted).
	Owners   int      `json:"owners"`
	OwnerIDs []string `json:"owner_ids"`
	// SyncedAt is when a sync last saw it.
	SyncedAt time.Time `json:"synced_at"`
}

func detailOf(a *domain.Application) ApplicationDetail {
	d := ApplicationDetail{
		Name: a.DisplayName, AppID: a.AppID, ObjectID: a.ObjectID, TenantID: a.TenantID,
		Access: a.Access, Manageable: a.Manageable, SyncedAt: a.SyncedAt,
		CreatedAt: a.CreatedAt, Owners: len(a.Owners), OwnerIDs: append([]string{}, a.Owners...),
		Credentials: make([]CredentialInfo, 0, len(a.Credentials)),
	}
	for _, c := range a.Credentials {
		ci := CredentialInfo{KeyID: c.KeyID, Kind: c.Kind, DisplayName: c.DisplayName, Hint: c.Hint, Start: c.Start, End: c.End, CreatedByRotor: c.RotorCreated()}
		if c.Kind == domain.KindCertificate {
			ci.Thumbprint = c.ThumbprintHex()
		}
		if x := c.Certificate; x != nil {
			ci.Certificate = &CertificateDetail{ThumbprintSHA256: x.ThumbprintSHA256, Subject: x.Subject, Issuer: x.Issuer,
				KeyAlgorithm: x.KeyAlgorithm, KeySize: x.KeySize, NotBefore: x.NotBefore, NotAfter: x.NotAfter}
		}
		d.Credentials = append(d.Credentials, ci)
	}
	return d
}

// flagUnheldCertificates sets PrivateKeyUnknown on d's certificates that
// rotor made and no sink delivery record holds. A failure to read the
// records leaves every flag unset: posture advice, not a reason to fail.
func (s *Service) flagUnheldCertificates(ctx context.Context, org domain.OrgID, a *domain.Application, d *ApplicationDetail) {
	rotorCert := false
	for _, c := range a.Credentials {
		rotorCert = rotorCert || (c.Kind == domain.KindCertificate && c.RotorCreated())
	}
	if !rotorCert {
		return
	}
	ds, err := s.store.SinkDeliveries(ctx, store.SinkDeliveriesParams{Org: org, TenantID: a.TenantID, AppObjectID: a.ObjectID})
	if err != nil {
		return
	}
	held := map[string]bool{}
	for _, x := range ds {
		held[x.KeyID] = true
	}
	unheld := map[string]bool{}
	for _, k := range domain.UnheldCertificates(a.Credentials, held, s.clock.Now()) {
		unheld[k] = true
	}
	for i := range d.Credentials {
		d.Credentials[i].PrivateKeyUnknown = unheld[d.Credentials[i].KeyID]
	}
}

// Explanation answers "why is this application (not) due?": the
// application, the policy that governs it, and the chain of checks the
// planner runs.
type Explanation struct {
	Application ApplicationDetail `json:"application"`
	Policy      string            `json:"policy,omitempty"`
	Decision    domain.Decision   `json:"decision"`
	// Ref is how to name the application so that it alone is found: its
	// display name, or its object id when another application shares the
	// name.
	Ref string `json:"ref"`
	// Targets are where the governing policy's sinks deliver for this
	// application, as pinned at their first delivery (a sink not yet
	// delivered to has none).
	Targets []PinnedTarget `json:"targets"`
	// At is when the decision was made (relative times are from it).
	At time.Time `json:"at"`
}

// PinnedTarget is where one sink of a policy delivers for an application.
// A moved target keeps receiving new credentials at Previous until
// RetireOldAt, so consumers still reading the old place keep working.
type PinnedTarget struct {
	Sink        int       `json:"sink"`
	Type        string    `json:"type"`
	Target      string    `json:"target"`
	PinnedAt    time.Time `json:"pinned_at"`
	PinnedByRun string    `json:"pinned_by_run,omitempty"`
	Previous    string    `json:"previous,omitempty"`
	RetireOldAt time.Time `json:"retire_old_at,omitzero"`
	// LastDelivery is what rotor last delivered there; nil when nothing
	// was recorded.
	LastDelivery *sink.Delivered `json:"last_delivery,omitempty"`
	// Drift says whether the target changed since; nil when the sink
	// cannot tell.
	Drift *sink.Drift `json:"drift,omitempty"`
}

// Explain finds one application by reference (object id, app id or
// display name) and runs the planner's chain of checks for it.
func (s *Service) Explain(ctx context.Context, scope Scope, ref string) (*Explanation, error) {
	if err := s.begin(ctx, scope, ActionRead, ApplicationObject(ref)); err != nil {
		return nil, err
	}
	a, err := s.getApp(ctx, scope, ref)
	if err != nil {
		return nil, err
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	decs, err := s.engine.Decisions(ctx, scope.Org, []domain.Application{*a}, pols)
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	ex := &Explanation{Application: detailOf(a), Decision: decs[0], Ref: s.uniqueRef(ctx, scope.Org, a), Targets: []PinnedTarget{}, At: s.clock.Now()}
	s.flagUnheldCertificates(ctx, scope.Org, a, &ex.Application)
	if pol := pols.PolicyFor(*a); pol != nil {
		ex.Policy = pol.Name
		pins, err := s.store.PinnedTargets(ctx, store.PinnedTargetsParams{Org: scope.Org, TenantID: a.TenantID, AppObjectID: a.ObjectID, Policy: pol.Name})
		if err != nil {
			return nil, fmt.Errorf("pinned targets: %w", err)
		}
		// Drift reads each delivered target's version (never a value); a
		// failure to read leaves the drift unknown rather than failing
		// the explanation.
		drifts := map[string]rotation.TargetDrift{}
		if len(pins) > 0 {
			if ds, err := s.engine.Drifts(ctx, scope.Org, *a, *pol); err == nil {
				for _, d := range ds {
					drifts[d.Target.String()] = d
				}
			}
		}
		for _, p := range pins {
			d := drifts[p.Target]
			ex.Targets = append(ex.Targets, PinnedTarget{Sink: p.SinkIndex, Type: p.SinkType, Target: p.Target, PinnedAt: p.PinnedAt, PinnedByRun: p.PinnedByRun, Previous: p.Previous, RetireOldAt: p.RetireOldAt,
				LastDelivery: d.Last, Drift: d.Drift})
		}
	}
	return ex, nil
}

// uniqueRef is the display name when it finds a alone, else the object id.
func (s *Service) uniqueRef(ctx context.Context, org domain.OrgID, a *domain.Application) string {
	got, err := s.store.GetApplication(ctx, org, a.DisplayName)
	if err != nil || got.ObjectID != a.ObjectID {
		return a.ObjectID
	}
	return a.DisplayName
}

// DueApplication is an application the planner would rotate now.
type DueApplication struct {
	Application ApplicationRef  `json:"application"`
	Policy      string          `json:"policy"`
	Decision    domain.Decision `json:"decision"`
}

// DuePageRequest asks for one page of the plan.
type DuePageRequest struct {
	// Cursor continues after the previous page (its Next); empty: the
	// first page.
	Cursor string
	// Limit is the page size (0: DefaultPageSize; at most MaxPageSize).
	Limit int
}

// DuePage is one page of the plan, in name order, and the cursor of the
// next ("" after the last page).
type DuePage struct {
	Rows []DueApplication `json:"items"`
	Next string           `json:"next_cursor,omitempty"`
}

type dueCursor struct {
	Name     string `json:"n"`
	ObjectID string `json:"o"`
}

// errPageFull stops the plan's walk once a page is full.
var errPageFull = errors.New("page full")

// DuePageOf lists one page of what the planner would rotate now, in name
// order (Due's order is earliest deadline first, which cannot be paged
// without reading the whole plan). A request reads applications a page
// at a time until it has a page of due ones: an organization being
// adopted has every application due, and one answer holding them all,
// each with its decision's chain of checks, was hundreds of MiB.
func (s *Service) DuePageOf(ctx context.Context, scope Scope, req DuePageRequest) (*DuePage, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectApplications); err != nil {
		return nil, err
	}
	limit, err := pageSize(req.Limit)
	if err != nil {
		return nil, err
	}
	var after rotation.DueCursor
	if req.Cursor != "" {
		var c dueCursor
		if err := decodeCursor(req.Cursor, &c); err != nil || c.ObjectID == "" {
			return nil, &InvalidError{Field: "cursor", Message: "is not a cursor of the plan (pass next_cursor back unchanged)"}
		}
		after = rotation.DueCursor{Name: c.Name, ObjectID: c.ObjectID}
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	page := &DuePage{Rows: []DueApplication{}}
	var more bool
	err = s.engine.EachDueAfter(ctx, scope.Org, pols, after, func(due []rotation.DueApp) error {
		for i := range due {
			if !scope.Owned.Has(due[i].App.ObjectID) {
				continue
			}
			if len(page.Rows) == limit {
				more = true
				return errPageFull
			}
			page.Rows = append(page.Rows, DueApplication{Application: refOf(&due[i].App), Policy: due[i].Policy.Name, Decision: due[i].Decision})
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if more {
		last := page.Rows[len(page.Rows)-1].Application
		page.Next = encodeCursor(dueCursor{Name: last.Name, ObjectID: last.ObjectID})
	}
	return page, nil
}

// lookup finds the application ref names in the organization, with the
// policy that governs it, and checks rotor may rotate it: what every
// rotate use case needs before it touches anything.
func (s *Service) lookup(ctx context.Context, scope Scope, pols Policies, ref string) (*domain.Application, *domain.Policy, error) {
	a, err := s.getApp(ctx, scope, ref)
	if err != nil {
		return nil, nil, err
	}
	pol := pols.PolicyFor(*a)
	if pol == nil {
		return nil, nil, &NoPolicyError{App: refOf(a)}
	}
	if !a.CanChange(pol.Connection) {
		return nil, nil, &NotManageableError{App: refOf(a), Policy: pol.Name, Connection: pol.Connection}
	}
	return a, pol, nil
}

// GetApplication finds one application by reference (object id, app id
// or display name) and returns it with its credentials.
func (s *Service) GetApplication(ctx context.Context, scope Scope, ref string) (*ApplicationDetail, error) {
	if err := s.begin(ctx, scope, ActionRead, ApplicationObject(ref)); err != nil {
		return nil, err
	}
	a, err := s.getApp(ctx, scope, ref)
	if err != nil {
		return nil, err
	}
	d := detailOf(a)
	s.flagUnheldCertificates(ctx, scope.Org, a, &d)
	return &d, nil
}
