// Package store defines rotor's persistence boundary: the Store interface,
// its parameter types and its errors. Implementations live in sqlite/ (and
// later postgres/); storetest/ is the conformance suite every one of them
// must pass. Only implementations speak SQL.
//
// Every method takes the organization and every query is scoped to it:
// nothing crosses organizations. No secret value is ever passed to, or
// stored by, a Store.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
)

// ErrNotFound is returned when the row asked for does not exist in the org.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a guarded write lost a race: a run
// transition from a state the run is no longer in, or a second active run
// for the same application.
var ErrConflict = errors.New("conflict")

// ErrLeaseLost is returned by a fenced write (one that names a lease
// holder) when the run no longer belongs to that holder: another process
// took the run over, so the caller must stop touching it at once.
var ErrLeaseLost = errors.New("lease lost")

// ErrLeaseHeld is returned by ClaimRun when another holder's lease on the
// run is still live.
var ErrLeaseHeld = errors.New("lease held by another process")

// ErrAmbiguous is returned when a reference names several rows, for
// example two applications with the same display name. The error returned
// is an *AmbiguousError that says which rows matched.
var ErrAmbiguous = errors.New("ambiguous")

// AmbiguousError lists the applications a reference matched, so that the
// CLI and the API can tell the user which object id to use instead.
type AmbiguousError struct {
	Ref string
	// Field is what the reference matched: "object id", "app id" or
	// "display name".
	Field     string
	ObjectIDs []string
}

// Error says what was ambiguous and lists the candidates.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s: %d applications have %s %q (object ids %s); use an object id",
		ErrAmbiguous, len(e.ObjectIDs), e.Field, e.Ref, strings.Join(e.ObjectIDs, ", "))
}

// Is makes errors.Is(err, ErrAmbiguous) true.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// Store is rotor's persistence.
type Store interface {
	// EnsureOrg creates the organization if it does not exist.
	EnsureOrg(ctx context.Context, org domain.OrgID, name string) error

	// SyncApplications writes one page of an inventory sync: each
	// application with its owners and credentials replaces what was stored
	// for it. Applications whose content did not change are not rewritten.
	// It returns how many were inserted or changed. Owners are stored
	// sorted; an application's Org and Connection, when set, must match
	// the params' (the params' win when they are empty). The org must exist
	// (EnsureOrg).
	SyncApplications(ctx context.Context, p SyncApplicationsParams) (changed int, err error)
	// FinishSync forgets the connection's view of the applications that
	// the sync identified by syncStarted did not see, and deletes the
	// applications no connection sees any more (removed from the tenant).
	// It returns how many applications the connection no longer sees.
	FinishSync(ctx context.Context, p FinishSyncParams) (removed int, err error)
	// RemoveApplications forgets the connection's view of applications
	// that change tracking reported gone (deleted in Entra, or no longer
	// visible to the connection), and deletes those no connection sees
	// any more. A view stamped by a sync that started after SyncStarted
	// is kept: that sync saw the application. It returns how many views
	// it removed.
	RemoveApplications(ctx context.Context, p RemoveApplicationsParams) (removed int, err error)
	// ReconcileManageable makes the connection's record of which
	// applications it may change match Owned, the object ids its
	// identity owns now, writing only the views that differ (a view
	// stamped after SyncStarted is left alone). It reports the owned
	// applications the connection does not see and those it no longer
	// owns, which an incremental sync then reads again.
	ReconcileManageable(ctx context.Context, p ReconcileManageableParams) (ReconcileManageableResult, error)
	// GetSyncState returns what the connection's last successful sync
	// left for the next one; ErrNotFound before the first.
	GetSyncState(ctx context.Context, org domain.OrgID, connection string) (*SyncState, error)
	// SaveSyncState records a successful sync of a connection: one row,
	// so that a sync which found nothing new still says it ran. A state
	// recorded by a sync that started later is kept (the call is then a
	// no-op): an older sync's delta link never replaces a newer one. The
	// org must exist.
	SaveSyncState(ctx context.Context, p SaveSyncStateParams) error
	// SetCredentials replaces one application's credentials, as a run just
	// left them, without touching any connection's view of it; the next
	// sync rewrites them from Entra. ErrNotFound when there is no such
	// application.
	SetCredentials(ctx context.Context, p SetCredentialsParams) error
	// GetApplication finds one application by object id, app id or exact
	// display name (in that order). ErrNotFound when nothing matches; an
	// *AmbiguousError (errors.Is ErrAmbiguous) when the first kind of
	// reference that matches names several applications.
	GetApplication(ctx context.Context, org domain.OrgID, ref string) (*domain.Application, error)
	// ListApplications lists applications, ordered by display name then
	// object id, with keyset paging. Each comes with its owners (sorted)
	// and credentials (ordered by end, then key id); both are nil when
	// there are none.
	ListApplications(ctx context.Context, p ListApplicationsParams) ([]domain.Application, error)
	// CountApplications counts the applications of an org (per connection
	// when connection is not empty).
	CountApplications(ctx context.Context, org domain.OrgID, connection string) (int, error)
	// CountOwnedApplications counts the applications the connection's
	// view says it may change (its identity owns them, as of its last
	// sync).
	CountOwnedApplications(ctx context.Context, org domain.OrgID, connection string) (int, error)
	// CountCredentialsByExpiry counts the org's credentials that end at or
	// before each of p.Bounds: one count per bound, in the bounds' order
	// (cumulative: a credential counts for every bound it ends by). It
	// reads no credential, only counts them, in one query (the
	// dashboard's expiry figures at 100,000 applications).
	CountCredentialsByExpiry(ctx context.Context, p CountCredentialsByExpiryParams) ([]int, error)

	// CreateRun journals a new run in state planned, with run.Events if
	// any. It fills in an empty ID, State, CreatedAt and UpdatedAt. It
	// fails with ErrConflict when another active run holds the same
	// application (or the id is taken). Holder, when set, is the process
	// holding the new run's lease. It sets Seq: one more than the highest
	// of the application's runs, decided by the store in the insert's
	// transaction (whatever Seq the caller set).
	CreateRun(ctx context.Context, run *domain.Run) error
	// TransitionRun moves a run from one state to another and appends the
	// event, atomically; ErrConflict when the run is not in From (or the
	// move would make a second active run for the application),
	// ErrNotFound when there is no such run. To must not be in From: a
	// journal line without a state change is AppendRunEvent.
	TransitionRun(ctx context.Context, p TransitionRunParams) error
	// AppendRunEvent adds a journal line without changing state (an empty
	// Event.State is the run's current state); ErrNotFound when there is
	// no such run, ErrLeaseLost when Holder is set and does not hold it.
	AppendRunEvent(ctx context.Context, p AppendRunEventParams) error
	// GetRun returns a run with its events.
	GetRun(ctx context.Context, org domain.OrgID, id string) (*domain.Run, error)
	// ListRuns lists runs newest first, without events.
	ListRuns(ctx context.Context, p ListRunsParams) ([]domain.Run, error)

	// RenewLease creates or extends a holder's lease to now + TTL and
	// returns the new expiry. A holder whose lease expired may renew it,
	// but runs taken over meanwhile stay with their new holder.
	RenewLease(ctx context.Context, p RenewLeaseParams) (expires time.Time, err error)
	// ReleaseLease ends a holder's lease at once (a clean shutdown), so
	// its runs can be taken over without waiting for the expiry.
	ReleaseLease(ctx context.Context, holder string) error
	// CountLiveLeases counts the holders whose lease is live now: the
	// rotor processes sharing the database (replicas that divide Graph's
	// budget between them).
	CountLiveLeases(ctx context.Context) (int, error)
	// ClaimRun makes Holder the run's lease holder when the run has none,
	// already is Holder's, or its holder's lease has expired, renewing
	// Holder's lease to now + TTL in the same transaction; it returns the
	// previous holder. ErrLeaseHeld when another live holder has it,
	// ErrConflict when the run is not in one of States, ErrNotFound when
	// there is no such run. The caller must read the run again after the
	// claim: only what it reads then is the run it holds.
	ClaimRun(ctx context.Context, p ClaimRunParams) (previous string, err error)
	// ReleaseRun gives up Holder's claim on a run without changing its
	// state (a retirement that will be retried later, by any process).
	// Releasing a run Holder does not hold is a no-op.
	ReleaseRun(ctx context.Context, org domain.OrgID, runID, holder string) error
	// FenceRun proves, and extends, Holder's hold on a run before a side
	// effect: in one transaction it checks the run is still Holder's and
	// renews Holder's lease to now + TTL. It returns the lease's new
	// expiry: no other process can take the run over before then, so a
	// side effect that ends before it cannot race a successor.
	// ErrLeaseLost when the run is not Holder's any more. (The run's
	// holder column is the fencing token: a holder whose lease lapsed
	// while nobody claimed its run still holds it.)
	FenceRun(ctx context.Context, p FenceRunParams) (expires time.Time, err error)

	// PinnedTargets returns the sink targets pinned for an application
	// under a policy, by sink index.
	PinnedTargets(ctx context.Context, p PinnedTargetsParams) ([]PinnedTarget, error)
	// PinTarget records (or moves) the target of one sink of a policy for
	// an application. Pinning the target already pinned is a no-op.
	PinTarget(ctx context.Context, p PinTargetParams) error
	// SinkDeliveries returns what rotor last delivered to each sink target
	// of an application, by target id.
	SinkDeliveries(ctx context.Context, p SinkDeliveriesParams) (map[string]SinkDelivery, error)
	// RecordSinkDelivery records (replaces) what rotor last delivered to
	// one target of an application.
	RecordSinkDelivery(ctx context.Context, p RecordSinkDeliveryParams) error

	// PutCertificateDetails records (replaces) what the inventory parsed
	// from certificate credentials' public certificates. Credentials read
	// back carry it (Credential.Certificate) for as long as they exist; a
	// sync that rewrites an application's credentials keeps it.
	PutCertificateDetails(ctx context.Context, p PutCertificateDetailsParams) error
	// CertificatesWithoutDetails lists certificate credentials of a
	// tenant whose certificate has not been read yet, at most Limit, in
	// application order: the inventory's bounded backlog of GETs.
	CertificatesWithoutDetails(ctx context.Context, p CertificatesWithoutDetailsParams) ([]CredentialRef, error)

	// GetApplicationSettings returns one application's own settings
	// (by object id); ErrNotFound when it has none.
	GetApplicationSettings(ctx context.Context, org domain.OrgID, objectID string) (*ApplicationSettings, error)
	// PutApplicationSettings replaces an application's settings, every
	// field (nil: inherit the policy's); settings that set nothing delete
	// the row. ErrNotFound when the org does not exist.
	PutApplicationSettings(ctx context.Context, s ApplicationSettings) error
	// ListApplicationSettings lists an org's application settings by
	// object id.
	ListApplicationSettings(ctx context.Context, org domain.OrgID) ([]ApplicationSettings, error)

	// ListOrgs lists every organization, ordered by id.
	ListOrgs(ctx context.Context) ([]Org, error)
	// GetOrgSettings returns one organization's settings; ErrNotFound
	// when there is no such organization.
	GetOrgSettings(ctx context.Context, org domain.OrgID) (*OrgSettings, error)
	// PutOrgSettings replaces an organization's settings; ErrNotFound
	// when there is no such organization.
	PutOrgSettings(ctx context.Context, s OrgSettings) error

	// UpsertConnection creates or replaces a connection of an org. It
	// fails with *ProvisionedError (ErrProvisioned) when the connection
	// is provisioned and the caller is not provisioning, and ErrConflict
	// when provisioning would take over a connection made elsewhere.
	// ErrNotFound when the org does not exist.
	UpsertConnection(ctx context.Context, p UpsertConnectionParams) error
	// ListConnections lists an org's connections by name.
	ListConnections(ctx context.Context, org domain.OrgID) ([]Connection, error)
	// GetConnection returns one connection of an org; ErrNotFound when the
	// org has none of that name.
	GetConnection(ctx context.Context, org domain.OrgID, name string) (*Connection, error)
	// DeleteConnection deletes a connection of an org, with its view of
	// the inventory and its recorded health; ErrNotFound when there is
	// none, ErrProvisioned as UpsertConnection.
	DeleteConnection(ctx context.Context, p DeleteParams) error

	// RecordConnectionHealth records one outcome of signing a connection
	// in or syncing through it, as any rotor process saw it: a success
	// moves LastSuccess (and Roles, when not nil) forward, a failure
	// LastFailure, Failure and AADSTS; an older outcome than the one
	// recorded never replaces it. Failure must never hold a secret.
	RecordConnectionHealth(ctx context.Context, p ConnectionHealth) error
	// ListConnectionHealth lists what is recorded for an org's
	// connections, by name.
	ListConnectionHealth(ctx context.Context, org domain.OrgID) ([]ConnectionHealth, error)

	// UpsertPolicy creates or replaces a policy of an org. Its connection
	// must be one of the org's (ErrNotFound otherwise); provisioned
	// policies are guarded as connections are.
	UpsertPolicy(ctx context.Context, p UpsertPolicyParams) error
	// ListPolicies lists an org's policies in the order that decides which
	// one governs an application: provisioned ones first by position,
	// then the others by position, then name.
	ListPolicies(ctx context.Context, org domain.OrgID) ([]Policy, error)
	// GetPolicy returns one policy of an org; ErrNotFound when none.
	GetPolicy(ctx context.Context, org domain.OrgID, name string) (*Policy, error)
	// DeletePolicy deletes a policy; errors as DeleteConnection.
	DeletePolicy(ctx context.Context, p DeleteParams) error

	// Provision makes an org's provisioned connections and policies
	// exactly those of p, in one transaction: it creates the org if
	// needed, creates and updates what p holds (leaving unchanged rows
	// untouched, so a second call with the same p writes nothing), and
	// deletes provisioned objects p no longer holds. Objects made
	// elsewhere are never touched; one that shares a name with an
	// object of p fails the whole call with ErrConflict.
	Provision(ctx context.Context, p ProvisionParams) (ProvisionResult, error)

	// AppendAudit appends r to its organization's audit trail and returns
	// it as stored: Normalized (audit.Normalize; a zero At is the store's
	// clock's now), numbered one past the organization's head, and its
	// Hash chained to the head's (audit.Link), whatever Seq and Hash the
	// caller set. Numbering, insert and moving the head happen in one
	// transaction under a lock per organization, so processes appending
	// to one organization at once keep its chain whole. There is no way
	// to change or delete a record. ErrNotFound when the org does not
	// exist; ErrConflict when the number past the head is taken (the head
	// was moved back or deleted behind rotor's back: the trail then
	// stops growing rather than hide it).
	AppendAudit(ctx context.Context, r audit.Record) (audit.Record, error)
	// ListAudit lists an organization's audit records by Seq (ascending,
	// or descending when asked), filtered and keyset-paged.
	ListAudit(ctx context.Context, p ListAuditParams) ([]audit.Record, error)
	// AuditHead returns an organization's audit head: the Seq and Hash of
	// its newest record. ErrNotFound before the first record.
	AuditHead(ctx context.Context, org domain.OrgID) (audit.Head, error)
	// APIKeyStore keeps rotor-issued API keys (as hashes).
	APIKeyStore
	// SessionStore keeps people's sign-in sessions (as hashes).
	SessionStore
	// LocalAdminStore keeps the break-glass admins (password hashes).
	LocalAdminStore

	// Close releases the store.
	Close() error
}

// ApplicationSettings are one application's own settings, as stored: by
// organization and application object id (not tenant: an object id is
// unique), whether or not the application is in the inventory now, so a
// setting survives the application's disappearing from a sync and coming
// back. They hold no secret: a Key Vault URL and secret name say where a
// value goes, not what it is.
type ApplicationSettings struct {
	Org      domain.OrgID
	ObjectID string
	Settings domain.AppSettings
	// UpdatedAt and UpdatedBy ("kind:id", the actor) say who set them
	// last; a zero UpdatedAt is the store's clock's now.
	UpdatedAt time.Time
	UpdatedBy string
}

// ListAuditParams filters and pages an organization's audit records.
// Zero fields do not filter.
type ListAuditParams struct {
	Org domain.OrgID
	// AfterSeq and BeforeSeq keep records with Seq greater than AfterSeq
	// and less than BeforeSeq: the cursor of the next page, ascending or
	// descending.
	AfterSeq, BeforeSeq int64
	// Descending lists the newest first.
	Descending bool
	// Since and Until keep records with Since <= At < Until.
	Since, Until time.Time
	// ActorKind and ActorID keep one kind of actor, or one actor.
	ActorKind, ActorID string
	// Outcome keeps records of one outcome (ok, denied, failed).
	Outcome string
	// ActorMatch keeps records whose actor's id or name contains it,
	// ignoring ASCII case (the UI's "who" search: part of a UPN).
	ActorMatch string
	// Action and Object keep records of one action, or on one object
	// (exactly as recorded: "application:REF", "run:ID", …).
	Action, Object string
	// Run keeps records that name the run: a step of it, or a call that
	// started or acted on it.
	Run string
	// Limit caps the records returned (0: no cap).
	Limit int
}

// SyncApplicationsParams is one page of applications from a connection.
type SyncApplicationsParams struct {
	Org        domain.OrgID
	Connection string
	// SyncStarted identifies the sync run; every application written is
	// stamped seen at this time.
	SyncStarted  time.Time
	Applications []domain.Application
	// KeepCanChange says the page does not yet know which applications
	// the connection may change (its ownership is still being read): a
	// view the store holds keeps its CanChange, a new one starts as may
	// not change, and ReconcileManageable settles it. Manageable is then
	// ignored.
	KeepCanChange bool
}

// RemoveApplicationsParams names applications a connection no longer sees.
type RemoveApplicationsParams struct {
	Org        domain.OrgID
	Connection string
	// ObjectIDs are application object ids (a connection reaches one
	// tenant).
	ObjectIDs []string
	// SyncStarted is the start of the sync that found them gone.
	SyncStarted time.Time
}

// ReconcileManageableParams is what a connection's identity owns now.
type ReconcileManageableParams struct {
	Org        domain.OrgID
	Connection string
	// Owned are the object ids of the applications the identity owns.
	Owned []string
	// SyncStarted is the start of the sync that read Owned; changed
	// views are stamped with it.
	SyncStarted time.Time
}

// ReconcileManageableResult is what ReconcileManageable found.
type ReconcileManageableResult struct {
	// Missing are owned applications the connection has no view of (it
	// was given ownership of an application it could not see before,
	// or change tracking did not report one).
	Missing []string
	// Lost are applications the connection could change and no longer
	// owns; their views now say so.
	Lost []string
	// Gained counts views that now say the connection may change them.
	Gained int
	// Manageable counts the connection's views that say it may change
	// the application, after the reconciliation.
	Manageable int
}

// SyncState is what a connection's last successful inventory sync left
// for the next: where Graph's change tracking resumes, and when the
// connection last synced. It holds no secret: a delta link is Graph's
// URL with an opaque state token, worth nothing without a bearer token of
// an identity that may read the applications.
type SyncState struct {
	Org        domain.OrgID
	Connection string
	// Scope names what DeltaLink is valid for (the tenant and the
	// identity that read it); a sync whose scope differs starts over.
	Scope string
	// DeltaLink is Graph's @odata.deltaLink; "" when there is none.
	DeltaLink string
	// SyncedAt is the SyncStarted of the last successful sync, full or
	// incremental: every view of the connection is as of then.
	SyncedAt time.Time
	// FullAt is the SyncStarted of the last successful full sync (zero
	// when there has been none).
	FullAt time.Time
}

// SaveSyncStateParams records a successful sync.
type SaveSyncStateParams struct {
	Org         domain.OrgID
	Connection  string
	Scope       string
	DeltaLink   string
	SyncStarted time.Time
	// Full says the sync listed every application; FullAt moves to
	// SyncStarted.
	Full bool
}

// SetCredentialsParams replaces one application's credentials.
type SetCredentialsParams struct {
	Org         domain.OrgID
	TenantID    string
	ObjectID    string
	Credentials []domain.Credential
}

// AppendRunEventParams adds one journal line.
type AppendRunEventParams struct {
	Org   domain.OrgID
	RunID string
	// Holder, when set, fences the write: it must hold the run's lease.
	Holder string
	Event  domain.RunEvent
}

// RenewLeaseParams renews a process's lease.
type RenewLeaseParams struct {
	Holder string
	// Description says which process holds it, for people.
	Description string
	TTL         time.Duration
}

// ClaimRunParams takes a run's lease.
type ClaimRunParams struct {
	Org    domain.OrgID
	RunID  string
	Holder string
	TTL    time.Duration
	// States are the states the caller expects the run in: the claim is a
	// compare-and-set on the holder and the state together, so a run that
	// moved on since the caller read it (ErrConflict) is not taken over on
	// a stale reading. Empty: any state.
	States []domain.RunState
}

// FenceRunParams checks and extends a holder's hold on a run.
type FenceRunParams struct {
	Org    domain.OrgID
	RunID  string
	Holder string
	TTL    time.Duration
}

// PinnedTarget is where one sink of a policy delivers for an application.
type PinnedTarget struct {
	SinkIndex int
	SinkType  string
	// Target is the sink's target id (sink.TargetID's spelling).
	Target   string
	PinnedAt time.Time
	// PinnedByRun is the run whose delivery pinned it.
	PinnedByRun string
	// Previous is the target this one replaced when it was moved; it
	// keeps receiving new credentials until RetireOldAt.
	Previous    string
	RetireOldAt time.Time
}

// SinkDelivery is what rotor last delivered to one sink target (see
// sink.Delivered): never a value.
type SinkDelivery struct {
	// Target is the sink's target id (sink.TargetID's spelling).
	Target string
	KeyID  string
	// Version is what the target reported after the write; empty for a
	// claim recorded before writing to an absent target.
	Version     string
	RunID       string
	DeliveredAt time.Time
}

// PutCertificateDetailsParams records the details of certificates of
// one tenant.
type PutCertificateDetailsParams struct {
	Org      domain.OrgID
	TenantID string
	Details  []CertificateDetails
}

// CertificateDetails is one certificate credential's parsed certificate.
type CertificateDetails struct {
	AppObjectID string
	KeyID       string
	Info        domain.CertificateInfo
}

// CertificatesWithoutDetailsParams bounds the backlog listing.
type CertificatesWithoutDetailsParams struct {
	Org      domain.OrgID
	TenantID string
	Limit    int
}

// CredentialRef names one credential of one application.
type CredentialRef struct {
	AppObjectID string
	KeyID       string
}

// SinkDeliveriesParams names an application.
type SinkDeliveriesParams struct {
	Org         domain.OrgID
	TenantID    string
	AppObjectID string
}

// RecordSinkDeliveryParams records one delivery.
type RecordSinkDeliveryParams struct {
	Org         domain.OrgID
	TenantID    string
	AppObjectID string
	Delivery    SinkDelivery
}

// PinnedTargetsParams names an application and a policy.
type PinnedTargetsParams struct {
	Org         domain.OrgID
	TenantID    string
	AppObjectID string
	Policy      string
}

// PinTargetParams pins one target.
type PinTargetParams struct {
	Org         domain.OrgID
	TenantID    string
	AppObjectID string
	Policy      string
	Target      PinnedTarget
}

// FinishSyncParams closes a sync.
type FinishSyncParams struct {
	Org         domain.OrgID
	Connection  string
	SyncStarted time.Time
}

// ListApplicationsParams filters and pages applications.
type ListApplicationsParams struct {
	Org        domain.OrgID
	Connection string // empty: every connection
	// ExpiringBefore keeps applications with any credential ending before
	// it (zero: no filter).
	ExpiringBefore time.Time
	// ManageableOnly keeps applications rotor can change.
	ManageableOnly bool
	// NamePrefix keeps applications whose display name starts with it.
	NamePrefix string
	// Order is the order of the rows (OrderByName when empty).
	Order AppOrder
	// AfterName and AfterObjectID continue after the last row of a page;
	// with OrderByExpiry AfterMinEnd is that row's earliest credential end
	// (codec.MinEnd of its credentials; zero when it has none).
	AfterName     string
	AfterObjectID string
	AfterMinEnd   time.Time
	// RenewableBefore keeps applications that may be due for renewal
	// before it: those with no rotor-made credential (display name
	// rotor:<run id>) ending after it, which includes those with none
	// (adoption). Zero: no filter. The plan decides only these.
	RenewableBefore time.Time
	// Limit caps the rows returned (0: no cap).
	Limit int
	// ObjectIDs, when not nil, keeps only the applications with these
	// object ids (an empty, non-nil list keeps none): a person who may see
	// only the applications they own in Entra (app.OwnedSet). The
	// restriction is in the query, so pages stay full and keyset paging
	// stays exact.
	ObjectIDs []string
}

// CountCredentialsByExpiry's parameters.
type CountCredentialsByExpiryParams struct {
	Org domain.OrgID
	// Bounds are the times to count up to (inclusive), in any order; at
	// most 64.
	Bounds []time.Time
	// ObjectIDs, when not nil, counts only the credentials of these
	// applications (by object id; empty and non-nil: none), as
	// ListApplicationsParams.ObjectIDs.
	ObjectIDs []string
}

// MaxExpiryBounds caps CountCredentialsByExpiryParams.Bounds: each is one
// aggregate of the single query.
const MaxExpiryBounds = 64

// AppOrder is the order ListApplications returns applications in. Each is
// total (it ends with the object id), so keyset pages neither skip nor
// repeat a row.
type AppOrder string

// Application orders.
const (
	// OrderByName is display name, then object id.
	OrderByName AppOrder = ""
	// OrderByExpiry is the earliest credential end first (expired ones
	// included: they are the most urgent), then display name and object
	// id; applications without credentials come last.
	OrderByExpiry AppOrder = "expiry"
)

// TransitionRunParams describes one guarded state change of a run. Zero
// fields leave the run's column unchanged. The run's UpdatedAt becomes
// Event.At (the store's clock when zero), and EndedAt too when To is
// terminal; an empty Event.State is To.
type TransitionRunParams struct {
	Org   domain.OrgID
	RunID string
	// Holder, when set, fences the transition: it happens only while
	// Holder holds the run's lease (ErrLeaseLost otherwise).
	Holder string
	// Release clears the run's lease holder with the transition (a run
	// that reached retiring or ended belongs to no process).
	Release      bool
	From         []domain.RunState
	To           domain.RunState
	NewKeyID     string
	NewEnd       time.Time
	SinksStarted bool
	RetireAt     time.Time
	Error        string
	// Failure classifies a run moved to failed.
	Failure domain.FailureClass
	Event   domain.RunEvent
}

// ListRunsParams filters runs.
type ListRunsParams struct {
	Org domain.OrgID
	// AppObjectID keeps one application's runs.
	AppObjectID string
	// States keeps runs in these states (empty: all).
	States []domain.RunState
	// Triggers keeps runs started for these reasons (empty: all).
	Triggers []domain.Trigger
	// Orphaned keeps runs whose lease holder is gone: none, or one whose
	// lease has expired.
	Orphaned bool
	// BeforeCreatedAt and BeforeID continue after the last run of a page
	// (runs are newest first: created_at, then id, both descending).
	BeforeCreatedAt time.Time
	BeforeID        string
	// Limit caps the runs returned (0: no cap).
	Limit int
	// AppObjectIDs, when not nil, keeps only the runs of these
	// applications (by object id; empty and non-nil: none), as
	// ListApplicationsParams.ObjectIDs.
	AppObjectIDs []string
}

// ConnectionHealth is a connection's last sign-in or sync outcomes. For
// RecordConnectionHealth exactly one of Success and Failure is set.
type ConnectionHealth struct {
	Org        domain.OrgID
	Connection string
	// Success and Failure say which outcome a record is; At is when.
	Success, Failure bool
	At               time.Time
	// LastSuccess and LastFailure are what ListConnectionHealth returns.
	LastSuccess, LastFailure time.Time
	// Message is the last failure in rotor's words (never a secret), at
	// most 1 KiB; AADSTS Entra's code, 0 when not Entra's refusal.
	Message string
	AADSTS  int
	// Roles are the Graph application roles the connection's last token
	// carried; nil leaves them as recorded.
	Roles []string
}
