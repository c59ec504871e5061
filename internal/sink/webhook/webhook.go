// Package webhook is the "webhook" sink: it tells a receiver that an
// application's credential was rotated, by POSTing a JSON event signed as
// Standard Webhooks specifies (HMAC-SHA256 over id, timestamp and body, in
// the webhook-id, webhook-timestamp and webhook-signature headers; see
// docs/adr/0032-webhook-sink.md).
//
// A spec looks like:
//
//	sinks:
//	  - type: webhook
//	    url: https://hooks.example.com/rotor
//	    signing_key: {env: ROTOR_WEBHOOK_KEY}   # whsec_… (Standard Webhooks)
//	    include_secret: false                   # the default: no value is sent
//	    recipients: [age1…]                     # required with include_secret
//	    timeout: 10s
//	    headers: {X-Team: payroll, x-functions-key: {env: FN_KEY}}
//
// By default the event carries no secret: the receiver learns which
// credential is new (key id, validity) and fetches the value where it
// lives. With include_secret: true (https only) the value travels inside
// the event, encrypted with age to the configured recipients, so neither
// a proxy, a log of the receiver nor rotor's own error path sees it.
//
// Deliver is one attempt with a timeout: the rotation retries a retryable
// error (timeouts, 5xx, 408, 425, 429; Retry-After is kept on the error as
// a hint), and every attempt of one delivery carries the same event id, so
// a receiver that dedupes on webhook-id acts once. A webhook has no state
// rotor can read: the sink does not implement Holder or VersionReader, and
// it has no foreign target to refuse or adopt. It remembers what the
// receiver acknowledged (in the Sink, and through BuildRequest.Last), and
// skips a delivery the receiver already acknowledged.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type this package builds.
const Type = "webhook"

// Event types.
const (
	// EventRotated says an application has a new credential.
	EventRotated = "rotor.credential.rotated"
	// EventPing is what Validate sends: a receiver answers it 2xx and does
	// nothing else.
	EventPing = "rotor.ping"
)

// Event is the JSON body of a webhook request. Its ID is the webhook-id
// header: the same for every attempt of one delivery.
type Event struct {
	Type        string           `json:"type"`
	ID          string           `json:"id"`
	Org         string           `json:"org"`
	Application EventApplication `json:"application"`
	// KeyID is the new credential's key id in Entra; empty in a ping.
	KeyID string `json:"key_id,omitempty"`
	// CredentialKind is "secret" or "certificate".
	CredentialKind string `json:"credential_kind,omitempty"`
	// Certificate describes a certificate credential (public facts only,
	// the chain included); nil for a secret.
	Certificate *EventCertificate `json:"certificate,omitempty"`
	Start       *time.Time        `json:"start,omitempty"`
	End         *time.Time        `json:"end,omitempty"`
	RunID       string            `json:"run_id,omitempty"`
	// OccurredAt is when the credential became valid (a ping: when it was
	// sent); stable across retries.
	OccurredAt time.Time `json:"occurred_at"`
	// Secret is the value, encrypted to the spec's age recipients; only
	// with include_secret.
	Secret *EventSecret `json:"secret,omitempty"`
}

// EventApplication names the application whose credential changed.
type EventApplication struct {
	TenantID    string `json:"tenant_id"`
	AppID       string `json:"app_id"`
	ObjectID    string `json:"object_id"`
	DisplayName string `json:"display_name"`
}

// EventCertificate is what a receiver needs to recognise a new
// certificate without its private key: the thumbprints Azure and Windows
// name it by, its names and validity, and the public chain as PEM (which
// a receiver can install, or compare with what it fetched from Key
// Vault).
type EventCertificate struct {
	// Thumbprint is the SHA-1 thumbprint, upper-case hex (Entra's
	// customKeyIdentifier, the portal's "Thumbprint").
	Thumbprint       string    `json:"thumbprint"`
	ThumbprintSHA256 string    `json:"thumbprint_sha256"`
	Subject          string    `json:"subject"`
	Issuer           string    `json:"issuer"`
	SerialNumber     string    `json:"serial_number"`
	NotBefore        time.Time `json:"not_before"`
	NotAfter         time.Time `json:"not_after"`
	// ChainPEM is the public chain, leaf first.
	ChainPEM string `json:"chain_pem"`
}

// EventSecret is an age-encrypted value.
type EventSecret struct {
	// Age is the armored age file (-----BEGIN AGE ENCRYPTED FILE-----).
	Age string `json:"age"`
}

// EventID is the id of the event delivering keyID in run runID of org:
// derived, not random, so a retried or recovered delivery has the same
// id and a receiver that dedupes on webhook-id acts once.
func EventID(org domain.OrgID, runID, keyID string) string {
	h := sha256.Sum256([]byte(EventRotated + "\x00" + string(org) + "\x00" + runID + "\x00" + keyID))
	return "evt_" + hex.EncodeToString(h[:16])
}

// Kind is the "webhook" sink kind.
type Kind struct{}

var (
	_ sink.Kind      = Kind{}
	_ sink.Builder   = (*Builder)(nil)
	_ sink.Sink      = (*Sink)(nil)
	_ sink.Validator = (*Sink)(nil)
)

// Type returns "webhook".
func (Kind) Type() string { return Type }

// CheckSpec validates the settings without I/O, all problems at once.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// NewBuilder needs deps.Secrets (the signing key is a reference) and
// deps.HTTPClient.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	switch {
	case deps.Secrets == nil:
		return nil, errors.New("webhook sink needs a secret resolver for signing_key")
	case deps.HTTPClient == nil:
		return nil, errors.New("webhook sink needs an HTTP client")
	}
	b := &Builder{secrets: deps.Secrets, http: deps.HTTPClient, clock: deps.Clock, log: deps.Logger}
	if b.clock == nil {
		b.clock = clock.Real{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b, nil
}

// Builder builds webhook sinks.
type Builder struct {
	secrets sink.SecretResolver
	http    *http.Client
	clock   clock.Clock
	log     *slog.Logger
}

// TargetFor is the target id of the receiver at url.
func TargetFor(url string) (sink.TargetID, error) {
	u, err := CanonicalURL(url)
	if err != nil {
		return sink.TargetID{}, &SpecError{Key: KeyURL, Msg: err.Error()}
	}
	return sink.NewTargetID(Type, u)
}

// Resolve is the receiver URL's target id: the same for every application
// (one receiver hears about all of them; the event names the application).
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	return TargetFor(st.url)
}

// Build makes the sink; a pinned target's URL wins over the spec's.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	target := req.Pinned
	if target.IsZero() {
		if target, err = TargetFor(st.url); err != nil {
			return nil, err
		}
	} else if _, err := CanonicalURL(target.Ref()); err != nil || target.Kind() != Type {
		return nil, fmt.Errorf("%w: %q is not a webhook target", sink.ErrBadTargetID, target.String())
	}
	s := &Sink{b: b, st: st, target: target, url: target.Ref(), app: req.App, acked: map[string]bool{}}
	if req.Last != nil && req.Last.KeyID != "" {
		s.acked[req.Last.KeyID] = true
	}
	return s, nil
}

// Sink posts events about one application to one receiver.
type Sink struct {
	b      *Builder
	st     settings
	target sink.TargetID
	url    string
	app    domain.Application

	mu sync.Mutex
	// acked are the key ids the receiver acknowledged (2xx) to this sink,
	// or that the rotation recorded as delivered.
	acked map[string]bool
}

// Target is the receiver URL's target id.
func (s *Sink) Target() sink.TargetID { return s.target }

// Describe names the receiver.
func (s *Sink) Describe() string { return "webhook " + s.url }

// Deliver posts the rotated event, once; see the package comment.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	if d.KeyID == "" {
		return sink.Result{}, sink.Permanent(errors.New("webhook sink: the delivery has no key id"))
	}
	id := EventID(d.Org, d.RunID, d.KeyID)
	s.mu.Lock()
	done := s.acked[d.KeyID]
	s.mu.Unlock()
	if done {
		return sink.Result{Location: s.location(id), Note: "the receiver already acknowledged this credential; nothing sent"}, nil
	}
	start, end := d.Start.UTC(), d.End.UTC()
	ev := Event{
		Type: EventRotated, ID: id, Org: string(d.Org),
		Application: EventApplication{TenantID: d.TenantID, AppID: d.ClientID, ObjectID: d.App.ObjectID, DisplayName: d.App.DisplayName},
		KeyID:       d.KeyID, CredentialKind: string(d.Kind), Start: &start, End: &end, RunID: d.RunID, OccurredAt: start,
	}
	if c := d.Material.Certificate; c != nil && c.Leaf() != nil {
		l := c.Leaf()
		ev.Certificate = &EventCertificate{Thumbprint: sink.Thumbprint(l), ThumbprintSHA256: sink.ThumbprintSHA256(l),
			Subject: l.Subject.String(), Issuer: l.Issuer.String(), SerialNumber: l.SerialNumber.Text(16),
			NotBefore: l.NotBefore.UTC(), NotAfter: l.NotAfter.UTC(), ChainPEM: string(c.ChainPEM())}
	}
	var redact []string
	if s.st.includeSecret {
		// A certificate travels as its PEM private key and chain.
		v, err := sink.SecretOrEncoded("webhook", d.Material, sink.FormatPEM)
		if err != nil {
			return sink.Result{}, fmt.Errorf("include_secret: %w", err)
		}
		ct, err := s.seal(v)
		if err != nil {
			return sink.Result{}, err
		}
		ev.Secret = &EventSecret{Age: ct}
		redact = append(redact, v.Reveal())
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return sink.Result{}, fmt.Errorf("webhook sink: encode event: %w", err)
	}
	if err := s.post(ctx, id, body, redact); err != nil {
		return sink.Result{}, err
	}
	s.mu.Lock()
	s.acked[d.KeyID] = true
	s.mu.Unlock()
	s.b.log.Info("webhook delivered", "url", s.url, "event", id, "key_id", d.KeyID, "include_secret", s.st.includeSecret)
	return sink.Result{Changed: true, Location: s.location(id)}, nil
}

func (s *Sink) location(id string) string { return s.url + " (event " + id + ")" }

// seal encrypts v to the recipients, armored. This is the one place the
// value leaves rotor.
func (s *Sink) seal(v secret.Value) (string, error) {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, s.st.recipients...)
	if err != nil {
		// age's errors name recipients' types, never the plaintext.
		return "", sink.Permanent(fmt.Errorf("webhook sink: encrypt to the recipients: %w", err))
	}
	if _, err := io.WriteString(w, v.Reveal()); err != nil {
		return "", fmt.Errorf("webhook sink: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("webhook sink: encrypt: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("webhook sink: encrypt: %w", err)
	}
	return buf.String(), nil
}

// Validate sends a signed rotor.ping event: ready when the receiver
// answers 2xx (it exists, and accepts rotor's signature); failed when it
// refuses (a wrong signing key, a wrong URL, a 4xx) or the signing key
// cannot be read; unknown when it cannot be reached or answers 5xx/429.
// The ping carries no credential and no value.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	now := s.b.clock.Now().UTC()
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	id := "ping_" + hex.EncodeToString(rnd[:])
	body, err := json.Marshal(Event{Type: EventPing, ID: id, Org: string(s.app.Org), OccurredAt: now,
		Application: EventApplication{TenantID: s.app.TenantID, AppID: s.app.AppID, ObjectID: s.app.ObjectID, DisplayName: s.app.DisplayName}})
	if err != nil {
		return sink.Unknown("", err)
	}
	err = s.post(ctx, id, body, nil)
	var se *StatusError
	switch {
	case err == nil:
		return sink.Ready(fmt.Sprintf("the receiver at %s accepted a signed %s event", s.url, EventPing))
	case errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden):
		return sink.Failed(fmt.Sprintf("the receiver at %s refused rotor's signature (HTTP %d): signing_key (%s) must be the secret the receiver verifies with", s.url, se.Status, s.st.signingKey), err)
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return sink.Failed(fmt.Sprintf("nothing receives webhooks at %s (HTTP 404): check url", s.url), err)
	case sink.IsPermanent(err):
		return sink.Failed("", err)
	}
	return sink.Unknown(fmt.Sprintf("could not ask the receiver at %s: %v", s.url, err), err)
}

// post sends one signed request and classifies the answer. redact are
// values that must not appear in an error even if the receiver echoes them.
func (s *Sink) post(ctx context.Context, id string, body []byte, redact []string) error {
	keyVal, err := s.b.secrets.Resolve(ctx, s.st.signingKey)
	if err != nil {
		return fmt.Errorf("webhook sink: signing_key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(keyVal.Reveal(), "whsec_"))
	if err != nil || len(key) < 16 {
		return sink.Permanent(fmt.Errorf("webhook sink: signing_key (%s) is not a Standard Webhooks secret: whsec_ followed by the base64 of 16 to 64 random bytes", s.st.signingKey))
	}
	redact = append(redact, keyVal.Reveal())
	hdr := http.Header{}
	for _, h := range s.st.headers {
		if h.ref == nil {
			hdr.Set(h.name, h.value)
			continue
		}
		v, err := s.b.secrets.Resolve(ctx, *h.ref)
		if err != nil {
			return fmt.Errorf("webhook sink: headers.%s: %w", h.name, err)
		}
		hdr.Set(h.name, v.Reveal())
		redact = append(redact, v.Reveal())
	}
	ts := s.b.clock.Now().Unix()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("User-Agent", "rotor-webhook/1")
	hdr.Set("webhook-id", id)
	hdr.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	hdr.Set("webhook-signature", Sign(key, id, ts, body))

	ctx, cancel := context.WithTimeout(ctx, s.st.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return sink.Permanent(fmt.Errorf("webhook sink: request to %s: %w", s.url, err))
	}
	req.Header = hdr
	resp, err := s.b.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &TimeoutError{URL: s.url, Timeout: s.st.timeout}
		}
		// A *url.Error names the method and the URL (which holds no key:
		// CanonicalURL refuses queries and user information).
		return sink.Transient(fmt.Errorf("webhook sink: POST %s: %w", s.url, unwrapURLError(err)))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &StatusError{URL: s.url, Status: resp.StatusCode, Body: clip(string(raw), redact),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), s.b.clock.Now())}
}

// Sign is the webhook-signature value of body sent as event id at Unix
// time ts with key: "v1," and the base64 HMAC-SHA256 of "id.ts.body"
// (Standard Webhooks).
func Sign(key []byte, id string, ts int64, body []byte) string {
	mac := hmacSHA256(key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// unwrapURLError drops *url.Error's quoting of the method and URL, which
// the caller names already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// maxBodyInError bounds the receiver's answer quoted in an error.
const maxBodyInError = 300

// clip makes a receiver's answer fit for an error: values rotor sent
// removed, control characters replaced, at most maxBodyInError bytes.
func clip(body string, redact []string) string {
	for _, v := range redact {
		if v != "" {
			body = strings.ReplaceAll(body, v, "[REDACTED]")
		}
	}
	body = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(body))
	if len(body) > maxBodyInError {
		cut := maxBodyInError
		for cut > 0 && !utf8Start(body[cut]) {
			cut--
		}
		body = body[:cut] + "…"
	}
	return body
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
