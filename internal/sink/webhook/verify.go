package webhook

// This file is the receiver's side of the signature, and it is the code
// docs/sinks/webhook.md quotes for receiver teams to paste (a test checks
// the quote is this file's text, between the markers). It uses the
// standard library only, so it can be copied into any Go program.

// BEGIN VERIFY SNIPPET
import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VerifyTolerance is how far a request's webhook-timestamp may be from the
// receiver's clock, either way, as in Standard Webhooks.
const VerifyTolerance = 5 * time.Minute

// Verify checks one webhook request from rotor (Standard Webhooks,
// HMAC-SHA256): secret is the signing key as configured ("whsec_" and
// base64), header the request's headers, body its raw bytes, now the
// receiver's clock. A nil error means rotor sent exactly this body within
// the tolerance. Reject the request otherwise (401), and drop a request
// whose webhook-id you have already processed (answer it 2xx): that is
// rotor retrying an event you have.
func Verify(secret string, header http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return errors.New("webhook: the signing secret is not whsec_ followed by base64")
	}
	id := header.Get("webhook-id")
	ts := header.Get("webhook-timestamp")
	sigs := header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("webhook: webhook-id, webhook-timestamp or webhook-signature is missing")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("webhook: webhook-timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > VerifyTolerance || d < -VerifyTolerance {
		return errors.New("webhook: webhook-timestamp is outside the tolerance (a replay, or a wrong clock)")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(sec, 10) + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(sigs) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("webhook: no webhook-signature matches the body")
}

// END VERIFY SNIPPET
