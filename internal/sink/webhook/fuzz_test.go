package webhook_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/sink/webhook"
)

// FuzzVerify feeds the receiver's verifier outside input: it must never
// panic, and never accept what it was not signed for.
func FuzzVerify(f *testing.F) {
	f.Add(vectorKey, vectorID, "1614265330", vectorSig, []byte(vectorPayload))
	f.Add("whsec_", "", "x", "v1,", []byte{})
	f.Fuzz(func(t *testing.T, key, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		err := webhook.Verify(key, h, body, time.Unix(vectorTS, 0))
		if err == nil && (id != vectorID || string(body) != vectorPayload) {
			t.Fatalf("accepted a body or id the vector did not sign")
		}
	})
}

// FuzzCanonicalURL: no panic, and a canonical URL is a fixed point.
func FuzzCanonicalURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/rotor", "HTTP://[::1]:80", "https://x?y", "http://10.0.0.1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := webhook.CanonicalURL(raw)
		if err != nil {
			return
		}
		again, err := webhook.CanonicalURL(u)
		if err != nil || again != u {
			t.Fatalf("CanonicalURL(%q) = %q, then %q, %v", raw, u, again, err)
		}
	})
}
