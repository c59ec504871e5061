package graph

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

func TestAdmitGraphAlwaysAdmitsWhenThrottleIsOff(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, clock.NewFake(time.Now()))
	for range 10_000 {
		require.True(t, s.admitGraph(httptest.NewRecorder(), "t", "a", 100, true))
	}
	require.Equal(t, int64(10_000), s.Stats().GraphWrites)
	require.Zero(t, s.Stats().Throttled)
}

func TestAdmitGraphResourceUnitBucket(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newTestServer(t, fake)
	// 3500 RU * 0.01 = 35 RU per 10 s.
	require.NoError(t, s.SetFaults(core.FaultConfig{Throttle: true, ThrottleScale: 0.01}))

	for i := range 17 {
		require.True(t, s.admitGraph(httptest.NewRecorder(), "t1", "app", 2, false), "request %d", i)
	}
	w := httptest.NewRecorder()
	w.Header().Set("client-request-id", "cr-1")
	require.False(t, s.admitGraph(w, "t1", "app", 2, false))
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, retry, 1)
	require.Equal(t, "Tenant_Application/ReadWrite/t1/app", w.Header().Get("x-ms-throttle-scope"))
	var body struct {
		Error struct {
			Code       string
			Message    string
			InnerError map[string]string
		}
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "TooManyRequests", body.Error.Code)
	require.Equal(t, "Too many requests.", body.Error.Message)
	require.Equal(t, "cr-1", body.Error.InnerError["client-request-id"])
	require.NotEmpty(t, body.Error.InnerError["request-id"])
	require.NotEmpty(t, body.Error.InnerError["date"])

	// Buckets are per app+tenant.
	require.True(t, s.admitGraph(httptest.NewRecorder(), "t1", "other-app", 2, false))
	require.True(t, s.admitGraph(httptest.NewRecorder(), "t2", "app", 2, false))

	// Waiting Retry-After (on the simulated clock) is enough.
	fake.Advance(time.Duration(retry) * time.Second)
	require.True(t, s.admitGraph(httptest.NewRecorder(), "t1", "app", 2, false))
	require.Equal(t, int64(1), s.Stats().Throttled)

	// Turning throttling off admits at once.
	for range 100 {
		require.NoError(t, s.SetFaults(core.FaultConfig{}))
		require.True(t, s.admitGraph(httptest.NewRecorder(), "t1", "app", 2, false))
	}
}

func TestAdmitGraphWriteBucket(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newTestServer(t, fake)
	// 3000 writes * 0.001 = 3 writes per 150 s (RU bucket 3.5 per 10 s).
	require.NoError(t, s.SetFaults(core.FaultConfig{Throttle: true, ThrottleScale: 0.001}))
	for range 3 {
		require.True(t, s.admitGraph(httptest.NewRecorder(), "t", "a", 1, true))
		fake.Advance(10 * time.Second) // the RU bucket refills, the write bucket barely does
	}
	w := httptest.NewRecorder()
	require.False(t, s.admitGraph(w, "t", "a", 1, true))
	require.Equal(t, "Tenant_Application/Write/t/a", w.Header().Get("x-ms-throttle-scope"))
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, retry, 10, "writes refill over 150 s")
	require.True(t, s.admitGraph(httptest.NewRecorder(), "t", "a", 1, false), "reads still pass")
	fake.Advance(time.Duration(retry) * time.Second)
	require.True(t, s.admitGraph(httptest.NewRecorder(), "t", "a", 1, true))
}
