package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// signed is a request to hook, signed the way Standard Webhooks says,
// written here from the specification (not with rotor's sink code).
func signed(t *testing.T, s *simtest.Sim, hook, id string, ts time.Time, body, key string) *http.Request {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "." + body))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.Info.Webhook.URL+hook, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return req
}

func status(t *testing.T, s *simtest.Sim, req *http.Request) int {
	t.Helper()
	resp, err := s.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
	wh := s.Info.Webhook
	require.NotNil(t, wh)
	require.True(t, strings.HasPrefix(wh.SigningKey, "whsec_"))
	require.True(t, strings.HasPrefix(wh.AgeRecipient, "age1"))
	require.Equal(t, wh.URL+"demo", wh.DemoURL)
	file, err := os.ReadFile(wh.SigningKeyFile)
	require.NoError(t, err)
	require.Equal(t, wh.SigningKey, strings.TrimSpace(string(file)))

	now := time.Now()
	body := `{"type":"rotor.credential.rotated","id":"evt_1"}`
	ok := func() *http.Request { return signed(t, s, "demo", "evt_1", now, body, wh.SigningKey) }

	require.Equal(t, http.StatusOK, status(t, s, ok()))
	require.Equal(t, http.StatusOK, status(t, s, ok()), "a replayed request within the window is an idempotent 2xx")

	wrong := signed(t, s, "demo", "evt_2", now, strings.ReplaceAll(body, "evt_1", "evt_2"), "whsec_"+base64.StdEncoding.EncodeToString(make([]byte, 32)))
	require.Equal(t, http.StatusUnauthorized, status(t, s, wrong))
	tampered := ok()
	tampered.Body = http.NoBody
	tampered.ContentLength = 0
	require.Equal(t, http.StatusUnauthorized, status(t, s, tampered), "the signature covers the body")
	stale := signed(t, s, "demo", "evt_1", now.Add(-6*time.Minute), body, wh.SigningKey)
	require.Equal(t, http.StatusBadRequest, status(t, s, stale), "outside the replay window")
	unsigned := ok()
	unsigned.Header.Del("webhook-signature")
	require.Equal(t, http.StatusBadRequest, status(t, s, unsigned))
	mismatched := signed(t, s, "demo", "evt_9", now, body, wh.SigningKey)
	require.Equal(t, http.StatusBadRequest, status(t, s, mismatched), "the body's id is the webhook-id")
	require.Equal(t, http.StatusBadRequest, status(t, s, signed(t, s, "reject-x", "evt_1", now, body, wh.SigningKey)))
	for range 2 {
		require.Equal(t, http.StatusServiceUnavailable, status(t, s, signed(t, s, "flaky-2-x", "evt_1", now, body, wh.SigningKey)))
	}
	require.Equal(t, http.StatusOK, status(t, s, signed(t, s, "flaky-2-x", "evt_1", now, body, wh.SigningKey)))

	code, _ := s.Do(t, http.MethodGet, wh.URL+"demo/events", nil, nil)
	require.Equal(t, http.StatusUnauthorized, code, "events need the admin token")
	code, got := s.Do(t, http.MethodGet, wh.URL+"demo/events", nil, s.AdminHeader())
	require.Equal(t, http.StatusOK, code)
	events := got["events"].([]any)
	require.Len(t, events, 1, "one event, however often it came")
	ev := events[0].(map[string]any)
	require.Equal(t, "evt_1", ev["id"])
	require.EqualValues(t, 2, ev["attempts"])
}
