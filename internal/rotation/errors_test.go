package rotation

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// walkErrors visits err and everything its Unwrap (single or joined)
// reaches.
func walkErrors(err error, visit func(error)) {
	if err == nil {
		return
	}
	visit(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, visit)
		}
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), visit)
	}
}

// TestNoErrorChainReachesTheSecret: a sink that quotes the new secret in
// its error (a careless SDK, a server echoing the request) is classified
// first and then cut off: no message, no %+v, and no error reachable by
// unwrapping the run's error holds the value, yet the classification
// (permanent) survives.
func TestNoErrorChainReachesTheSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy.Sinks[1].Settings = map[string]any{"name": "ado", "echo": true}
	e := b.engine(t)
	_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	var re *RunError
	require.ErrorAs(t, err, &re)
	require.True(t, re.Permanent, "the sink's permanent error is still permanent after redaction")
	values := b.dir.allValues()
	require.NotEmpty(t, values)
	n := 0
	walkErrors(err, func(e error) {
		n++
		for _, v := range values {
			require.NotContains(t, e.Error(), v)
			require.NotContains(t, fmt.Sprintf("%+v %#v", e, e), v)
		}
	})
	require.Greater(t, n, 1, "the chain was walked")
	require.False(t, errors.Is(err, errPolicy), "the original error, which quotes the value, is not reachable")
	b.assertNoSecretAtRest(t)
}
