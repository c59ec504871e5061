// Package inventory keeps rotor's picture of each tenant current: it lists
// every application of a connection with its credentials, marks the ones
// rotor's rotation identity owns (manageable), writes them to the store a
// page at a time, and removes what the tenant no longer has. After the
// first sync it reads only what changed (Graph's delta query, ADR 17),
// with a full listing at least once per full sync interval.
//
// It knows Graph only through the small Directory and ChangeTracker
// interfaces below; the Graph adapter lives in graph.go.
package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/memtune"
	"github.com/rotor-dev/rotor/internal/store"
)

// Directory is a tenant's application directory as the inventory reads it.
type Directory interface {
	// ListApplications calls fn with successive pages (up to 999
	// applications each) of every application in the tenant. Credentials
	// and TenantID are filled in; Owners and Manageable are not. It stops
	// at the first error fn returns. Each page is a new slice: the sync
	// keeps and edits it.
	ListApplications(ctx context.Context, fn func(page []domain.Application) error) error
	// OwnedApplicationIDs returns the object ids of the applications
	// rotor's rotation identity owns (its service principal's
	// ownedObjects): the ones Application.ReadWrite.OwnedBy lets it
	// change. It returns a nil map for a connection that may change
	// nothing (ReadOnly), and a non-nil one otherwise.
	OwnedApplicationIDs(ctx context.Context) (map[string]bool, error)
}

// ChangeTracker is a Directory that can also say what changed since an
// earlier sync (Graph's delta query). A Directory without it is always
// listed in full.
type ChangeTracker interface {
	// TrackingScope names what a link is valid for: the tenant and the
	// identity reading it. A link kept under another scope is not used.
	TrackingScope() string
	// LatestLink returns a link from which later changes are reported,
	// without the current state ($deltatoken=latest). A full sync takes
	// it before listing, so nothing changed during the listing is missed
	// (at worst it is reported twice).
	LatestLink(ctx context.Context) (string, error)
	// Changes calls fn with successive pages of the changes since link
	// and returns the link for the next sync. An application may be
	// reported more than once; the last report wins. A link the
	// directory refuses (expired, or not its own) is ErrLinkExpired.
	Changes(ctx context.Context, link string, fn func(page []Change) error) (next string, err error)
	// GetApplications reads the given applications afresh (those whose
	// ownership changed). The ones the directory does not have, or does
	// not show this identity, come back in gone.
	GetApplications(ctx context.Context, objectIDs []string) (found []domain.Application, gone []string, err error)
}

// OwnershipChecker is a Directory that can say which of a few
// applications the rotation identity owns without reading everything it
// owns (each application's owners, twenty to a Graph $batch). An
// incremental sync uses it, between two full readings of the ownership,
// for the applications a round of change tracking reported.
type OwnershipChecker interface {
	// OwnsApplications returns the subset of objectIDs the identity owns;
	// an application the directory no longer has is not owned.
	OwnsApplications(ctx context.Context, objectIDs []string) (map[string]bool, error)
}

// ErrLinkExpired is a change tracking link the directory no longer
// accepts (Graph keeps change state for seven days): the sync lists every
// application instead and takes a new link.
var ErrLinkExpired = errors.New("change tracking link refused")

// Fields are properties of an application as change tracking reports
// them.
type Fields uint8

// The properties a Change may leave out.
const (
	FieldAppID Fields = 1 << iota
	FieldDisplayName
	FieldSignInAudience
	FieldCreatedAt
	// FieldSecrets is the application's passwordCredentials.
	FieldSecrets
	// FieldCertificates is its keyCredentials.
	FieldCertificates
)

// Change is one application as a round of change tracking reports it.
type Change struct {
	// App holds what the round carried. TenantID and ObjectID are always
	// set; Owners, Access and Manageable never are.
	App domain.Application
	// Removed says the application left the tenant (deleted for good,
	// or deleted and still restorable: either way no longer one rotor
	// can use). It leaves the connection's inventory.
	Removed bool
	// Missing are the properties the round left out because they did
	// not change: the stored values stand (and App's are zero).
	Missing Fields
}

// ReadOnly wraps the Directory of a connection whose purpose is only to
// read (Application.Read.All): it sees applications but may change none, so
// its sync records every application as not changeable by it, and it never
// asks Graph what its identity owns. It keeps the directory's change
// tracking.
func ReadOnly(d Directory) Directory {
	if tr, ok := d.(ChangeTracker); ok {
		return readOnlyTracker{readOnly{d}, tr}
	}
	return readOnly{d}
}

type readOnly struct{ Directory }

func (readOnly) OwnedApplicationIDs(context.Context) (map[string]bool, error) { return nil, nil }

type readOnlyTracker struct {
	readOnly
	ChangeTracker
}

var (
	_ Directory     = readOnlyTracker{}
	_ ChangeTracker = readOnlyTracker{}
)

// BulkWriter is a store that can trade a little speed for memory while a
// full sync writes a whole tenant (sqlite.Store: statement journals on
// disk rather than in memory). done switches back.
type BulkWriter interface {
	BulkWrites(ctx context.Context) (done func(), err error)
}

// Store is the part of store.Store a sync reads and writes.
type Store interface {
	SyncApplications(ctx context.Context, p store.SyncApplicationsParams) (changed int, err error)
	FinishSync(ctx context.Context, p store.FinishSyncParams) (removed int, err error)
	RemoveApplications(ctx context.Context, p store.RemoveApplicationsParams) (removed int, err error)
	ReconcileManageable(ctx context.Context, p store.ReconcileManageableParams) (store.ReconcileManageableResult, error)
	GetApplication(ctx context.Context, org domain.OrgID, ref string) (*domain.Application, error)
	GetSyncState(ctx context.Context, org domain.OrgID, connection string) (*store.SyncState, error)
	SaveSyncState(ctx context.Context, p store.SaveSyncStateParams) error
}

var _ Store = store.Store(nil)

// Progress reports a running sync after each page.
type Progress struct {
	Connection string
	// Incremental is set when the sync reads what changed (Seen counts
	// changes) rather than listing everything.
	Incremental bool
	// Seen is how many applications were listed (or, in an incremental
	// sync, reported changed) so far, Changed how many of them were new
	// or different from what the store held.
	Seen, Changed int
	Elapsed       time.Duration
}

// FullReason says why a sync listed every application instead of reading
// what changed.
type FullReason string

// Why a sync was full.
const (
	FullNoTracking FullReason = "the directory cannot track changes"
	FullFirst      FullReason = "first sync of the connection"
	FullNoLink     FullReason = "no change tracking link from the last sync"
	FullScope      FullReason = "the connection reaches another tenant or identity than at its last sync"
	FullOff        FullReason = "incremental syncs are off"
	FullInterval   FullReason = "the last full sync is older than the full sync interval"
	FullExpired    FullReason = "Graph refused the change tracking link (expired)"
	FullOwnership  FullReason = "the ownership of too many applications changed to read them one by one"
)

// Result is what a finished sync did.
type Result struct {
	// Incremental is set when the sync read only what changed since the
	// last one; FullReason says why it did not otherwise.
	Incremental bool
	FullReason  FullReason
	// Seen is how many applications a full sync listed, or how many
	// changes an incremental one was told of.
	Seen    int
	Changed int
	// Removed is how many applications the store held that the
	// connection no longer sees.
	Removed int
	// Manageable is how many of the connection's applications rotor can
	// rotate, as of OwnershipAt.
	Manageable int
	// OwnershipAt is when what the rotation identity owns was last read
	// in full: this sync's start, or, for an incremental sync between two
	// readings (Options.OwnershipInterval), an earlier sync's. Zero for a
	// connection that may change nothing.
	OwnershipAt time.Time
	// CertificatesRead is how many certificate credentials' certificates
	// the sync read and recorded (subject, issuer, key; see
	// Options.CertificateReads).
	CertificatesRead int
	// CertificatesErr is why reading them failed, if it did: the sync
	// itself succeeded, and the next one tries again.
	CertificatesErr error
}

// DefaultFullSyncInterval is the longest time between two full syncs of
// a connection when Options leave it zero: at least daily, change
// tracking's own faults (a change Graph did not report, an overlapping
// sync's late write) are mended by a listing.
const DefaultFullSyncInterval = 24 * time.Hour

// maxReread is the most applications an incremental sync reads one by
// one (20 to a $batch) after their ownership changed; beyond it a full
// listing costs fewer requests.
const maxReread = PageSize

// A full sync writes the listing in transactions of DefaultWriteBatch
// applications (five Graph pages), and lists up to prefetch pages ahead
// of the batch it is writing, so that Graph's latency and SQLite's writes
// overlap. Application object ids are random, so each transaction touches
// pages all over the store's B-trees: five pages to a transaction write
// the WAL about a fifth as often as one page would, for a first sync of
// 100,000 applications several times less, while a transaction still
// holds the write lock for about a second and memory stays bounded by two
// batches.
const (
	DefaultWriteBatch = 5 * PageSize
	prefetch          = 5
)

// leanFrom is how many applications a full sync lists before it runs at
// memtune's lower GOGC.
const leanFrom = 10 * PageSize

// Options tune a Syncer.
type Options struct {
	// FullSyncInterval is the longest time between full syncs of a
	// connection: zero is DefaultFullSyncInterval, a negative value makes
	// every sync full.
	FullSyncInterval time.Duration
	// WriteBatch is how many listed applications a full sync writes in
	// one transaction; zero is DefaultWriteBatch.
	WriteBatch int
	// OwnershipInterval is the longest time between two full readings of
	// what the rotation identity owns (its ownedObjects, a page per 999
	// applications): zero is DefaultOwnershipInterval, a negative value
	// reads it at every sync. Between readings an incremental sync asks
	// only about the applications change tracking reported; an ownership
	// change on an application nothing else changed on waits for the
	// next reading.
	OwnershipInterval time.Duration
	// CertificateReads is the most unread certificate credentials one sync
	// reads the certificates of (Graph lists none: each costs part of a
	// $batch GET, once). Zero is DefaultCertificateReads; negative reads
	// none.
	CertificateReads int
}

// DefaultOwnershipInterval is Options.OwnershipInterval's default. Change
// tracking does not report owners, so rotor reads them in full at least
// this often; a rotation identity owning 100,000 applications costs 101
// requests per reading, which a sync every minute could not afford.
const DefaultOwnershipInterval = time.Hour

// Syncer copies directories into the store.
type Syncer struct {
	store      Store
	clock      clock.Clock
	fullEvery  time.Duration
	ownEvery   time.Duration
	writeBatch int
	// certReads is Options.CertificateReads.
	certReads int

	mu sync.Mutex
	// owned remembers, per organization, connection and tracking scope,
	// the last full reading of the identity's ownership. It is the
	// process's own: a new process reads the ownership at its first sync.
	owned map[ownedKey]ownedMemo
}

type ownedKey struct {
	org               domain.OrgID
	connection, scope string
}

type ownedMemo struct {
	at         time.Time // the start of the sync that read it
	manageable int       // the connection's manageable applications then
	pages      int       // the Graph pages the reading took (999 ids each)
}

// NewSyncer returns a Syncer writing to st; c stamps each sync.
func NewSyncer(st Store, c clock.Clock, opts Options) *Syncer {
	every := opts.FullSyncInterval
	if every == 0 {
		every = DefaultFullSyncInterval
	}
	return &Syncer{
		store: st, clock: c, fullEvery: every, ownEvery: cmp.Or(opts.OwnershipInterval, DefaultOwnershipInterval),
		writeBatch: cmp.Or(opts.WriteBatch, DefaultWriteBatch), owned: map[ownedKey]ownedMemo{},
		certReads: cmp.Or(opts.CertificateReads, DefaultCertificateReads),
	}
}

// Sync copies one connection's directory into the store.
//
// The first sync, and one at least every full sync interval, is full: it
// takes a change tracking link, then lists every application page by page
// (one transaction per few pages, so 100k applications never sit in one
// transaction or in memory at once) while it reads what the rotation
// identity owns, and then deletes the applications the listing did not
// see. The deletion happens only after a complete listing: a sync that
// fails or is cancelled part-way keeps everything it did not see, since
// "not seen" then means nothing. An empty listing removes nothing either:
// every tenant holds at least rotor's own app registration, so an empty
// answer is a fault, not a fact worth deleting an inventory for.
//
// Every other sync is incremental: it applies what changed since the last
// one (removed applications leave the connection's view), reads the
// identity's ownership again and corrects who may change what, and
// records the new link. When nothing changed, the only write is the
// connection's sync state. A refused link falls back to a full sync.
//
// Owners are not fetched per application (one Graph call each is too
// expensive for large tenants); the store records which connections see
// the application and which may change it (domain.Access), so a read
// connection beside the rotation one never undoes the other's view.
//
// progress, if not nil, is called after each page.
func (s *Syncer) Sync(ctx context.Context, org domain.OrgID, connection string, dir Directory, progress func(Progress)) (Result, error) {
	started := s.clock.Now()
	tr, _ := dir.(ChangeTracker)
	st, reason, err := s.mode(ctx, org, connection, tr, started)
	if err != nil {
		return Result{}, fmt.Errorf("inventory %s: %w", connection, err)
	}
	var res Result
	if reason == "" {
		res, err = s.incremental(ctx, syncRun{org, connection, dir, tr, started, progress}, st)
		var fb fallBack
		if !errors.As(err, &fb) {
			return s.withCertificates(ctx, org, dir, res, err)
		}
		reason = fb.reason
	}
	res, err = s.full(ctx, syncRun{org, connection, dir, tr, started, progress}, reason)
	return s.withCertificates(ctx, org, dir, res, err)
}

// withCertificates reads unread certificates after a successful sync.
func (s *Syncer) withCertificates(ctx context.Context, org domain.OrgID, dir Directory, res Result, err error) (Result, error) {
	if err != nil {
		return res, err
	}
	res.CertificatesRead, res.CertificatesErr = s.readCertificates(ctx, org, dir)
	return res, nil
}

// mode decides between a full and an incremental sync: it returns the
// state to continue from, or why the sync must be full.
func (s *Syncer) mode(ctx context.Context, org domain.OrgID, connection string, tr ChangeTracker, now time.Time) (*store.SyncState, FullReason, error) {
	if tr == nil {
		return nil, FullNoTracking, nil
	}
	if s.fullEvery < 0 {
		return nil, FullOff, nil
	}
	st, err := s.store.GetSyncState(ctx, org, connection)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, FullFirst, nil
	case err != nil:
		return nil, "", fmt.Errorf("read the last sync's state: %w", err)
	case st.DeltaLink == "":
		return nil, FullNoLink, nil
	case st.Scope != tr.TrackingScope():
		return nil, FullScope, nil
	case now.Sub(st.FullAt) >= s.fullEvery:
		return nil, FullInterval, nil
	}
	return st, "", nil
}

// syncRun is what one sync works on.
type syncRun struct {
	org        domain.OrgID
	connection string
	dir        Directory
	tr         ChangeTracker // nil: the directory cannot track changes
	started    time.Time
	progress   func(Progress)
}

func (r *syncRun) report(res *Result, now time.Time) {
	if r.progress != nil {
		r.progress(Progress{Connection: r.connection, Incremental: res.Incremental, Seen: res.Seen, Changed: res.Changed, Elapsed: now.Sub(r.started)})
	}
}

// fallBack ends an incremental sync that must be redone in full.
type fallBack struct{ reason FullReason }

func (f fallBack) Error() string { return string(f.reason) }

// ownership reads what the rotation identity owns in the background; the
// sync takes the answer when it needs it.
type ownership struct {
	done  chan struct{}
	owned map[string]bool
	err   error
}

func readOwnership(ctx context.Context, dir Directory) *ownership {
	o := &ownership{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		o.owned, o.err = dir.OwnedApplicationIDs(ctx)
	}()
	return o
}

// ready reports whether the answer is in, without waiting.
func (o *ownership) ready() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// wait waits for the answer.
func (o *ownership) wait(ctx context.Context) (map[string]bool, error) {
	select {
	case <-o.done:
		return o.owned, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ownedIDs lists a set's members.
func ownedIDs(owned map[string]bool) []string {
	out := make([]string, 0, len(owned))
	for id, ok := range owned {
		if ok {
			out = append(out, id)
		}
	}
	return out
}

// full lists every application. Ownership is read concurrently with the
// listing: a page written before it is known keeps each stored view's
// CanChange, and ReconcileManageable settles the rest at the end.
func (s *Syncer) full(ctx context.Context, r syncRun, reason FullReason) (Result, error) {
	res := Result{FullReason: reason}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if b, ok := s.store.(BulkWriter); ok {
		if done, err := b.BulkWrites(ctx); err == nil {
			defer done()
		}
	}
	// A listing's pages are garbage once written: once a sync is large,
	// collect them sooner than Go's default would, for the peak memory of
	// a first sync of a big tenant. A small one (a few pages) leaves GOGC
	// alone: its garbage is small, and GOGC is the whole process's.
	lean := func() {}
	defer func() { lean() }()
	own := readOwnership(ctx, r.dir)
	ownedErr := func(err error) error {
		return fmt.Errorf("inventory %s: list the applications rotor owns: %w", r.connection, err)
	}

	var link string
	if r.tr != nil {
		var err error
		if link, err = r.tr.LatestLink(ctx); err != nil {
			if own.ready() && own.err != nil {
				return res, ownedErr(own.err)
			}
			return res, fmt.Errorf("inventory %s: start change tracking: %w", r.connection, err)
		}
	}

	pages := make(chan []domain.Application, prefetch)
	listed := make(chan error, 1)
	go func() {
		defer close(pages)
		listed <- r.dir.ListApplications(ctx, func(page []domain.Application) error {
			select {
			case pages <- page:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var (
		writeErr error
		batch    []domain.Application
	)
	write := func() {
		if len(batch) == 0 || writeErr != nil {
			return
		}
		if own.ready() && own.err != nil {
			writeErr = ownedErr(own.err)
			cancel()
			return
		}
		known := own.ready()
		var owned map[string]bool
		if known {
			owned = own.owned // written before done was closed
		}
		for i := range batch {
			a := &batch[i]
			a.Org, a.Access = r.org, nil
			a.Manageable = owned[a.ObjectID]
			// Owners are not listed per application (a Graph call
			// each): which connections may change it is each
			// connection's view (Access), recorded by the store.
			a.Owners = nil
		}
		changed, err := s.store.SyncApplications(ctx, store.SyncApplicationsParams{
			Org: r.org, Connection: r.connection, SyncStarted: r.started, Applications: batch, KeepCanChange: !known,
		})
		if err != nil {
			writeErr = fmt.Errorf("inventory %s: after %d applications: %w", r.connection, res.Seen, err)
			cancel()
			return
		}
		res.Seen += len(batch)
		res.Changed += changed
		batch = batch[:0]
		r.report(&res, s.clock.Now())
	}
	listedSoFar := 0
	for page := range pages {
		if writeErr != nil {
			continue // drain: the listing stops on the cancelled context
		}
		if listedSoFar += len(page); listedSoFar >= leanFrom && listedSoFar-len(page) < leanFrom {
			lean = memtune.Lean()
		}
		batch = append(batch, page...)
		if len(batch) >= s.writeBatch {
			write()
		}
	}
	// What was listed before a failure is as true as the rest: keep it.
	if ctx.Err() == nil {
		write()
	}
	err := <-listed
	if writeErr != nil {
		return res, writeErr
	}
	if own.ready() && own.err != nil {
		return res, ownedErr(own.err)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("inventory %s: after %d applications: %w", r.connection, res.Seen, err)
	}
	owned, err := own.wait(ctx)
	if err != nil {
		return res, ownedErr(err)
	}
	if res.Seen == 0 {
		return res, nil
	}
	res.Removed, err = s.store.FinishSync(ctx, store.FinishSyncParams{Org: r.org, Connection: r.connection, SyncStarted: r.started})
	if err != nil {
		return res, fmt.Errorf("inventory %s: remove applications no longer in the tenant: %w", r.connection, err)
	}
	if owned != nil {
		// Owned applications the listing did not see were created after
		// it passed them; the next round of change tracking has them.
		rr, err := s.store.ReconcileManageable(ctx, store.ReconcileManageableParams{
			Org: r.org, Connection: r.connection, Owned: ownedIDs(owned), SyncStarted: r.started,
		})
		if err != nil {
			return res, fmt.Errorf("inventory %s: record which applications rotor may change: %w", r.connection, err)
		}
		res.Manageable, res.OwnershipAt = rr.Manageable, r.started
	}
	if err := s.save(ctx, r, link, true); err != nil {
		return res, err
	}
	s.remember(r, owned, res.Manageable)
	return res, nil
}

// save records the finished sync and, when the directory tracks changes,
// where the next one resumes.
func (s *Syncer) save(ctx context.Context, r syncRun, link string, full bool) error {
	p := store.SaveSyncStateParams{Org: r.org, Connection: r.connection, DeltaLink: link, SyncStarted: r.started, Full: full}
	if r.tr != nil {
		p.Scope = r.tr.TrackingScope()
	}
	if err := s.store.SaveSyncState(ctx, p); err != nil {
		return fmt.Errorf("inventory %s: record the sync: %w", r.connection, err)
	}
	return nil
}

// incremental applies the changes since st's link. A refused link, or
// too many ownership changes to read one by one, return a fallBack: the
// caller then syncs in full, in the same call.
//
// What the rotation identity owns is read in full (beside the changes)
// when the last reading is older than the ownership interval; between
// readings only the applications the round reports are asked about, and
// an unchanged round costs one request.
func (s *Syncer) incremental(ctx context.Context, r syncRun, st *store.SyncState) (Result, error) {
	res := Result{Incremental: true}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	memo, checker, cached := s.recall(r)
	var own *ownership // the full reading, when this sync makes one
	if !cached {
		own = readOwnership(ctx, r.dir)
	}
	ownedErr := func(err error) error {
		return fmt.Errorf("inventory %s: list the applications rotor owns: %w", r.connection, err)
	}
	// owns says which of the changed applications ids the identity owns:
	// asked one by one while that costs fewer requests over the round than
	// a full reading would, from a full reading beyond.
	asked := 0 // requests so far
	owns := func(ctx context.Context, ids []string) (map[string]bool, error) {
		if need := (len(ids) + ownersPerRequest - 1) / ownersPerRequest; own == nil && asked+need <= memo.pages {
			asked += need
			m, err := checker.OwnsApplications(ctx, ids)
			if err != nil {
				return nil, fmt.Errorf("inventory %s: ask which changed applications rotor owns: %w", r.connection, err)
			}
			return m, nil
		}
		if own == nil { // more to ask about than a full reading costs
			own = readOwnership(ctx, r.dir)
		}
		m, err := own.wait(ctx)
		if err != nil {
			return nil, ownedErr(err)
		}
		return m, nil
	}

	next, err := r.tr.Changes(ctx, st.DeltaLink, func(page []Change) error {
		res.Seen += len(page)
		if len(page) > 0 {
			changed, removed, err := s.apply(ctx, r, owns, page)
			res.Changed += changed
			res.Removed += removed
			if err != nil {
				return err
			}
		}
		r.report(&res, s.clock.Now())
		return nil
	})
	switch {
	case errors.Is(err, ErrLinkExpired):
		return res, fallBack{FullExpired}
	case err != nil:
		if own != nil && own.ready() && own.err != nil {
			return res, ownedErr(own.err)
		}
		return res, fmt.Errorf("inventory %s: after %d changes: %w", r.connection, res.Seen, err)
	}
	if own == nil {
		// Between two readings: the count is the last reading's.
		res.Manageable, res.OwnershipAt = memo.manageable, memo.at
		return res, s.save(ctx, r, next, false)
	}
	owned, err := own.wait(ctx)
	if err != nil {
		return res, ownedErr(err)
	}
	if owned != nil {
		rr, err := s.store.ReconcileManageable(ctx, store.ReconcileManageableParams{
			Org: r.org, Connection: r.connection, Owned: ownedIDs(owned), SyncStarted: r.started,
		})
		if err != nil {
			return res, fmt.Errorf("inventory %s: record which applications rotor may change: %w", r.connection, err)
		}
		res.Manageable = rr.Manageable
		reread := make([]string, 0, len(rr.Missing)+len(rr.Lost))
		reread = append(append(reread, rr.Missing...), rr.Lost...)
		if len(reread) > maxReread {
			return res, fallBack{FullOwnership}
		}
		if len(reread) > 0 {
			// Ownership is a navigation property, which change tracking
			// does not report: an application rotor now owns may be one
			// it could not see before, and one it no longer owns one it
			// cannot see now. Read them again.
			found, gone, err := r.tr.GetApplications(ctx, reread)
			if err != nil {
				return res, fmt.Errorf("inventory %s: read applications whose ownership changed: %w", r.connection, err)
			}
			missing := make(map[string]bool, len(rr.Missing))
			for _, id := range rr.Missing {
				missing[id] = true
			}
			for _, a := range found {
				if missing[a.ObjectID] {
					res.Manageable++ // owned, and now in the connection's view
				}
			}
			changed, removed, err := s.write(ctx, r, owned, found, gone)
			res.Changed += changed
			res.Removed += removed
			if err != nil {
				return res, err
			}
		}
		res.OwnershipAt = r.started
	}
	if err := s.save(ctx, r, next, false); err != nil {
		return res, err
	}
	s.remember(r, owned, res.Manageable)
	return res, nil
}

// ownersPerRequest is how many applications' owners one request asks
// for (a Graph $batch holds twenty).
const ownersPerRequest = 20

// key is what the Syncer remembers a connection's ownership reading by.
func (r *syncRun) key() ownedKey {
	k := ownedKey{org: r.org, connection: r.connection}
	if r.tr != nil {
		k.scope = r.tr.TrackingScope()
	}
	return k
}

// remember records a full reading of the ownership (none for a
// connection that may change nothing).
func (s *Syncer) remember(r syncRun, owned map[string]bool, manageable int) {
	if owned == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owned[r.key()] = ownedMemo{at: r.started, manageable: manageable, pages: max(1, (len(owned)+PageSize-1)/PageSize)}
}

// recall returns the last full reading of the connection's ownership
// when it is recent enough to sync without reading it again, and the
// directory can ask about single applications.
func (s *Syncer) recall(r syncRun) (ownedMemo, OwnershipChecker, bool) {
	checker, ok := r.dir.(OwnershipChecker)
	if !ok || s.ownEvery < 0 {
		return ownedMemo{}, nil, false
	}
	s.mu.Lock()
	m, ok := s.owned[r.key()]
	s.mu.Unlock()
	if !ok || r.started.Before(m.at) || r.started.Sub(m.at) >= s.ownEvery {
		return ownedMemo{}, nil, false
	}
	return m, checker, true
}

// apply writes one page of changes: the last report of each application
// wins, a removed one leaves the connection's view, and one reported with
// only some properties is completed from the store (or, if the store does
// not have it, read from the directory).
func (s *Syncer) apply(ctx context.Context, r syncRun, owns func(context.Context, []string) (map[string]bool, error), page []Change) (changed, removed int, err error) {
	last := make(map[string]int, len(page))
	for i := range page {
		last[page[i].App.ObjectID] = i
	}
	var (
		upserts []domain.Application
		gone    []string
		fetch   []string
	)
	for i := range page {
		c := &page[i]
		if last[c.App.ObjectID] != i {
			continue
		}
		switch {
		case c.Removed:
			gone = append(gone, c.App.ObjectID)
		case c.Missing != 0:
			a, ok, err := s.complete(ctx, r.org, c)
			if err != nil {
				return 0, 0, fmt.Errorf("inventory %s: complete application %s from the store: %w", r.connection, c.App.ObjectID, err)
			}
			if !ok {
				fetch = append(fetch, c.App.ObjectID)
				continue
			}
			upserts = append(upserts, a)
		default:
			upserts = append(upserts, c.App)
		}
	}
	if len(fetch) > 0 {
		found, missing, err := r.tr.GetApplications(ctx, fetch)
		if err != nil {
			return 0, 0, fmt.Errorf("inventory %s: read changed applications: %w", r.connection, err)
		}
		upserts = append(upserts, found...)
		gone = append(gone, missing...)
	}
	var owned map[string]bool
	if len(upserts) > 0 {
		ids := make([]string, len(upserts))
		for i := range upserts {
			ids[i] = upserts[i].ObjectID
		}
		if owned, err = owns(ctx, ids); err != nil {
			return 0, 0, err
		}
	}
	return s.write(ctx, r, owned, upserts, gone)
}

// write stores upserts and removes gone from the connection's view.
func (s *Syncer) write(ctx context.Context, r syncRun, owned map[string]bool, upserts []domain.Application, gone []string) (changed, removed int, err error) {
	if len(upserts) > 0 {
		for i := range upserts {
			a := &upserts[i]
			a.Org, a.Access, a.Owners = r.org, nil, nil
			a.Manageable = owned[a.ObjectID]
		}
		changed, err = s.store.SyncApplications(ctx, store.SyncApplicationsParams{
			Org: r.org, Connection: r.connection, SyncStarted: r.started, Applications: upserts,
		})
		if err != nil {
			return 0, 0, fmt.Errorf("inventory %s: write changed applications: %w", r.connection, err)
		}
	}
	if len(gone) > 0 {
		removed, err = s.store.RemoveApplications(ctx, store.RemoveApplicationsParams{
			Org: r.org, Connection: r.connection, ObjectIDs: gone, SyncStarted: r.started,
		})
		if err != nil {
			return changed, removed, fmt.Errorf("inventory %s: remove applications gone from the tenant: %w", r.connection, err)
		}
	}
	return changed, removed, nil
}

// complete fills in the properties a change left out from the stored
// application; ok is false when the store does not have it.
func (s *Syncer) complete(ctx context.Context, org domain.OrgID, c *Change) (domain.Application, bool, error) {
	stored, err := s.store.GetApplication(ctx, org, c.App.ObjectID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return domain.Application{}, false, nil
	case err != nil:
		return domain.Application{}, false, err
	case stored.TenantID != c.App.TenantID || stored.ObjectID != c.App.ObjectID:
		return domain.Application{}, false, nil
	}
	a := c.App
	if c.Missing&FieldAppID != 0 {
		a.AppID = stored.AppID
	}
	if c.Missing&FieldDisplayName != 0 {
		a.DisplayName = stored.DisplayName
	}
	if c.Missing&FieldSignInAudience != 0 {
		a.SignInAudience = stored.SignInAudience
	}
	if c.Missing&FieldCreatedAt != 0 {
		a.CreatedAt = stored.CreatedAt
	}
	// Secrets and certificates are two properties: each comes whole from
	// the change, or stays as stored.
	secrets, certs := c.App.Credentials, c.App.Credentials
	if c.Missing&FieldSecrets != 0 {
		secrets = stored.Credentials
	}
	if c.Missing&FieldCertificates != 0 {
		certs = stored.Credentials
	}
	var creds []domain.Credential
	for _, cr := range secrets {
		if cr.Kind == domain.KindSecret {
			creds = append(creds, cr)
		}
	}
	for _, cr := range certs {
		if cr.Kind == domain.KindCertificate {
			creds = append(creds, cr)
		}
	}
	a.Credentials = creds
	return a, true, nil
}
