package sink_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

type nopSink struct{ name string }

func (s nopSink) Describe() string { return s.name }
func (s nopSink) Deliver(context.Context, sink.Delivery) (sink.Result, error) {
	return sink.Result{Changed: true}, nil
}

type builder struct{ typ string }

func (b builder) Type() string { return b.typ }
func (b builder) CheckSpec(spec domain.SinkSpec) error {
	if _, ok := spec.Settings["target"]; !ok {
		return errors.New("target is required")
	}
	return nil
}
func (b builder) Build(spec domain.SinkSpec, _ string, app domain.Application) (sink.Sink, error) {
	return nopSink{name: b.typ + ":" + app.DisplayName}, nil
}

var _ sink.Builder = builder{}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := sink.NewRegistry(builder{"webhook"}, builder{"keyvault"})
	require.Equal(t, []string{"keyvault", "webhook"}, r.Types())

	require.NoError(t, r.CheckSpec(domain.SinkSpec{Type: "keyvault", Settings: map[string]any{"target": "x"}}))
	require.ErrorContains(t, r.CheckSpec(domain.SinkSpec{Type: "keyvault"}), "target is required")

	err := r.CheckSpec(domain.SinkSpec{Type: "vercel"})
	require.ErrorIs(t, err, sink.ErrUnknownType)
	require.ErrorContains(t, err, `"vercel" (known: [keyvault webhook])`, "the error names what is known")

	s, err := r.Build(domain.SinkSpec{Type: "webhook"}, "contoso", domain.Application{DisplayName: "web-a"})
	require.NoError(t, err)
	require.Equal(t, "webhook:web-a", s.Describe())
	_, err = r.Build(domain.SinkSpec{Type: "nope"}, "contoso", domain.Application{})
	require.ErrorIs(t, err, sink.ErrUnknownType)
}
