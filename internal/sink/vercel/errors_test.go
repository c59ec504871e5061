package vercel

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// raceTransport creates a foreign variable right before the sink's first
// create reaches the simulator: someone else won the race.
type raceTransport struct {
	next http.RoundTripper
	once sync.Once
	race func()
}

func (rt *raceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/env") {
		rt.once.Do(rt.race)
	}
	return rt.next.RoundTrip(r)
}

// TestCreatedMeanwhile: a variable created by someone else between the
// sink's read and its write is not overwritten; the retry refuses it as
// foreign.
func TestCreatedMeanwhile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := Locator{Project: b.v.Project, Key: "RACE_SECRET", Targets: DefaultTargets}
	rt := &raceTransport{next: b.sim.HTTP.Transport, race: func() {
		code, body := b.api(t, http.MethodPost, "/v10/projects/"+b.v.Project+"/env",
			map[string]any{"key": "RACE_SECRET", "value": "theirs", "type": "encrypted", "target": []string{"production"}})
		require.Equal(t, http.StatusCreated, code, body)
	}}
	bl, err := Kind{}.NewBuilder(sink.Deps{HTTPClient: &http.Client{Transport: rt}, Secrets: envSecrets{"VERCEL_TOKEN": b.v.Token}})
	require.NoError(t, err)
	sk, err := bl.Build(ctx, sink.BuildRequest{Spec: b.spec("RACE_SECRET", nil), App: testApp})
	require.NoError(t, err)

	_, err = sk.Deliver(ctx, delivery(testApp, "k-race", "mine"))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err), "retryable: %v", err)
	sinktest.NoSecret(t, err, "mine")
	e := b.find(t, loc)
	require.NotNil(t, e)
	require.Empty(t, e["comment"], "the other variable is untouched")

	_, err = b.build(t, b.spec("RACE_SECRET", nil), testApp).Deliver(ctx, delivery(testApp, "k-race", "mine"))
	var no *NotOwnedError
	require.ErrorAs(t, err, &no, "the retry sees a foreign variable")
}

// TestServiceUnavailable: Vercel failing (5xx) is unknown to Validate and
// retryable to Deliver.
func TestServiceUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.sim.Server.SetFaults(sim.FaultConfig{ErrorRate: 1}))
	sk := b.build(t, b.spec("DOWN_SECRET", nil), testApp)
	v := sk.Validate(context.Background())
	require.Equal(t, sink.StatusUnknown, v.Status, v.Reason)
	require.Contains(t, v.Reason, "HTTP 503")
	_, err := sk.Deliver(context.Background(), delivery(testApp, "k", "down-value"))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err))
}

func TestClassification(t *testing.T) {
	t.Parallel()
	for status, permanent := range map[int]bool{400: true, 401: true, 403: true, 404: true, 409: true, 408: false, 429: false, 500: false, 502: false, 503: false} {
		require.Equal(t, permanent, (&APIError{StatusCode: status}).Permanent(), "%d", status)
	}
	now := time.Unix(1_700_000_000, 0)
	for name, tc := range map[string]struct {
		h    http.Header
		want time.Duration
	}{
		"seconds":        {http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		"date":           {http.Header{"Retry-After": {now.Add(30 * time.Second).UTC().Format(http.TimeFormat)}}, 30 * time.Second},
		"ratelimit":      {http.Header{"X-Ratelimit-Reset": {"1700000012"}}, 12 * time.Second},
		"reset passed":   {http.Header{"X-Ratelimit-Reset": {"1600000000"}}, 0},
		"nothing":        {http.Header{}, 0},
		"garbage header": {http.Header{"Retry-After": {"soon"}}, 0},
	} {
		require.Equal(t, tc.want, retryAfter(tc.h, now), name)
	}
	e := apiError("op", &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"3"}}},
		[]byte(`{"error":{"code":"rate_limited","message":"slow down, value secret-xyz"}}`), "secret-xyz")
	require.False(t, e.Permanent())
	require.Contains(t, e.Error(), "retry after 3s")
	require.NotContains(t, e.Error(), "secret-xyz", "a value Vercel echoes is cut out")
}
