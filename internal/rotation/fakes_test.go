package rotation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// This file holds the in-test Entra (a map of applications), a verifier
// that honours it, and a memory sink. Everything else in these tests is
// real: the SQLite store, the state machine, the clock.

var (
	_ Directory   = (*memDirectory)(nil)
	_ Verifier    = (*memDirectory)(nil)
	_ Connections = (*memDirectory)(nil)
	_ sink.Sink   = (*memSink)(nil)
)

var errPending = errors.New("AADSTS7000215: invalid client secret (replication pending)")
var errPolicy = errors.New("CredentialInvalidLifetimeAsPerAppPolicy: lifetime too long")

type memCred struct {
	domain.Credential
	value string
	// der is a certificate's DER (kind certificate).
	der []byte
	// verifiesAfter counts Verify calls that answer pending first.
	pendingLeft int
}

// memDirectory is Entra for one tenant: applications by object id.
type memDirectory struct {
	mu    sync.Mutex
	clock clock.Clock
	apps  map[string][]*memCred // object id → credentials
	appID map[string]string     // client id → object id
	// Faults.
	addErr       func(n int) error // called per AddPassword, n from 1
	addCount     int
	credReads    int    // Credentials calls
	afterAdd     func() // called after a credential was added, before answering
	replication  int    // Verify answers pending this many times per new secret
	removed      []string
	inFlight     int
	maxInFlight  int
	slowAdd      time.Duration
	verifyErr    error
	removeErrFor map[string]error
	// certOps records how certificates were added and removed: "addKey",
	// "removeKey" (with a valid proof) or "patch".
	certOps []string
}

func newMemDirectory(c clock.Clock) *memDirectory {
	return &memDirectory{clock: c, apps: map[string][]*memCred{}, appID: map[string]string{}, removeErrFor: map[string]error{}}
}

func (d *memDirectory) Directory(domain.OrgID, string) (Directory, error) { return d, nil }
func (d *memDirectory) Verifier(domain.OrgID, string) (Verifier, error)   { return d, nil }

func (d *memDirectory) addApp(objectID, clientID string, creds ...domain.Credential) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.appID[clientID] = objectID
	d.apps[objectID] = nil
	for _, c := range creds {
		d.apps[objectID] = append(d.apps[objectID], &memCred{Credential: c, value: "old-" + c.KeyID})
	}
}

func (d *memDirectory) Credentials(_ context.Context, objectID string) ([]domain.Credential, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.credReads++
	cs, ok := d.apps[objectID]
	if !ok {
		return nil, fmt.Errorf("application %s not found", objectID)
	}
	out := make([]domain.Credential, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Credential)
	}
	return out, nil
}

func (d *memDirectory) AddPassword(_ context.Context, objectID, displayName string, end time.Time) (NewPassword, error) {
	d.mu.Lock()
	d.addCount++
	n := d.addCount
	d.inFlight++
	d.maxInFlight = max(d.maxInFlight, d.inFlight)
	slow := d.slowAdd
	d.mu.Unlock()
	defer func() { d.mu.Lock(); d.inFlight--; d.mu.Unlock() }()
	if slow > 0 {
		time.Sleep(slow)
	}
	if d.addErr != nil {
		if err := d.addErr(n); err != nil {
			return NewPassword{}, err
		}
	}
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	value := "s3cr3t~" + hex.EncodeToString(b)
	now := d.clock.Now().UTC()
	c := &memCred{Credential: domain.Credential{
		KeyID: uuid.NewString(), Kind: domain.KindSecret, DisplayName: displayName,
		Hint: value[:3], Start: now, End: end,
	}, value: value, pendingLeft: d.replication}
	d.mu.Lock()
	if _, ok := d.apps[objectID]; !ok {
		d.mu.Unlock()
		return NewPassword{}, fmt.Errorf("application %s not found", objectID)
	}
	d.apps[objectID] = append(d.apps[objectID], c)
	after := d.afterAdd
	d.mu.Unlock()
	if after != nil {
		after()
	}
	return NewPassword{KeyID: c.KeyID, Start: c.Start, End: c.End, Value: secret.New(value)}, nil
}

func (d *memDirectory) RemovePassword(_ context.Context, objectID, keyID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.removeErrFor[keyID]; err != nil {
		return err
	}
	d.apps[objectID] = slices.DeleteFunc(d.apps[objectID], func(c *memCred) bool { return c.KeyID == keyID })
	d.removed = append(d.removed, keyID)
	return nil
}

func (d *memDirectory) Verify(_ context.Context, _, clientID string, v secret.Value) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.verifyErr != nil {
		return d.verifyErr
	}
	for _, c := range d.apps[d.appID[clientID]] {
		if c.value == v.Reveal() {
			if c.pendingLeft > 0 {
				c.pendingLeft--
				return errPending
			}
			if !c.End.After(d.clock.Now()) {
				return errors.New("AADSTS7000222: expired")
			}
			return nil
		}
	}
	return errPending // Entra cannot tell "wrong" from "not replicated yet"
}

func (d *memDirectory) creds(objectID string) []domain.Credential {
	cs, _ := d.Credentials(context.Background(), objectID)
	return cs
}

func (d *memDirectory) allValues() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, cs := range d.apps {
		for _, c := range cs {
			out = append(out, c.value)
		}
	}
	return out
}

// memSink keeps the last value delivered per application: the consumer.
type memSink struct {
	name string
	app  string // object id of the application it was built for
	echo bool   // a careless sink: its error quotes the value
	// refuse makes Validate answer a permanent error (a foreign secret, no
	// permission): the run must fail before creating anything.
	refuse bool
	vault  *memVault
	fail   func(n int) error
}

type memVault struct {
	mu     sync.Mutex
	values map[string]secret.Value // "<sink>/<object id>" → value
	keyIDs map[string]string
	// versions counts writes per slot, for versioned sinks (drift).
	versions map[string]int
	calls    int
	failures func(sinkName string, n int) error
}

func (s *memSink) Describe() string { return "memory sink " + s.name }

func (s *memSink) Target() sink.TargetID {
	t, err := sink.NewTargetID("memory", s.name+"/"+s.app)
	if err != nil {
		panic(err)
	}
	return t
}

func (s *memSink) Deliver(_ context.Context, d sink.Delivery) (sink.Result, error) {
	v := s.vault
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	if s.echo {
		return sink.Result{}, fmt.Errorf("rejected value %q: %w", d.Material.Secret.Reveal(), errPolicy)
	}
	if v.failures != nil {
		if err := v.failures(s.name, v.calls); err != nil {
			return sink.Result{}, err
		}
	}
	k := s.name + "/" + d.App.ObjectID
	if v.keyIDs[k] == d.KeyID {
		return sink.Result{Changed: false, Location: k + "@" + d.KeyID}, nil
	}
	val := d.Material.Secret
	if c := d.Material.Certificate; c != nil && c.Key.IsZero() {
		// A certificate whose key stays in Key Vault: a consumer holds
		// which certificate to use, nothing secret.
		val = secret.New("thumbprint:" + Thumbprint(c.Chain[0]))
	} else if c != nil {
		val = secret.New(pemOf(c))
	}
	v.values[k], v.keyIDs[k] = val, d.KeyID
	if v.versions == nil {
		v.versions = map[string]int{}
	}
	v.versions[k]++
	return sink.Result{Changed: true, Location: k + "@" + d.KeyID}, nil
}

// versionedSink is a memory sink that reports versions (drift).
type versionedSink struct{ *memSink }

func (s versionedSink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	res, err := s.memSink.Deliver(ctx, d)
	if err != nil {
		return res, err
	}
	res.Version, _ = s.Version(ctx)
	return res, nil
}

func (s versionedSink) Version(context.Context) (string, error) {
	v := s.vault
	v.mu.Lock()
	defer v.mu.Unlock()
	n := v.versions[s.name+"/"+s.app]
	if n == 0 {
		return "", nil
	}
	return fmt.Sprintf("v%d", n), nil
}

// hangingSink is a versioned sink whose target stops answering version
// reads (a hung service) once it holds something.
type hangingSink struct{ versionedSink }

func (s hangingSink) Version(ctx context.Context) (string, error) {
	if v, _ := s.versionedSink.Version(ctx); v == "" {
		return "", nil
	}
	<-ctx.Done()
	return "", ctx.Err()
}

func (s hangingSink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	res, err := s.memSink.Deliver(ctx, d)
	if err == nil {
		res.Version, _ = s.versionedSink.Version(ctx)
	}
	return res, err
}

// tamper writes slot's value behind rotor's back.
func (v *memVault) tamper(sinkName, objectID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := sinkName + "/" + objectID
	v.values[k] = secret.New("pasted-by-hand")
	v.versions[k]++
}

// Validate implements sink.Validator.
func (s *memSink) Validate(context.Context) sink.Validation {
	if s.refuse {
		return sink.Failed("", fmt.Errorf("memory sink %s is not rotor's: %w", s.name, errPolicy))
	}
	return sink.Ready("")
}

// Holds implements sink.Holder.
func (s *memSink) Holds(_ context.Context, keyID string) (bool, error) {
	_, held := s.vault.get(s.name, s.app)
	return held == keyID, nil
}

func (v *memVault) get(sinkName, objectID string) (secret.Value, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := sinkName + "/" + objectID
	return v.values[k], v.keyIDs[k]
}

// memBuilder builds memory sinks; Settings["name"] names the slot.
type memBuilder struct{ vault *memVault }

func (memBuilder) Type() string                                 { return "memory" }
func (memBuilder) CheckSpec(domain.SinkSpec) error              { return nil }
func (b memBuilder) NewBuilder(sink.Deps) (sink.Builder, error) { return b, nil }
func (b memBuilder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	s, err := b.Build(context.Background(), req)
	if err != nil {
		return sink.TargetID{}, err
	}
	return s.Target(), nil
}
func (b memBuilder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	spec, app := req.Spec, req.App
	name, _ := spec.Settings["name"].(string)
	if name == "" {
		return nil, errors.New("settings.name is required")
	}
	echo, _ := spec.Settings["echo"].(bool)
	refuse, _ := spec.Settings["refuse"].(bool)
	ms := &memSink{name: name, app: app.ObjectID, vault: b.vault, echo: echo, refuse: refuse}
	if finish, ok := spec.Settings["finish"].(*finishLog); ok {
		return &finishingSink{memSink: ms, log: finish}, nil
	}
	if hang, _ := spec.Settings["hang"].(bool); hang {
		return hangingSink{versionedSink{ms}}, nil
	}
	if versioned, _ := spec.Settings["versioned"].(bool); versioned {
		return versionedSink{ms}, nil
	}
	return ms, nil
}

// bundle is what a test needs.
type bundle struct {
	ctx   context.Context
	store *sqlite.Store
	dir   *memDirectory
	vault *memVault
	clock *clock.Fake
	logs  *syncBuffer
	hooks Hooks
	// observer, when set, is the engine's Observer.
	observer Observer
	org      domain.OrgID
	app      domain.Application
	policy   domain.Policy
	// retires records ScheduleRetire calls.
	retiresMu sync.Mutex
	retires   []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const tenant = "11111111-1111-1111-1111-111111111111"

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	c := clock.NewFake(t0)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rotor.db"), sqlite.WithClock(c))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	org := domain.OrgID("acme")
	require.NoError(t, st.EnsureOrg(ctx, org, "Acme"))
	b := &bundle{
		ctx: ctx, store: st, dir: newMemDirectory(c), clock: c, org: org, logs: &syncBuffer{},
		vault: &memVault{values: map[string]secret.Value{}, keyIDs: map[string]string{}},
	}
	old := domain.Credential{KeyID: "old-rotor", Kind: domain.KindSecret, DisplayName: domain.DisplayNameFor("0190aaaa-0000-7000-8000-000000000000"), Start: t0.Add(-80 * 24 * time.Hour), End: t0.Add(10 * 24 * time.Hour)}
	foreign := domain.Credential{KeyID: "foreign", Kind: domain.KindSecret, DisplayName: "hand-made by ops", Start: t0.Add(-200 * 24 * time.Hour), End: t0.Add(100 * 24 * time.Hour)}
	b.app = domain.Application{
		Org: org, Access: []domain.Access{{Connection: "main", CanChange: true}}, TenantID: tenant, ObjectID: "app-1", AppID: "client-1",
		DisplayName: "web-storefront", Manageable: true, Credentials: []domain.Credential{old, foreign},
	}
	b.dir.addApp(b.app.ObjectID, b.app.AppID, old, foreign)
	b.policy = domain.Policy{
		Name: "all", Connection: "main", Selector: domain.Selector{AllOwned: true}, Enabled: true,
		Kind: domain.KindSecret, Lifetime: 30 * 24 * time.Hour, RenewBefore: 10 * 24 * time.Hour,
		Overlap: time.Hour, Verify: true,
		Sinks: []domain.SinkSpec{{Type: "memory", Settings: map[string]any{"name": "kv"}}, {Type: "memory", Settings: map[string]any{"name": "ado"}}},
	}
	return b
}

func (b *bundle) engine(t *testing.T) *Engine {
	t.Helper()
	sinks, err := sink.NewRegistry(memBuilder{vault: b.vault}).Bind(sink.Deps{})
	require.NoError(t, err)
	e := New(Config{
		Store:         b.store,
		Conns:         b.dir,
		Sinks:         sinks,
		Clock:         b.clock,
		Logger:        slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		VerifyTimeout: 2 * time.Second,
		IsPending:     func(err error) bool { return errors.Is(err, errPending) },
		IsPermanent:   func(err error) bool { return errors.Is(err, errPolicy) },
		Hooks:         b.hooks,
		Observer:      b.observer,
		ScheduleRetire: func(_ context.Context, _ domain.OrgID, runID string, _ time.Time) error {
			b.retiresMu.Lock()
			b.retires = append(b.retires, runID)
			b.retiresMu.Unlock()
			return nil
		},
	})
	e.backoffBase, e.backoffCap = time.Millisecond, 5*time.Millisecond
	return e
}

// die stops e as a killed process stops: its lease is neither renewed nor
// released, and the clock moves past its expiry.
func (b *bundle) die(e *Engine) {
	e.lease.abandon()
	b.clock.Advance(e.lease.TTL() + time.Second)
}

// assertNoSecretAtRest checks that no secret value Entra holds appears in
// the journal or the logs.
func (b *bundle) assertNoSecretAtRest(t *testing.T) {
	t.Helper()
	runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
	require.NoError(t, err)
	logs := b.logs.String()
	for _, v := range b.dir.allValues() {
		require.NotContains(t, logs, v)
		for _, r := range runs {
			full, err := b.store.GetRun(b.ctx, b.org, r.ID)
			require.NoError(t, err)
			require.NotContains(t, full.Error, v)
			for _, ev := range full.Events {
				require.NotContains(t, ev.Message, v)
			}
		}
	}
}

// assertConverged checks the end state DESIGN.md promises: exactly one
// rotor credential (the newest), the foreign one untouched, and every sink
// holding a value Entra accepts for that credential.
func (b *bundle) assertConverged(t *testing.T) {
	t.Helper()
	creds := b.dir.creds(b.app.ObjectID)
	var rotor []domain.Credential
	foreign := 0
	for _, c := range creds {
		if c.RotorCreated() {
			rotor = append(rotor, c)
		} else {
			foreign++
			require.Equal(t, "foreign", c.KeyID)
		}
	}
	require.Equal(t, 1, foreign, "the credential rotor did not create stays")
	require.Len(t, rotor, 1, "exactly one rotor credential remains: %v", rotor)
	for _, s := range []string{"kv", "ado"} {
		v, keyID := b.vault.get(s, b.app.ObjectID)
		require.Equal(t, rotor[0].KeyID, keyID, "sink %s holds the surviving credential", s)
		require.NoError(t, b.dir.Verify(b.ctx, tenant, b.app.AppID, v), "sink %s value gets a token", s)
	}
}
