package api

import (
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sink"
)

// The API's own types: what the wire carries, documented field by field,
// mapped from the application layer's results. They hold no store row and
// no secret value (a new API key is shown once, in APIKeyCreated).

// ApplicationRef names an application.
type ApplicationRef struct {
	Name     string `json:"name" doc:"Display name."`
	AppID    string `json:"app_id" doc:"Application (client) id."`
	ObjectID string `json:"object_id" doc:"Object id: names the application alone, in its tenant."`
	TenantID string `json:"tenant_id" doc:"Directory (tenant) id."`
}

func refOf(r app.ApplicationRef) ApplicationRef {
	return ApplicationRef{Name: r.Name, AppID: r.AppID, ObjectID: r.ObjectID, TenantID: r.TenantID}
}

// Application is one line of the application listing.
type Application struct {
	ApplicationRef
	Connections []string  `json:"connections" doc:"The connections that see it."`
	Manageable  bool      `json:"manageable" doc:"Some connection may change its credentials (rotor's rotation identity owns it)."`
	Secrets     int       `json:"secrets" doc:"How many client secrets it has."`
	Certs       int       `json:"certificates" doc:"How many certificates it has."`
	NextExpiry  time.Time `json:"next_expiry,omitzero" doc:"The earliest end of a credential still valid."`
	EarliestEnd time.Time `json:"earliest_end,omitzero" doc:"The earliest end of any credential, expired ones included: what sort=expiry orders by."`
	Policy      string    `json:"policy,omitempty" doc:"The policy that governs it."`
	Status      string    `json:"status" doc:"What rotor will do, for people: 'due now (adoption)', 'due in 19d 23h', 'not manageable'."`
	Reason      string    `json:"reason" doc:"The planner's decision, stable for machines (Due, NotYetDue, NoPolicy, NotManageable, …)."`
	Due         bool      `json:"due" doc:"The planner would rotate it now."`
	DueAt       time.Time `json:"due_at,omitzero" doc:"When it falls due."`
}

func applicationOf(r app.ApplicationRow) Application {
	conns := []string{}
	if r.Connection != "" {
		conns = strings.Split(r.Connection, ",")
	}
	return Application{
		ApplicationRef: ApplicationRef{Name: r.Name, AppID: r.AppID, ObjectID: r.ObjectID, TenantID: r.TenantID},
		Connections:    conns, Manageable: r.Manageable, Secrets: r.Secrets, Certs: r.Certs,
		NextExpiry: r.NextExpiry, EarliestEnd: r.EarliestEnd, Policy: r.Policy, Status: r.Status, Reason: r.Reason, Due: r.Due, DueAt: r.DueAt,
	}
}

// ApplicationList is a page of applications.
type ApplicationList struct {
	Items      []Application `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty" doc:"Pass as cursor to get the next page; absent on the last page."`
}

// Access is what one connection may do with an application.
type Access struct {
	Connection string `json:"connection"`
	CanChange  bool   `json:"can_change" doc:"The connection's identity may change the application's credentials."`
}

// Credential is one client secret or certificate, as the inventory last
// saw it: never a value (Entra shows only the hint).
type Credential struct {
	KeyID             string             `json:"key_id"`
	Kind              string             `json:"kind" enum:"secret,certificate"`
	DisplayName       string             `json:"display_name"`
	Hint              string             `json:"hint" doc:"The first characters Entra shows of a secret."`
	Start             time.Time          `json:"start"`
	End               time.Time          `json:"end"`
	CreatedByRotor    bool               `json:"created_by_rotor"`
	Thumbprint        string             `json:"thumbprint,omitempty" doc:"A certificate's SHA-1 thumbprint, upper-case hex (Entra's customKeyIdentifier)."`
	Certificate       *CertificateDetail `json:"certificate,omitempty" doc:"What the certificate says, once the inventory has read it (Graph lists no certificate bodies)."`
	PrivateKeyUnknown bool               `json:"private_key_unknown,omitempty" doc:"A certificate rotor created whose private key no sink holds: usable by no consumer rotor knows. Rotate the application, or remove the certificate."`
}

// CertificateDetail is a certificate credential's public certificate.
type CertificateDetail struct {
	ThumbprintSHA256 string    `json:"thumbprint_sha256" doc:"SHA-256 of the DER certificate, upper-case hex."`
	Subject          string    `json:"subject"`
	Issuer           string    `json:"issuer"`
	KeyAlgorithm     string    `json:"key_algorithm" doc:"RSA, EC P-256, EC P-384, Ed25519, or unreadable."`
	KeySize          int       `json:"key_size" doc:"Bits."`
	NotBefore        time.Time `json:"not_before,omitzero"`
	NotAfter         time.Time `json:"not_after,omitzero"`
}

// ApplicationDetail is one application with its credentials.
type ApplicationDetail struct {
	ApplicationRef
	Access      []Access     `json:"access" doc:"Which connections see it and which may change it."`
	Manageable  bool         `json:"manageable"`
	Credentials []Credential `json:"credentials"`
	CreatedAt   time.Time    `json:"created_at,omitzero" doc:"When Entra created the application."`
	Owners      int          `json:"owners" doc:"How many directory objects own it."`
	OwnerIDs    []string     `json:"owner_ids" doc:"The object ids of its owners."`
	SyncedAt    time.Time    `json:"synced_at" doc:"When a sync last saw it."`
}

func detailOf(d app.ApplicationDetail) ApplicationDetail {
	out := ApplicationDetail{
		ApplicationRef: ApplicationRef{Name: d.Name, AppID: d.AppID, ObjectID: d.ObjectID, TenantID: d.TenantID},
		Access:         make([]Access, 0, len(d.Access)), Manageable: d.Manageable, SyncedAt: d.SyncedAt,
		CreatedAt: d.CreatedAt, Owners: d.Owners, OwnerIDs: d.OwnerIDs,
		Credentials: make([]Credential, 0, len(d.Credentials)),
	}
	for _, a := range d.Access {
		out.Access = append(out.Access, Access{Connection: a.Connection, CanChange: a.CanChange})
	}
	for _, c := range d.Credentials {
		cr := Credential{KeyID: c.KeyID, Kind: string(c.Kind), DisplayName: c.DisplayName, Hint: c.Hint,
			Start: c.Start, End: c.End, CreatedByRotor: c.CreatedByRotor, Thumbprint: c.Thumbprint, PrivateKeyUnknown: c.PrivateKeyUnknown}
		if x := c.Certificate; x != nil {
			cr.Certificate = &CertificateDetail{ThumbprintSHA256: x.ThumbprintSHA256, Subject: x.Subject, Issuer: x.Issuer,
				KeyAlgorithm: x.KeyAlgorithm, KeySize: x.KeySize, NotBefore: x.NotBefore, NotAfter: x.NotAfter}
		}
		out.Credentials = append(out.Credentials, cr)
	}
	return out
}

// Check is one link of the chain behind a decision.
type Check struct {
	Name    string `json:"name"`
	Result  string `json:"result" enum:"pass,stop,info"`
	Reason  string `json:"reason" doc:"Stable for machines (CamelCase)."`
	Message string `json:"message" doc:"One sentence for people."`
}

// Decision is whether an application is due, and why.
type Decision struct {
	Due     bool      `json:"due"`
	DueAt   time.Time `json:"due_at,omitzero" doc:"Absent when never (no policy, not manageable, …)."`
	Trigger string    `json:"trigger,omitempty" doc:"What makes it due (adoption, due, …)."`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Checks  []Check   `json:"checks"`
}

func decisionOf(d domain.Decision) Decision {
	out := Decision{Due: d.Due, DueAt: d.DueAt, Trigger: string(d.Trigger), Reason: d.Reason, Message: d.Message, Checks: make([]Check, 0, len(d.Checks))}
	for _, c := range d.Checks {
		out.Checks = append(out.Checks, Check{Name: c.Name, Result: string(c.Result), Reason: c.Reason, Message: c.Message})
	}
	return out
}

// PinnedTarget is where one sink of the governing policy delivers, as
// pinned at its first delivery.
type PinnedTarget struct {
	Sink        int       `json:"sink" doc:"The sink's index in the policy, from 0."`
	Type        string    `json:"type"`
	Target      string    `json:"target"`
	PinnedAt    time.Time `json:"pinned_at"`
	PinnedByRun string    `json:"pinned_by_run,omitempty"`
	Previous    string    `json:"previous,omitempty" doc:"The target a move replaced, still written until retire_old_at."`
	RetireOldAt time.Time `json:"retire_old_at,omitzero"`
	// LastDelivery is what rotor last delivered there.
	LastDelivery *SinkDelivery `json:"last_delivery,omitempty" doc:"What rotor last delivered to this target; absent when nothing was recorded."`
	// Drift says whether the target changed since.
	Drift *SinkDrift `json:"drift,omitempty" doc:"Whether the target changed since rotor's last delivery; absent when the sink cannot tell."`
}

// Explanation answers "why is this application (not) due?".
type Explanation struct {
	Application ApplicationDetail `json:"application"`
	Policy      string            `json:"policy,omitempty"`
	Decision    Decision          `json:"decision"`
	Ref         string            `json:"ref" doc:"How to name it so that it alone is found: its display name, or its object id when another shares the name."`
	Targets     []PinnedTarget    `json:"targets"`
	At          time.Time         `json:"at" doc:"When the decision was made."`
}

func explanationOf(e *app.Explanation) Explanation {
	out := Explanation{Application: detailOf(e.Application), Policy: e.Policy, Decision: decisionOf(e.Decision), Ref: e.Ref, At: e.At,
		Targets: make([]PinnedTarget, 0, len(e.Targets))}
	for _, t := range e.Targets {
		out.Targets = append(out.Targets, PinnedTarget{Sink: t.Sink, Type: t.Type, Target: t.Target, PinnedAt: t.PinnedAt,
			PinnedByRun: t.PinnedByRun, Previous: t.Previous, RetireOldAt: t.RetireOldAt,
			LastDelivery: sinkDeliveryOf(t.LastDelivery), Drift: sinkDriftOf(t.Drift)})
	}
	return out
}

func sinkDeliveryOf(d *sink.Delivered) *SinkDelivery {
	if d == nil {
		return nil
	}
	return &SinkDelivery{KeyID: d.KeyID, Version: d.Version, RunID: d.RunID, At: d.At}
}

func sinkDriftOf(d *sink.Drift) *SinkDrift {
	if d == nil {
		return nil
	}
	return &SinkDrift{Drifted: d.Drifted, Reason: d.Reason, Current: d.Current}
}

// Target is where one sink of an application's policy delivers today.
type Target struct {
	Sink        int       `json:"sink" doc:"The sink's index in the policy, from 0."`
	Type        string    `json:"type"`
	Target      string    `json:"target" doc:"Where rotor delivers: the pinned target, or what the configuration names when nothing is pinned yet."`
	Pinned      bool      `json:"pinned"`
	Today       string    `json:"today" doc:"What the configuration names now; differs from target after a rename (moved)."`
	Moved       bool      `json:"moved"`
	Previous    string    `json:"previous,omitempty"`
	RetireOldAt time.Time `json:"retire_old_at,omitzero"`
	PinnedByRun string    `json:"pinned_by_run,omitempty"`
}

func targetOf(v rotation.TargetView) Target {
	return Target{Sink: v.Index, Type: v.Type, Target: v.Target.String(), Pinned: v.Pinned, Today: v.Today.String(), Moved: v.Moved,
		Previous: v.Previous.String(), RetireOldAt: v.RetireOldAt, PinnedByRun: v.PinnedByRun}
}

// ApplicationTargets are the targets of an application's policy.
type ApplicationTargets struct {
	Application ApplicationRef `json:"application"`
	Policy      string         `json:"policy"`
	Targets     []Target       `json:"targets"`
}

// PlanItem is an application the planner would rotate now.
type PlanItem struct {
	Application ApplicationRef `json:"application"`
	Policy      string         `json:"policy"`
	Decision    Decision       `json:"decision"`
}

// Plan is a page of what the planner would rotate now: a dry run.
type Plan struct {
	Items      []PlanItem `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty" doc:"Pass as cursor to get the next page; absent on the last page."`
}

// RotationQueued is a rotation handed to the job system.
type RotationQueued struct {
	Application ApplicationRef `json:"application"`
	Policy      string         `json:"policy"`
	Status      string         `json:"status" enum:"queued" doc:"The rotation is queued; a running rotor carries it out (follow it in runs)."`
}

// Run is one line of the run listing.
type Run struct {
	ID          string    `json:"id"`
	Application string    `json:"application" doc:"The application's display name when the run started."`
	AppID       string    `json:"app_id"`
	ObjectID    string    `json:"app_object_id"`
	Policy      string    `json:"policy"`
	Trigger     string    `json:"trigger"`
	State       string    `json:"state" enum:"planned,created,propagated,verified,retiring,done,failed,abandoned"`
	NewKeyID    string    `json:"new_key_id,omitempty" doc:"The key id of the credential the run created."`
	Error       string    `json:"error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	RetireAt    time.Time `json:"retire_at,omitzero" doc:"When the credentials it replaced may be removed."`
	Replaces    string    `json:"replaces,omitempty" doc:"The run it recovers from."`
	Failure     string    `json:"failure,omitempty" doc:"For a failed run: transient, permanent or removed."`
	Seq         int64     `json:"seq,omitempty" doc:"Its place among its application's runs (1, 2, …)."`
}

func runOf(r app.RunRow) Run {
	return Run{ID: r.ID, Application: r.App, AppID: r.AppID, ObjectID: r.ObjectID, Policy: r.Policy, Trigger: string(r.Trigger), State: string(r.State),
		NewKeyID: r.NewKeyID, Error: r.Error, CreatedAt: r.CreatedAt, RetireAt: r.RetireAt, Replaces: r.Replaces,
		Failure: string(r.Failure), Seq: r.Seq}
}

// RunList is a page of runs, newest first.
type RunList struct {
	Items      []Run  `json:"items"`
	NextCursor string `json:"next_cursor,omitempty" doc:"Pass as cursor to get the next page; absent on the last page."`
}

// RunEvent is one line of a run's journal.
type RunEvent struct {
	At      time.Time `json:"at"`
	State   string    `json:"state"`
	Step    string    `json:"step" doc:"The journal step: planned, created, replicating, sink:0:writing, sink:0:written, verified, retiring, done, …"`
	Target  string    `json:"target,omitempty" doc:"The sink target a sink step wrote."`
	Message string    `json:"message"`
}

// RunDetail is one run with its journal.
type RunDetail struct {
	Run
	Connection   string     `json:"connection" doc:"The connection it rotates through."`
	SinksStarted bool       `json:"sinks_started" doc:"A sink write was attempted: a consumer may hold the new credential."`
	UpdatedAt    time.Time  `json:"updated_at"`
	Holder       string     `json:"holder,omitempty" doc:"The rotor process holding it while it is active or retiring."`
	Kind         string     `json:"kind"`
	TenantID     string     `json:"tenant_id"`
	Attempts     int        `json:"attempts"`
	NewEnd       time.Time  `json:"new_end,omitzero" doc:"When the new credential ends."`
	EndedAt      time.Time  `json:"ended_at,omitzero"`
	Events       []RunEvent `json:"events"`
}

func runDetailOf(r *domain.Run) RunDetail {
	out := RunDetail{
		Run: Run{ID: r.ID, Application: r.AppName, AppID: r.AppID, ObjectID: r.AppObjectID, Policy: r.Policy, Trigger: string(r.Trigger), State: string(r.State),
			NewKeyID: r.NewKeyID, Error: r.Error, CreatedAt: r.CreatedAt, RetireAt: r.RetireAt, Replaces: r.Replaces,
			Failure: string(r.Failure), Seq: r.Seq},
		Connection: r.Connection, SinksStarted: r.SinksStarted, UpdatedAt: r.UpdatedAt, Holder: r.Holder,
		Kind: string(r.Kind), TenantID: r.TenantID, Attempts: r.Attempts, NewEnd: r.NewEnd, EndedAt: r.EndedAt,
		Events: make([]RunEvent, 0, len(r.Events)),
	}
	for _, e := range r.Events {
		out.Events = append(out.Events, RunEvent{At: e.At, State: string(e.State), Step: e.Step.String(), Target: e.Target, Message: e.Message})
	}
	return out
}

// Policy is a rotation policy. Sinks are listed by type: their settings
// may name secret references, and where a sink delivers is per
// application (targets).
type Policy struct {
	Name            string             `json:"name"`
	Connection      string             `json:"connection"`
	Applications    string             `json:"applications" doc:"Which applications it selects."`
	Enabled         bool               `json:"enabled"`
	Kind            string             `json:"kind" enum:"secret,certificate"`
	Lifetime        string             `json:"lifetime" doc:"How long each new credential is valid (90d)."`
	RenewBefore     string             `json:"renew_before" doc:"Rotate this long before the newest rotor credential ends (30d)."`
	Overlap         string             `json:"overlap" doc:"How long older credentials stay valid after a rotation (24h)."`
	NotifyBefore    string             `json:"notify_before"`
	Verify          bool               `json:"verify"`
	RetireUnmanaged bool               `json:"retire_unmanaged"`
	Sinks           []string           `json:"sinks" doc:"The sinks' types, in order."`
	Certificate     *PolicyCertificate `json:"certificate,omitempty" doc:"How a kind: certificate policy makes its certificates."`
}

// PolicyCertificate is a certificate policy's settings (docs/configuration.md, Certificates).
type PolicyCertificate struct {
	KeyType   string   `json:"key_type" doc:"rsa-2048, rsa-3072 or rsa-4096."`
	Subject   string   `json:"subject"`
	DNSNames  []string `json:"dns_names"`
	KeySource string   `json:"key_source" enum:"local,keyvault-key,keyvault-certificate"`
	VaultURL  string   `json:"vault_url,omitempty"`
	VaultName string   `json:"vault_name,omitempty"`
	HSM       bool     `json:"hsm,omitempty"`
	Bootstrap bool     `json:"bootstrap" doc:"Whether a bootstrap certificate is configured (never where it is kept)."`
}

func policyOf(p app.PolicyRow) Policy {
	out := Policy{Name: p.Name, Connection: p.Connection, Applications: p.Selector, Enabled: p.Enabled, Kind: string(p.Kind),
		Lifetime: p.Lifetime, RenewBefore: p.RenewBefore, Overlap: p.Overlap, NotifyBefore: p.NotifyBefore,
		Verify: p.Verify, RetireUnmanaged: p.RetireUnmanaged, Sinks: p.Sinks}
	if c := p.Certificate; c != nil {
		out.Certificate = &PolicyCertificate{KeyType: c.KeyType, Subject: c.Subject, DNSNames: c.DNSNames, KeySource: c.KeySource,
			VaultURL: c.VaultURL, VaultName: c.VaultName, HSM: c.HSM, Bootstrap: c.Bootstrap}
	}
	return out
}

// PolicyList is every policy, in the order that decides which governs an
// application.
type PolicyList struct {
	Items []Policy `json:"items"`
}

// Connection is how rotor reaches one tenant for one purpose, with its
// health: never a secret or where one is kept.
type Connection struct {
	Name             string    `json:"name"`
	TenantID         string    `json:"tenant_id"`
	Purpose          string    `json:"purpose" enum:"rotation,read,automation,vm"`
	Cloud            string    `json:"cloud" enum:"public,usgov,china,sim"`
	Identity         string    `json:"identity" doc:"How it signs in: client_secret, certificate, managed_identity or workload_identity."`
	ClientID         string    `json:"client_id,omitempty"`
	AuxiliaryTenants []string  `json:"auxiliary_tenants,omitempty"`
	Provisioned      bool      `json:"provisioned" doc:"Declared by rotor.yaml (read-only elsewhere)."`
	LastSuccess      time.Time `json:"last_success,omitzero" doc:"When a rotor process last signed it in or synced through it."`
	LastFailure      time.Time `json:"last_failure,omitzero"`
	Failure          string    `json:"failure,omitempty" doc:"How it last failed (Entra's AADSTS code and message)."`
	AADSTS           int       `json:"aadsts,omitempty"`
	Failing          bool      `json:"failing" doc:"The last failure is newer than the last success."`
	Roles            []string  `json:"roles" doc:"The Graph application roles its last token carried."`
}

func connectionOf(c app.Connection) Connection {
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	return Connection{Name: c.Name, TenantID: c.TenantID, Purpose: c.Purpose, Cloud: c.Cloud, Identity: c.Identity, ClientID: c.ClientID,
		AuxiliaryTenants: c.AuxiliaryTenants, Provisioned: c.Provisioned, LastSuccess: c.LastSuccess, LastFailure: c.LastFailure,
		Failure: c.Failure, AADSTS: c.AADSTS, Failing: c.Failing, Roles: roles}
}

// ConnectionList is every connection.
type ConnectionList struct {
	Items []Connection `json:"items"`
}

// ConnectionTest is what signing a connection in proved, or why it could
// not.
type ConnectionTest struct {
	Connection string   `json:"connection"`
	OK         bool     `json:"ok" doc:"It signed in."`
	TenantID   string   `json:"tenant_id,omitempty"`
	AppID      string   `json:"app_id,omitempty"`
	ObjectID   string   `json:"object_id,omitempty"`
	Roles      []string `json:"roles" doc:"The Graph application roles its token carries."`
	Owned      int      `json:"owned" doc:"How many applications it owns, as of its last sync."`
	Error      string   `json:"error,omitempty" doc:"Why it could not sign in (Entra's AADSTS code and message); never a secret."`
}

// AuditActor is who acted.
type AuditActor struct {
	Kind string `json:"kind" enum:"user,token,system"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// AuditRecord is one record of the hash-chained audit trail, with its
// hash (docs/audit.md).
type AuditRecord struct {
	Seq       int64      `json:"seq"`
	At        time.Time  `json:"at"`
	Actor     AuditActor `json:"actor"`
	Action    string     `json:"action"`
	Object    string     `json:"object"`
	Outcome   string     `json:"outcome" enum:"ok,denied,failed"`
	Error     string     `json:"error,omitempty" doc:"The class of a failure, never its text."`
	RequestID string     `json:"request_id,omitempty"`
	Runs      []string   `json:"runs,omitempty"`
	RunID     string     `json:"run_id,omitempty"`
	Step      string     `json:"step,omitempty"`
	Hash      string     `json:"hash" doc:"SHA-256 of the previous record's hash and this record, hex."`
}

func auditRecordOf(r audit.Record) AuditRecord {
	return AuditRecord{Seq: r.Seq, At: r.At, Actor: AuditActor{Kind: r.Actor.Kind, ID: r.Actor.ID, Name: r.Actor.Name},
		Action: r.Action, Object: r.Object, Outcome: r.Outcome, Error: r.Error, RequestID: r.RequestID, Runs: r.Runs,
		RunID: r.RunID, Step: r.Step, Hash: r.Hash.String()}
}

// AuditList is a page of the audit trail.
type AuditList struct {
	Items      []AuditRecord `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty" doc:"Pass as cursor to get the next page; absent when the page was not full."`
}

// AuditHead is the trail's newest record as rotor keeps it beside the
// trail: keep it where rotor cannot write and pass it back as an anchor.
type AuditHead struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at,omitzero"`
	// Anchor is "SEQ:HASH".
	Anchor string `json:"anchor" doc:"SEQ:HASH, as anchor takes it."`
}

// AuditProblem is the first thing wrong with the trail.
type AuditProblem struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind" enum:"edited,missing,inserted,head-missing"`
	Detail string `json:"detail"`
}

// AuditVerification is what verifying the whole trail found. A trail that
// is not intact is a result (200), not an error.
type AuditVerification struct {
	Intact  bool          `json:"intact"`
	Records int64         `json:"records" doc:"Records verified (before the problem, if any)."`
	Head    *AuditHead    `json:"head,omitempty"`
	Anchors int           `json:"anchors" doc:"Anchors checked."`
	Problem *AuditProblem `json:"problem,omitempty"`
}

func verificationOf(r audit.Result) AuditVerification {
	out := AuditVerification{Intact: r.Intact, Records: r.Records, Anchors: r.Anchors}
	if r.Head != nil {
		out.Head = &AuditHead{Seq: r.Head.Seq, Hash: r.Head.Hash.String(), At: r.Head.At, Anchor: r.Head.String()}
	}
	if r.Problem != nil {
		out.Problem = &AuditProblem{Seq: r.Problem.Seq, Kind: string(r.Problem.Kind), Detail: r.Problem.Detail}
	}
	return out
}

// APIKey is a rotor API key as listed: never the key.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role" enum:"viewer,operator,admin"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Status    string    `json:"status" enum:"active,expired,revoked"`
}

func apiKeyOf(k app.APIKeyRow) APIKey {
	return APIKey{ID: k.ID, Name: k.Name, Role: string(k.Role), CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, Status: k.Status}
}

// APIKeyList is every API key of the organization.
type APIKeyList struct {
	Items []APIKey `json:"items"`
}

// APIKeyCreated is a key just made. Key is shown this once: rotor keeps
// only its hash.
type APIKeyCreated struct {
	APIKey
	Key string `json:"key" doc:"The key (rtr_…), shown this once: rotor keeps only its SHA-256. Send it as Authorization: Bearer."`
}

// Whoami is the caller as rotor authenticated it.
type Whoami struct {
	Actor         AuditActor        `json:"actor" doc:"Who the audit trail names."`
	Method        string            `json:"method" enum:"entra,apikey"`
	Organizations map[string]string `json:"organizations" doc:"The caller's role (viewer, operator, admin) in each organization it may act in."`
	ExpiresAt     time.Time         `json:"expires_at,omitzero" doc:"When the token or key stops working."`
}
