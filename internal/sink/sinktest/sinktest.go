// Package sinktest is the conformance suite every sink kind runs: the
// promises of the sink.Sink contract that do not depend on the kind —
// idempotent delivery, refusal to overwrite what rotor does not own, no
// secret value in any error, honest Holds and Validate answers, and a
// target id that is stable across builds and pinned across renames.
//
// A kind's test implements Harness against the most real target it can run
// (Key Vault: the simulator over HTTPS, through Microsoft's azsecrets
// client) and calls Run.
package sinktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Harness is what the suite needs from a kind's test.
type Harness interface {
	// Builder is the builder under test, bound to the test's dependencies.
	Builder(t *testing.T) sink.Builder
	// Request returns a request for a sink whose target exists nowhere yet
	// and is used by no other call (a fresh name). Its spec should follow
	// the application's display name (a name template), so that the
	// rename cases mean something; it must not be pinned.
	Request(t *testing.T) sink.BuildRequest
	// Foreign puts, at target, something rotor does not own: no ownership
	// marker, a value of its own.
	Foreign(t *testing.T, target sink.TargetID)
	// Read returns what target holds now, read with the test's own access
	// (which may read values; the sink may not).
	Read(t *testing.T, target sink.TargetID) Held
	// Denied returns req changed so that the sink's identity is refused by
	// the target (or by its identity provider); same target.
	Denied(t *testing.T, req sink.BuildRequest) sink.BuildRequest
	// Unreachable returns req changed so that the target cannot be
	// reached at all (a closed port on loopback).
	Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest
}

// Tamperer is the optional ability of a harness to change a target behind
// rotor's back, as a person with their own access would (a new value, a new
// version), keeping whatever marks it as rotor's. With it, a sink that
// reads versions (sink.VersionReader) must show the change as drift.
type Tamperer interface {
	Tamper(t *testing.T, target sink.TargetID)
}

// NotApplicable is the optional ability of a harness to say that one of
// the suite's promises means nothing for its kind (a webhook holds no
// state to be foreign), by the subtest's name. The reason is logged; the
// promise is not checked. Every other promise still is.
type NotApplicable interface {
	NotApplicable(subtest string) (reason string)
}

// Subtest names, for NotApplicable.
const (
	SubtestForeign = "foreign"
	SubtestAdopt   = "adopt"
	SubtestDrift   = "drift"
)

// Ticker is the optional ability of a harness to move its target's clock
// forward between two writes, for targets that order versions by a coarse
// timestamp (Key Vault's whole seconds). The suite never sleeps.
type Ticker interface {
	Tick()
}

// Held is what a target holds, as the harness reads it.
type Held struct {
	// Exists is false when nothing is at the target.
	Exists bool
	// Version identifies the current content; every write changes it.
	Version string
	// Secret is the value held.
	Secret secret.Value
}

// Option changes what the suite delivers.
type Option func(*suite)

// WithCertificates makes every delivery a certificate credential (a fresh
// self-signed EC P-256 certificate and its key, Kind certificate) instead of
// a client secret. The harness's Read then returns, in Held.Secret, what the
// target holds as PEM — the private key and the chain, in any order and
// concatenated as the target keeps them (a Kubernetes TLS Secret's tls.key
// and tls.crt) — and the suite checks that it is the delivered leaf with
// its own key. Every promise of the contract holds for certificates too; a
// harness whose Foreign puts something a certificate could never replace
// (an Opaque Secret for a TLS one) must put the certificate form there.
func WithCertificates() Option { return func(s *suite) { s.certs = map[string]*sink.Certificate{} } }

// Run runs the suite. Subtests share the harness and run one after another.
func Run(t *testing.T, h Harness, opts ...Option) {
	s := &suite{h: h, ctx: context.Background()}
	for _, o := range opts {
		o(s)
	}
	t.Run("delivers, then holds what it delivered", s.delivers)
	t.Run("delivering the same material twice changes nothing", s.idempotent)
	t.Run("a newer credential replaces the older one", s.replaces)
	t.Run("refuses to overwrite a target rotor does not own", s.foreign)
	t.Run("denied permission fails validation and delivery permanently", s.denied)
	t.Run("an unreachable target is unknown and retryable", s.unreachable)
	t.Run("target is stable across builds and pinned across renames", s.target)
	t.Run("adopts a foreign target only when told to", s.adopt)
	t.Run("reports its version, and drift when the target changes behind its back", s.drift)
}

type suite struct {
	h   Harness
	ctx context.Context
	n   int
	// last is what the suite, playing the rotation, recorded of its
	// deliveries, by target: builds get it as BuildRequest.Last.
	last map[sink.TargetID]*sink.Delivered
	// certs, when not nil, makes deliveries certificates: each by the
	// marker value returns (WithCertificates).
	certs map[string]*sink.Certificate
}

// applies reports whether the harness keeps promise name; when not, it
// logs why.
func (s *suite) applies(t *testing.T, name string) bool {
	if na, ok := s.h.(NotApplicable); ok {
		if why := na.NotApplicable(name); why != "" {
			t.Logf("not applicable to this kind: %s", why)
			return false
		}
	}
	return true
}

// deliver delivers d as the rotation does: when rotor has no record of the
// target and the sink can read versions, a target found absent is claimed
// (recorded without a version) before the write, so that a write whose
// answer was lost still counts as rotor's; a successful delivery is
// recorded with the version the sink reports.
func (s *suite) deliver(t *testing.T, sk sink.Sink, d sink.Delivery) (sink.Result, error) {
	t.Helper()
	if s.last == nil {
		s.last = map[sink.TargetID]*sink.Delivered{}
	}
	tid := sk.Target()
	if vr, ok := sk.(sink.VersionReader); ok && s.last[tid] == nil {
		v, err := vr.Version(s.ctx)
		if err == nil && v == "" {
			s.last[tid] = &sink.Delivered{KeyID: d.KeyID, RunID: d.RunID, At: d.Start}
		}
	}
	res, err := sk.Deliver(s.ctx, d)
	if err == nil {
		s.last[tid] = &sink.Delivered{KeyID: d.KeyID, Version: res.Version, RunID: d.RunID, At: d.Start}
		if _, ok := sk.(sink.VersionReader); ok {
			require.NotEmpty(t, res.Version, "a sink that reads versions reports the version its delivery left")
		}
	}
	return res, err
}

func (s *suite) tick() {
	if tk, ok := s.h.(Ticker); ok {
		tk.Tick()
	}
}

// value makes a secret no system would invent, so finding it in an error
// means it leaked.
//
// With certificates, the value is a line of the new private key's PEM
// (inside the key's secret bytes): any leak of the key as PEM contains it.
func (s *suite) value(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	if s.certs == nil {
		return "sinktest-value-" + hex.EncodeToString(b)
	}
	c := NewCertificate(t, "sinktest-"+hex.EncodeToString(b))
	marker := KeyMarker(t, c)
	s.certs[marker] = c
	return marker
}

// requireValue checks that held is what was delivered as value.
func (s *suite) requireValue(t *testing.T, value string, held Held, msg string) {
	t.Helper()
	if s.certs == nil {
		require.Equal(t, value, held.Secret.Reveal(), msg)
		return
	}
	RequireHoldsCertificate(t, s.certs[value], held.Secret.Reveal(), msg)
}

func (s *suite) delivery(t *testing.T, req sink.BuildRequest, value string) sink.Delivery {
	t.Helper()
	s.n++
	now := time.Now().UTC().Truncate(time.Second)
	d := sink.Delivery{
		Org: req.App.Org, RunID: fmt.Sprintf("sinktest-run-%d", s.n), App: req.App,
		TenantID: req.App.TenantID, ClientID: req.App.AppID, KeyID: fmt.Sprintf("sinktest-key-%d", s.n),
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)),
		Start: now, End: now.Add(90 * 24 * time.Hour),
	}
	if c, ok := s.certs[value]; ok {
		d.Kind, d.Material = domain.KindCertificate, sink.Material{Certificate: c}
	}
	return d
}

// build builds req's sink with what the suite recorded of its target, as
// the rotation does.
func (s *suite) build(t *testing.T, req sink.BuildRequest) sink.Sink {
	t.Helper()
	tid := req.Pinned
	if tid.IsZero() {
		var err error
		tid, err = s.h.Builder(t).Resolve(req)
		require.NoError(t, err)
	}
	req.Last = s.last[tid]
	sk, err := s.h.Builder(t).Build(s.ctx, req)
	require.NoError(t, err)
	return sk
}

func (s *suite) requireHolds(t *testing.T, sk sink.Sink, keyID string, want bool) {
	t.Helper()
	h, ok := sk.(sink.Holder)
	if !ok {
		return
	}
	held, err := h.Holds(s.ctx, keyID)
	require.NoError(t, err)
	require.Equal(t, want, held, "Holds(%s)", keyID)
}

// requireStatus checks a Validate answer, if the sink can validate.
func (s *suite) requireStatus(t *testing.T, sk sink.Sink, want sink.Status, values ...string) {
	t.Helper()
	v, ok := sk.(sink.Validator)
	if !ok {
		return
	}
	got := v.Validate(s.ctx)
	require.Equal(t, want, got.Status, "Validate: %s", got.Reason)
	require.NotEmpty(t, got.Reason, "Validate explains its answer")
	if want != sink.StatusReady {
		require.Error(t, got.Err, "an unknown or failed answer carries its cause")
	}
	for _, val := range values {
		require.NotContains(t, got.Reason, val)
	}
	NoSecret(t, got.Err, values...)
}

func requireSame(t *testing.T, want, got Held) {
	t.Helper()
	require.Equal(t, want.Exists, got.Exists)
	require.Equal(t, want.Version, got.Version, "the target was written")
	require.True(t, want.Secret.Reveal() == got.Secret.Reveal(), "the target's value changed")
}

func (s *suite) delivers(t *testing.T) {
	req := s.h.Request(t)
	sk := s.build(t, req)
	require.False(t, s.h.Read(t, sk.Target()).Exists, "Request must name a fresh target")
	s.requireStatus(t, sk, sink.StatusReady)

	v := s.value(t)
	d := s.delivery(t, req, v)
	res, err := s.deliver(t, sk, d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.NotContains(t, res.Location, v)

	got := s.h.Read(t, sk.Target())
	require.True(t, got.Exists)
	s.requireValue(t, v, got, "the target holds the delivered value")
	s.requireHolds(t, sk, d.KeyID, true)
	s.requireHolds(t, sk, "sinktest-key-never-delivered", false)
	s.requireStatus(t, sk, sink.StatusReady, v)
}

func (s *suite) idempotent(t *testing.T) {
	req := s.h.Request(t)
	sk := s.build(t, req)
	v := s.value(t)
	d := s.delivery(t, req, v)
	first, err := s.deliver(t, sk, d)
	require.NoError(t, err)
	require.True(t, first.Changed)
	before := s.h.Read(t, sk.Target())
	s.tick()

	// Again, through a fresh build, as a retried or recovered run would.
	again, err := s.deliver(t, s.build(t, req), d)
	require.NoError(t, err)
	require.False(t, again.Changed, "the second delivery of the same material changes nothing")
	requireSame(t, before, s.h.Read(t, sk.Target()))
	s.requireValue(t, v, s.h.Read(t, sk.Target()), "the target still holds the value")
	s.requireHolds(t, sk, d.KeyID, true)
}

func (s *suite) replaces(t *testing.T) {
	req := s.h.Request(t)
	sk := s.build(t, req)
	_, err := s.deliver(t, sk, s.delivery(t, req, s.value(t)))
	require.NoError(t, err)
	before := s.h.Read(t, sk.Target())
	s.tick()

	v2 := s.value(t)
	d2 := s.delivery(t, req, v2)
	res, err := s.deliver(t, sk, d2)
	require.NoError(t, err)
	require.True(t, res.Changed)
	after := s.h.Read(t, sk.Target())
	require.NotEqual(t, before.Version, after.Version)
	s.requireValue(t, v2, after, "the target holds the newer value")
	s.requireHolds(t, sk, d2.KeyID, true)
}

func (s *suite) foreign(t *testing.T) {
	if !s.applies(t, SubtestForeign) {
		return
	}
	req := s.h.Request(t)
	sk := s.build(t, req)
	s.h.Foreign(t, sk.Target())
	before := s.h.Read(t, sk.Target())
	require.True(t, before.Exists, "Foreign must put something at the target")
	s.tick()

	v := s.value(t)
	s.requireStatus(t, sk, sink.StatusFailed, v)
	d := s.delivery(t, req, v)
	_, err := s.deliver(t, sk, d)
	require.Error(t, err, "a foreign target is refused")
	require.True(t, sink.IsPermanent(err), "refusing a foreign target is permanent: %v", err)
	NoSecret(t, err, v)
	requireSame(t, before, s.h.Read(t, sk.Target()))
	s.requireHolds(t, sk, d.KeyID, false)
}

func (s *suite) denied(t *testing.T) {
	req := s.h.Denied(t, s.h.Request(t))
	sk := s.build(t, req)
	v := s.value(t)
	s.requireStatus(t, sk, sink.StatusFailed, v)
	_, err := s.deliver(t, sk, s.delivery(t, req, v))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err), "denied permission is permanent: %v", err)
	NoSecret(t, err, v)
	require.False(t, s.h.Read(t, sk.Target()).Exists, "nothing was written")
	if h, ok := sk.(sink.Holder); ok {
		_, err := h.Holds(s.ctx, "sinktest-key")
		require.Error(t, err, "a sink that cannot look does not claim to know")
		NoSecret(t, err, v)
	}
}

func (s *suite) unreachable(t *testing.T) {
	req := s.h.Unreachable(t, s.h.Request(t))
	sk := s.build(t, req)
	v := s.value(t)
	s.requireStatus(t, sk, sink.StatusUnknown, v)
	_, err := s.deliver(t, sk, s.delivery(t, req, v))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err), "an unreachable target may come back: %v", err)
	NoSecret(t, err, v)
}

func (s *suite) target(t *testing.T) {
	req := s.h.Request(t)
	b := s.h.Builder(t)
	first := s.build(t, req)
	tid := first.Target()
	require.False(t, tid.IsZero())
	require.Equal(t, req.Spec.Type, tid.Kind(), "a target names its kind")
	parsed, err := sink.ParseTargetID(tid.String())
	require.NoError(t, err)
	require.Equal(t, tid, parsed, "the target round-trips through its string form")
	resolved, err := b.Resolve(req)
	require.NoError(t, err)
	require.Equal(t, tid, resolved, "Resolve says what Build targets")
	require.Equal(t, tid, s.build(t, req).Target(), "stable across builds")
	require.NotEmpty(t, first.Describe())

	// Deliver, then rename the application: the pinned sink keeps the
	// target, and Resolve reports where the template points now.
	_, err = s.deliver(t, first, s.delivery(t, req, s.value(t)))
	require.NoError(t, err)
	s.tick()
	renamed := req
	renamed.App.DisplayName = req.App.DisplayName + " Renamed"
	moved, err := b.Resolve(renamed)
	require.NoError(t, err)
	renamed.Pinned = tid
	pinned := s.build(t, renamed)
	require.Equal(t, tid, pinned.Target(), "a pinned sink keeps its target under a rename")
	if moved == tid {
		t.Logf("the spec does not follow the display name; the rename case only checks the pin")
	} else {
		rr, err := b.Resolve(renamed)
		require.NoError(t, err)
		require.Equal(t, moved, rr, "Resolve ignores the pin")
	}
	v := s.value(t)
	d := s.delivery(t, renamed, v)
	res, err := s.deliver(t, pinned, d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	s.requireValue(t, v, s.h.Read(t, tid), "the pinned target got the delivery")
	if moved != tid {
		require.False(t, s.h.Read(t, moved).Exists, "nothing went to the renamed target")
	}
}

func (s *suite) adopt(t *testing.T) {
	if !s.applies(t, SubtestAdopt) {
		return
	}
	req := s.h.Request(t)
	tid, err := s.h.Builder(t).Resolve(req)
	require.NoError(t, err)
	s.h.Foreign(t, tid)
	require.True(t, s.h.Read(t, tid).Exists, "Foreign must put something at the target")
	s.tick()

	adopting := req
	adopting.Spec = domain.SinkSpec{Type: req.Spec.Type, Settings: map[string]any{}}
	for k, v := range req.Spec.Settings {
		adopting.Spec.Settings[k] = v
	}
	adopting.Spec.Settings[sink.KeyAdopt] = true
	sk := s.build(t, adopting)
	v := s.value(t)
	if val, ok := sk.(sink.Validator); ok {
		got := val.Validate(s.ctx)
		require.Equal(t, sink.StatusReady, got.Status, "with adopt, a foreign target is writable: %s", got.Reason)
	}
	d := s.delivery(t, adopting, v)
	res, err := s.deliver(t, sk, d)
	require.NoError(t, err, "adopt: true takes a foreign target over")
	require.True(t, res.Changed)
	s.requireValue(t, v, s.h.Read(t, tid), "the adopted target holds the delivered value")
	s.requireHolds(t, sk, d.KeyID, true)
	s.tick()

	// Adopted once, it is rotor's: the next delivery needs no adopt.
	v2 := s.value(t)
	_, err = s.deliver(t, s.build(t, req), s.delivery(t, req, v2))
	require.NoError(t, err, "an adopted target is rotor's from then on")
	s.requireValue(t, v2, s.h.Read(t, tid), "the adopted target is updated")
}

func (s *suite) drift(t *testing.T) {
	if !s.applies(t, SubtestDrift) {
		return
	}
	req := s.h.Request(t)
	sk := s.build(t, req)
	vr, ok := sk.(sink.VersionReader)
	if !ok {
		t.Logf("the sink reads no versions (sink.VersionReader): its drift cannot be reported")
		return
	}
	absent, err := vr.Version(s.ctx)
	require.NoError(t, err)
	require.Empty(t, absent, "an absent target has no version")
	res, err := s.deliver(t, sk, s.delivery(t, req, s.value(t)))
	require.NoError(t, err)
	now, err := vr.Version(s.ctx)
	require.NoError(t, err)
	require.Equal(t, res.Version, now, "the version read back is the one the delivery reported")
	last := s.last[sk.Target()]
	require.False(t, sink.CompareDrift(last, now).Drifted, "no drift right after rotor's own delivery")
	tm, ok := s.h.(Tamperer)
	if !ok {
		t.Logf("the harness cannot change the target behind rotor's back (Tamperer)")
		return
	}
	s.tick()
	tm.Tamper(t, sk.Target())
	after, err := vr.Version(s.ctx)
	require.NoError(t, err)
	d := sink.CompareDrift(last, after)
	require.True(t, d.Drifted, "a change behind rotor's back is drift: %s", d.Reason)
}

// NoSecret fails t if err, any error in its chain (errors.Unwrap and
// Unwrap() []error), or their %v, %+v and %#v renderings contain any of
// values.
func NoSecret(t testing.TB, err error, values ...string) {
	t.Helper()
	walk(err, func(e error) {
		for _, r := range []string{e.Error(), fmt.Sprintf("%v", e), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			for _, v := range values {
				if v != "" && strings.Contains(r, v) {
					t.Fatalf("a secret value is in an error (%T): %s", e, strings.ReplaceAll(r, v, "<THE VALUE>"))
				}
			}
		}
	})
}

// walk visits err and every error it wraps, depth first.
func walk(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, fn)
		}
	default:
		walk(errors.Unwrap(err), fn)
	}
}
