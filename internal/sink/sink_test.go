package sink_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// nopSink targets "<kind>:<display name>" unless built with target.
type nopSink struct{ target sink.TargetID }

func (s nopSink) Target() sink.TargetID { return s.target }
func (s nopSink) Describe() string      { return s.target.String() }
func (s nopSink) Deliver(context.Context, sink.Delivery) (sink.Result, error) {
	return sink.Result{Changed: true}, nil
}

// kind is a fake sink kind; liar builds sinks whose target ignores the pin.
type kind struct {
	typ   string
	liar  bool
	needs bool // NewBuilder fails without Credentials
}

func (k kind) Type() string { return k.typ }
func (k kind) CheckSpec(spec domain.SinkSpec) error {
	if _, ok := spec.Settings["target"]; !ok {
		return errors.New("target is required")
	}
	return nil
}
func (k kind) NewBuilder(d sink.Deps) (sink.Builder, error) {
	if k.needs && d.Credentials == nil {
		return nil, errors.New("needs credentials")
	}
	return k, nil
}
func (k kind) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	return sink.NewTargetID(k.typ, req.App.DisplayName)
}
func (k kind) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	t, err := k.Resolve(req)
	if err != nil {
		return nil, err
	}
	if !req.Pinned.IsZero() && !k.liar {
		t = req.Pinned
	}
	return nopSink{target: t}, nil
}

var (
	_ sink.Kind    = kind{}
	_ sink.Builder = kind{}
	_ sink.Sink    = nopSink{}
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := sink.NewRegistry(kind{typ: "webhook"}, kind{typ: "keyvault"})
	require.Equal(t, []string{"keyvault", "webhook"}, r.Types())

	require.NoError(t, r.CheckSpec(domain.SinkSpec{Type: "keyvault", Settings: map[string]any{"target": "x"}}))
	require.ErrorContains(t, r.CheckSpec(domain.SinkSpec{Type: "keyvault"}), "target is required")

	err := r.CheckSpec(domain.SinkSpec{Type: "vercel"})
	require.ErrorIs(t, err, sink.ErrUnknownType)
	require.ErrorContains(t, err, `"vercel" (known: [keyvault webhook])`, "the error names what is known")

	f, err := r.Bind(sink.Deps{})
	require.NoError(t, err)
	ctx := context.Background()
	req := sink.BuildRequest{Spec: domain.SinkSpec{Type: "webhook"}, Connection: "contoso", App: domain.Application{DisplayName: "web-a"}}
	s, err := f.Build(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "webhook:web-a", s.Target().String())
	resolved, err := f.Resolve(req)
	require.NoError(t, err)
	require.Equal(t, s.Target(), resolved)

	_, err = f.Build(ctx, sink.BuildRequest{Spec: domain.SinkSpec{Type: "nope"}})
	require.ErrorIs(t, err, sink.ErrUnknownType)
	var none *sink.Factory
	_, err = none.Build(ctx, req)
	require.ErrorIs(t, err, sink.ErrUnknownType, "a nil factory knows no kind")
}

func TestRegistryWiringMistakesPanic(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { sink.NewRegistry(kind{typ: "a"}, kind{typ: "a"}) })
	require.Panics(t, func() { sink.NewRegistry(kind{typ: "Key Vault"}) })
}

func TestBindReportsMissingDependencies(t *testing.T) {
	t.Parallel()
	_, err := sink.NewRegistry(kind{typ: "a", needs: true}, kind{typ: "b", needs: true}).Bind(sink.Deps{})
	require.ErrorContains(t, err, "sink kind a: needs credentials")
	require.ErrorContains(t, err, "sink kind b: needs credentials")
}

func TestFactoryHoldsBuildersToPins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, err := sink.NewRegistry(kind{typ: "good"}, kind{typ: "liar", liar: true}).Bind(sink.Deps{})
	require.NoError(t, err)
	app := domain.Application{DisplayName: "renamed"}

	pinned, err := sink.NewTargetID("good", "original")
	require.NoError(t, err)
	s, err := f.Build(ctx, sink.BuildRequest{Spec: domain.SinkSpec{Type: "good"}, App: app, Pinned: pinned})
	require.NoError(t, err)
	require.Equal(t, pinned, s.Target(), "the pin wins over the rename")
	now, err := f.Resolve(sink.BuildRequest{Spec: domain.SinkSpec{Type: "good"}, App: app, Pinned: pinned})
	require.NoError(t, err)
	require.Equal(t, "good:renamed", now.String(), "Resolve says where the rename would move it")

	liarPin, err := sink.NewTargetID("liar", "original")
	require.NoError(t, err)
	_, err = f.Build(ctx, sink.BuildRequest{Spec: domain.SinkSpec{Type: "liar"}, App: app, Pinned: liarPin})
	require.ErrorContains(t, err, "built for pinned target liar:original but targets liar:renamed")

	_, err = f.Build(ctx, sink.BuildRequest{Spec: domain.SinkSpec{Type: "good"}, App: app, Pinned: liarPin})
	require.ErrorContains(t, err, "of another kind")
}

type permanentErr struct{ p bool }

func (e permanentErr) Error() string   { return fmt.Sprintf("permanent=%v", e.p) }
func (e permanentErr) Permanent() bool { return e.p }

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	var _ sink.Classified = permanentErr{}
	base := errors.New("boom")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unclassified", base, false},
		{"permanent", permanentErr{true}, true},
		{"transient", permanentErr{false}, false},
		{"wrapped permanent", fmt.Errorf("ctx: %w", permanentErr{true}), true},
		{"joined", errors.Join(base, permanentErr{true}), true},
		{"Permanent helper", sink.Permanent(base), true},
		{"Transient overrides a wrapped permanent", sink.Transient(permanentErr{true}), false},
		{"outermost classification wins", sink.Permanent(permanentErr{false}), true},
	} {
		require.Equal(t, tc.want, sink.IsPermanent(tc.err), tc.name)
	}
	require.NoError(t, sink.Permanent(nil))
	require.NoError(t, sink.Transient(nil))
	require.ErrorIs(t, sink.Permanent(base), base, "the cause stays reachable")
	require.Equal(t, "boom", sink.Permanent(base).Error())
}

func TestValidation(t *testing.T) {
	t.Parallel()
	require.Equal(t, sink.Validation{Status: sink.StatusReady, Reason: "fine"}, sink.FromError(nil, "fine"))
	perm := sink.Permanent(errors.New("denied"))
	v := sink.FromError(perm, "")
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Equal(t, "denied", v.Reason)
	require.ErrorIs(t, v.Err, perm)
	v = sink.FromError(errors.New("dial tcp: refused"), "")
	require.Equal(t, sink.StatusUnknown, v.Status)
	require.Equal(t, "dial tcp: refused", v.Reason)
	require.Equal(t, "explained", sink.Failed("explained", perm).Reason)
}
