// Package webhook is the simulator's webhook receiver: what a team that
// consumes rotor's webhook events runs, on an HTTPS listener of its own.
// It verifies every request as Standard Webhooks specifies (webhook-id,
// webhook-timestamp within five minutes of its wall clock, webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with its signing key),
// dedupes on webhook-id, decrypts an included secret with its own age
// identity and reports it as a consumer (GET /_sim/consumers).
//
// It is written from the specification, not with rotor's sink code, so a
// mistake in rotor's signing is not mirrored here.
//
// Routes (any hook name of lower-case letters, digits and dashes exists):
//
//	POST /hooks/{name}          receive an event: 200, 400 (malformed or stale), 401 (bad signature)
//	GET  /hooks/{name}/events   what the hook received (the admin token: Authorization: Bearer …)
//
// Names choose failures, for tests: reject-… answers every event 400;
// flaky-N-… answers its first N requests 503 with Retry-After: 1.
package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// ServiceName is the consumer service name in GET /_sim/consumers.
const ServiceName = "webhook"

// DemoHook is the hook the demo's rotor.yaml points at.
const DemoHook = "demo"

// SigningKeyFile is the file in the state dir holding the signing key, for
// a rotor.yaml's signing_key: {file: …}.
const SigningKeyFile = "webhook-signing-key"

// Tolerance is the replay window, as Standard Webhooks recommends.
const Tolerance = 5 * time.Minute

const maxBody = 256 * 1024

var (
	hookName  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	flakyName = regexp.MustCompile(`^flaky-([0-9]{1,3})-`)
)

// Service is the receiver.
type Service struct {
	*core.Core
	key      []byte
	keyText  string
	identity *age.X25519Identity
	l        *core.Listener

	mu    sync.Mutex
	hooks map[string]*hook
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

type hook struct {
	requests int
	events   []*Received
	byID     map[string]*Received
}

// Received is one event as the receiver keeps it: never a plaintext value
// (an included secret stays the ciphertext it came as).
type Received struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Timestamp  int64           `json:"timestamp"`
	ReceivedAt time.Time       `json:"received_at"`
	Attempts   int             `json:"attempts"`
	Body       json.RawMessage `json:"body"`
	// SecretAge is the event's secret.age, when it had one.
	SecretAge string `json:"secret_age,omitempty"`
	// Decrypted is true when the receiver's identity opened SecretAge.
	Decrypted bool `json:"decrypted,omitempty"`
}

// Register makes the signing key and the age identity and asks for the
// receiver's own HTTPS listener.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.hooks = map[string]*hook{}
	s.key = make([]byte, 32)
	if _, err := rand.Read(s.key); err != nil {
		return err
	}
	s.keyText = "whsec_" + base64.StdEncoding.EncodeToString(s.key)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	s.identity = id
	s.l = r.Listen("webhook", true, s.WithFaults(nil, http.HandlerFunc(s.serve)))
	return nil
}

// Started publishes the receiver in sim.json and writes the signing key
// beside it (mode 0600), for rotor.yaml's {file: …}.
func (s *Service) Started(info *simfile.Info) error {
	path := filepath.Join(filepath.Dir(info.CAFile), SigningKeyFile)
	if err := os.WriteFile(path, []byte(s.keyText+"\n"), 0o600); err != nil {
		return err
	}
	base := "https://" + s.l.HostPort() + "/hooks/"
	info.Webhook = &simfile.Webhook{
		URL: base, DemoURL: base + DemoHook, SigningKey: s.keyText, SigningKeyFile: path,
		AgeRecipient: s.identity.Recipient().String(),
	}
	return nil
}

type errBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	if !ok {
		writeJSON(w, http.StatusNotFound, errBody{"no such path: hooks are at /hooks/{name}"})
		return
	}
	name, sub, _ := strings.Cut(rest, "/")
	if !hookName.MatchString(name) {
		writeJSON(w, http.StatusNotFound, errBody{"no such hook: names are lower-case letters, digits and dashes"})
		return
	}
	switch {
	case sub == "" && r.Method == http.MethodPost:
		s.receive(w, r, name)
	case sub == "events" && r.Method == http.MethodGet:
		s.events(w, r, name)
	case sub == "" || sub == "events":
		w.Header().Set("Allow", map[bool]string{true: "POST", false: "GET"}[sub == ""])
		writeJSON(w, http.StatusMethodNotAllowed, errBody{"method not allowed"})
	default:
		writeJSON(w, http.StatusNotFound, errBody{"no such path"})
	}
}

func (s *Service) hook(name string) *hook {
	h := s.hooks[name]
	if h == nil {
		h = &hook{byID: map[string]*Received{}}
		s.hooks[name] = h
	}
	return h
}

// receive verifies and records one event.
func (s *Service) receive(w http.ResponseWriter, r *http.Request, name string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, errBody{"body too large or unreadable"})
		return
	}
	s.mu.Lock()
	h := s.hook(name)
	h.requests++
	n := h.requests
	s.mu.Unlock()
	if m := flakyName.FindStringSubmatch(name); m != nil {
		if fails, _ := strconv.Atoi(m[1]); n <= fails {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, errBody{"the receiver is unavailable (flaky hook)"})
			return
		}
	}
	id := r.Header.Get("webhook-id")
	tsText := r.Header.Get("webhook-timestamp")
	sigs := r.Header.Get("webhook-signature")
	if id == "" || tsText == "" || sigs == "" {
		writeJSON(w, http.StatusBadRequest, errBody{"missing webhook-id, webhook-timestamp or webhook-signature"})
		return
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errBody{"webhook-timestamp is not Unix seconds"})
		return
	}
	if d := s.Wall().Now().Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		writeJSON(w, http.StatusBadRequest, errBody{"webhook-timestamp is outside the 5-minute tolerance"})
		return
	}
	if !s.signed(id, ts, body, sigs) {
		writeJSON(w, http.StatusUnauthorized, errBody{"no webhook-signature matches"})
		return
	}
	var ev struct {
		Type   string `json:"type"`
		ID     string `json:"id"`
		Secret *struct {
			Age string `json:"age"`
		} `json:"secret"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		writeJSON(w, http.StatusBadRequest, errBody{"the body is not a JSON event with a type"})
		return
	}
	if ev.ID != id {
		writeJSON(w, http.StatusBadRequest, errBody{"the body's id is not the webhook-id"})
		return
	}
	if strings.HasPrefix(name, "reject-") {
		writeJSON(w, http.StatusBadRequest, errBody{"the receiver rejects this event (reject hook)"})
		return
	}
	rec := &Received{ID: id, Type: ev.Type, Timestamp: ts, ReceivedAt: s.Clock().Now().UTC(), Attempts: 1, Body: body}
	var plain string
	if ev.Secret != nil && ev.Secret.Age != "" {
		rec.SecretAge = ev.Secret.Age
		if v, err := s.open(ev.Secret.Age); err == nil {
			rec.Decrypted, plain = true, v
		}
	}
	s.mu.Lock()
	if got, dup := h.byID[id]; dup {
		got.Attempts++
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate", "id": id})
		return
	}
	h.byID[id] = rec
	h.events = append(h.events, rec)
	s.mu.Unlock()
	switch target := "/hooks/" + name; {
	case rec.Decrypted:
		s.RecordConsumer(ServiceName, target, "", plain)
	case rec.SecretAge != "":
		s.RecordSealedConsumer(ServiceName, target, "")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "received", "id": id})
}

// signed checks the signatures as Standard Webhooks specifies.
func (s *Service) signed(id string, ts int64, body []byte, sigs string) bool {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Split(sigs, " ") {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// open decrypts an armored age file with the receiver's identity.
func (s *Service) open(armored string) (string, error) {
	rd, err := age.Decrypt(armor.NewReader(bytes.NewReader([]byte(armored))), s.identity)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(rd, 64*1024))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// events lists what a hook received, to the admin token's holder.
func (s *Service) events(w http.ResponseWriter, r *http.Request, name string) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.AdminToken())) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rotor-sim"`)
		writeJSON(w, http.StatusUnauthorized, errBody{"the admin token is required"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := struct {
		Requests int         `json:"requests"`
		Events   []*Received `json:"events"`
	}{Events: []*Received{}}
	if h := s.hooks[name]; h != nil {
		out.Requests = h.requests
		out.Events = append(out.Events, h.events...)
	}
	writeJSON(w, http.StatusOK, out)
}
