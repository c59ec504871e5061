package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
	"github.com/rotor-dev/rotor/internal/sink/webhook"
)

// Environment names the test's secret resolver knows.
const (
	envKey   = "WEBHOOK_KEY"
	envWrong = "WEBHOOK_WRONG_KEY"
)

// mapSecrets resolves {env: NAME} from a map, as the server's resolver
// does from the environment.
type mapSecrets map[string]string

func (m mapSecrets) Resolve(_ context.Context, ref sink.SecretRef) (secret.Value, error) {
	v, ok := m[ref.Env]
	if !ok || ref.Env == "" {
		return secret.Value{}, sink.Permanent(fmt.Errorf("%s is not set", ref))
	}
	return secret.New(v), nil
}

// bundle is what the tests need: the simulator, a builder bound to it, and
// an age identity of the test's own (every spec encrypts to it as well as
// to the receiver's, so Read can open what the receiver got).
type bundle struct {
	sim      *simtest.Sim
	builder  sink.Builder
	identity *age.X25519Identity
	secrets  mapSecrets
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
	require.NotNil(t, s.Info.Webhook, "sim.json publishes the webhook receiver")
	wrong := make([]byte, 32)
	_, err := rand.Read(wrong)
	require.NoError(t, err)
	secrets := mapSecrets{envKey: s.Info.Webhook.SigningKey, envWrong: "whsec_" + base64.StdEncoding.EncodeToString(wrong)}
	b, err := webhook.Kind{}.NewBuilder(sink.Deps{Secrets: secrets, HTTPClient: s.HTTP, Clock: clock.Real{}})
	require.NoError(t, err)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	return bundle{sim: s, builder: b, identity: id, secrets: secrets}
}

func (b bundle) spec(hook string, includeSecret bool) domain.SinkSpec {
	st := map[string]any{
		webhook.KeyURL:        b.sim.Info.Webhook.URL + hook,
		webhook.KeySigningKey: map[string]any{"env": envKey},
	}
	if includeSecret {
		st[webhook.KeyIncludeSecret] = true
		st[webhook.KeyRecipients] = []any{b.sim.Info.Webhook.AgeRecipient, b.identity.Recipient().String()}
	}
	return domain.SinkSpec{Type: webhook.Type, Settings: st}
}

// received is GET /hooks/{name}/events.
type received struct {
	Requests int `json:"requests"`
	Events   []struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Attempts  int             `json:"attempts"`
		Body      json.RawMessage `json:"body"`
		SecretAge string          `json:"secret_age"`
		Decrypted bool            `json:"decrypted"`
	} `json:"events"`
}

func (b bundle) events(t *testing.T, url string) received {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.sim.AdminToken)
	resp, err := b.sim.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out received
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func (b bundle) open(t *testing.T, armored string) string {
	t.Helper()
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader([]byte(armored))), b.identity)
	require.NoError(t, err)
	v, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(v)
}

// TestConformance runs the sink suite against the simulator's receiver
// over HTTPS.
func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)})
}

type harness struct {
	b bundle
	n atomic.Int64
}

var (
	_ sinktest.Harness       = (*harness)(nil)
	_ sinktest.NotApplicable = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

// Request is a fresh hook per call. A webhook URL does not follow the
// application's name (one receiver hears about every application), so the
// suite's rename case checks only the pin.
func (h *harness) Request(*testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	id := fmt.Sprintf("conf-app-%d", n)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: "tenant-conf", ObjectID: "obj-" + id, AppID: id, DisplayName: fmt.Sprintf("Conformance App %d", n)}
	return sink.BuildRequest{Spec: h.b.spec(fmt.Sprintf("conf-%d", n), true), App: app}
}

// NotApplicable: a receiver keeps no state rotor could find foreign, take
// over or read a version of.
func (h *harness) NotApplicable(subtest string) string {
	switch subtest {
	case sinktest.SubtestForeign:
		return "a webhook receiver holds no value rotor could overwrite: every event is new information, so nothing is foreign"
	case sinktest.SubtestAdopt:
		return "a webhook has no existing target to take over (the spec refuses adopt)"
	case sinktest.SubtestDrift:
		return "a webhook receiver exposes no version or timestamp of what it holds"
	}
	return ""
}

func (h *harness) Foreign(t *testing.T, _ sink.TargetID) { t.Fatal("not applicable") }

// Read is the last credential event the hook received: its id is the
// version, and the value is what the test's own identity opens.
func (h *harness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	got := h.b.events(t, target.Ref())
	for i := len(got.Events) - 1; i >= 0; i-- {
		ev := got.Events[i]
		if ev.Type != webhook.EventRotated {
			continue
		}
		require.True(t, ev.Decrypted, "the receiver opened the secret with its identity")
		return sinktest.Held{Exists: true, Version: ev.ID, Secret: secret.New(h.b.open(t, ev.SecretAge))}
	}
	return sinktest.Held{}
}

// Denied signs with a key the receiver does not know: it answers 401.
func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[webhook.KeySigningKey] = map[string]any{"env": envWrong}
	return req
}

// Unreachable points the URL at a loopback port nothing listens on.
func (h *harness) Unreachable(t *testing.T, req sink.BuildRequest) sink.BuildRequest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	req.Spec.Settings = maps.Clone(req.Spec.Settings)
	req.Spec.Settings[webhook.KeyURL] = "https://" + addr + "/hooks/unreachable"
	return req
}
