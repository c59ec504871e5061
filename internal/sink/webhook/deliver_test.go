package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
	"github.com/rotor-dev/rotor/internal/sink/webhook"
)

const testValue = "webhook-test-value-7f3a9c2e1b"

func testApp() domain.Application {
	return domain.Application{Org: domain.DefaultOrg, TenantID: "tenant-1", ObjectID: "obj-1", AppID: "app-1", DisplayName: "Payroll API"}
}

func testDelivery(run, key string) sink.Delivery {
	now := time.Now().UTC().Truncate(time.Second)
	app := testApp()
	return sink.Delivery{Org: app.Org, RunID: run, App: app, TenantID: app.TenantID, ClientID: app.AppID, KeyID: key,
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(testValue)), Start: now, End: now.Add(30 * 24 * time.Hour)}
}

func (b bundle) build(t *testing.T, spec domain.SinkSpec, last *sink.Delivered) sink.Sink {
	t.Helper()
	s, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, App: testApp(), Last: last})
	require.NoError(t, err)
	return s
}

// A receiver answering 503 (Retry-After: 1) twice, then 200: each failed
// attempt is retryable with the receiver's hint, as the rotation's retry
// loop needs, and the receiver records the event once, under the id every
// attempt carried.
func TestRetryAfter503DeliversOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sk := b.build(t, b.spec("flaky-2-retry", true), nil)
	d := testDelivery("run-1", "key-1")
	for range 2 {
		_, err := sk.Deliver(context.Background(), d)
		require.Error(t, err)
		require.False(t, sink.IsPermanent(err), "a 503 is worth a retry: %v", err)
		var hint interface{ RetryAfterHint() time.Duration }
		require.True(t, errors.As(err, &hint))
		require.Equal(t, time.Second, hint.RetryAfterHint())
		sinktest.NoSecret(t, err, testValue, b.secrets[envKey])
	}
	res, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	got := b.events(t, b.sim.Info.Webhook.URL+"flaky-2-retry")
	require.Equal(t, 3, got.Requests)
	require.Len(t, got.Events, 1)
	require.Equal(t, webhook.EventID(d.Org, d.RunID, d.KeyID), got.Events[0].ID)
	require.Equal(t, testValue, b.open(t, got.Events[0].SecretAge))

	// The same sink does not send it again.
	again, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.False(t, again.Changed)
	require.Equal(t, 3, b.events(t, b.sim.Info.Webhook.URL+"flaky-2-retry").Requests)
}

// A delivery whose answer was lost (a crash, a timeout after the receiver
// acted) is sent again by a new sink with no record: the same event id,
// which the receiver dedupes.
func TestLostAnswerResentWithSameID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := testDelivery("run-2", "key-2")
	for range 2 {
		res, err := b.build(t, b.spec("lost", false), nil).Deliver(context.Background(), d)
		require.NoError(t, err)
		require.True(t, res.Changed)
	}
	got := b.events(t, b.sim.Info.Webhook.URL+"lost")
	require.Len(t, got.Events, 1)
	require.Equal(t, 2, got.Events[0].Attempts)
	var ev webhook.Event
	require.NoError(t, json.Unmarshal(got.Events[0].Body, &ev))
	require.Nil(t, ev.Secret, "no value without include_secret")
	require.NotContains(t, string(got.Events[0].Body), testValue)
	require.Equal(t, "key-2", ev.KeyID)
	require.Equal(t, "Payroll API", ev.Application.DisplayName)

	// With the rotation's record of the delivery, nothing is sent.
	res, err := b.build(t, b.spec("lost", false), &sink.Delivered{KeyID: "key-2"}).Deliver(context.Background(), d)
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.Equal(t, 2, b.events(t, b.sim.Info.Webhook.URL+"lost").Requests)
}

// A 400 is permanent and says what the receiver answered; a stale
// timestamp (rotor's clock 10 minutes behind) is refused by the receiver's
// replay window. Neither error, nor any log line, holds the value or the
// signing key.
func TestRefusalsArePermanentAndHoldNoSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	stale, err := webhook.Kind{}.NewBuilder(sink.Deps{Secrets: b.secrets, HTTPClient: b.sim.HTTP, Logger: log,
		Clock: clock.NewFake(time.Now().Add(-10 * time.Minute))})
	require.NoError(t, err)
	fresh, err := webhook.Kind{}.NewBuilder(sink.Deps{Secrets: b.secrets, HTTPClient: b.sim.HTTP, Logger: log, Clock: clock.Real{}})
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		b    sink.Builder
		hook string
		want string
	}{
		"rejected": {fresh, "reject-me", "HTTP 400"},
		"stale":    {stale, "stale", "tolerance"},
	} {
		sk, err := tc.b.Build(context.Background(), sink.BuildRequest{Spec: b.spec(tc.hook, true), App: testApp()})
		require.NoError(t, err)
		_, err = sk.Deliver(context.Background(), testDelivery("run-3", "key-3"))
		require.Error(t, err, name)
		require.True(t, sink.IsPermanent(err), "%s: %v", name, err)
		require.Contains(t, err.Error(), tc.want)
		sinktest.NoSecret(t, err, testValue, b.secrets[envKey])
		v := sk.(sink.Validator).Validate(context.Background())
		require.Equal(t, sink.StatusFailed, v.Status, "%s: %s", name, v.Reason)
		require.NotContains(t, v.Reason, testValue)
	}
	ok, err := fresh.Build(context.Background(), sink.BuildRequest{Spec: b.spec("logged", true), App: testApp()})
	require.NoError(t, err)
	_, err = ok.Deliver(context.Background(), testDelivery("run-4", "key-4"))
	require.NoError(t, err)
	require.Contains(t, logs.String(), "webhook delivered")
	require.NotContains(t, logs.String(), testValue)
	require.NotContains(t, logs.String(), b.secrets[envKey])
}

// The receiver reports what it was sent as a consumer: the value when it
// could open it, sealed when it was encrypted to someone else.
func TestReceiverRecordsConsumers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	sealed := b.spec("sealed", true)
	sealed.Settings[webhook.KeyRecipients] = []any{other.Recipient().String()}
	for _, spec := range []domain.SinkSpec{b.spec("opened", true), sealed} {
		_, err := b.build(t, spec, nil).Deliver(context.Background(), testDelivery("run-5", "key-5"))
		require.NoError(t, err)
	}
	byTarget := map[string]bool{}
	for _, c := range b.sim.Server.Consumers() {
		if c.Service == "webhook" {
			byTarget[c.Target] = c.Sealed
		}
	}
	require.Equal(t, map[string]bool{"/hooks/opened": false, "/hooks/sealed": true}, byTarget)
}

// An attempt gets no longer than the spec's timeout, and a timeout is
// retryable.
func TestTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // hold it open, never answer
		}
	}()
	spec := b.spec("", false)
	spec.Settings[webhook.KeyURL] = "http://" + ln.Addr().String() + "/hook"
	spec.Settings[webhook.KeyTimeout] = "1s"
	start := time.Now()
	_, err = b.build(t, spec, nil).Deliver(context.Background(), testDelivery("run-6", "key-6"))
	require.Error(t, err)
	var te *webhook.TimeoutError
	require.True(t, errors.As(err, &te), "%v", err)
	require.False(t, sink.IsPermanent(err))
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestStatusClassification(t *testing.T) {
	t.Parallel()
	for status, permanent := range map[int]bool{
		http.StatusBadRequest: true, http.StatusUnauthorized: true, http.StatusForbidden: true, http.StatusNotFound: true, http.StatusGone: true,
		http.StatusRequestTimeout: false, http.StatusTooEarly: false, http.StatusTooManyRequests: false,
		http.StatusInternalServerError: false, http.StatusBadGateway: false, http.StatusServiceUnavailable: false,
	} {
		err := &webhook.StatusError{URL: "https://h/", Status: status}
		require.Equal(t, permanent, sink.IsPermanent(err), "HTTP %d", status)
		require.True(t, strings.Contains(err.Error(), "HTTP"))
	}
}

// Validate tells a person what to fix: a URL nothing receives at is
// failed (404), a receiver that cannot be reached is unknown.
func TestValidateReasons(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nothing := b.spec("", false)
	nothing.Settings[webhook.KeyURL] = b.sim.Info.Webhook.URL + "Not_A_Hook"
	v := b.build(t, nothing, nil).(sink.Validator).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "HTTP 404")
	require.Contains(t, v.Reason, "check url")

	denied := b.spec("denied", false)
	denied.Settings[webhook.KeySigningKey] = map[string]any{"env": envWrong}
	v = b.build(t, denied, nil).(sink.Validator).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "refused rotor's signature")
	require.Contains(t, v.Reason, "environment variable "+envWrong, "names where the key comes from")
	require.NotContains(t, v.Reason, b.secrets[envWrong])

	unset := b.spec("unset", false)
	unset.Settings[webhook.KeySigningKey] = map[string]any{"env": "NOT_SET"}
	v = b.build(t, unset, nil).(sink.Validator).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status, v.Reason)

	v = b.build(t, b.spec("fine", false), nil).(sink.Validator).Validate(context.Background())
	require.Equal(t, sink.StatusReady, v.Status, v.Reason)
	got := b.events(t, b.sim.Info.Webhook.URL+"fine")
	require.Len(t, got.Events, 1)
	require.Equal(t, webhook.EventPing, got.Events[0].Type)
}
