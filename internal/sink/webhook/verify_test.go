package webhook_test

import (
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink/webhook"
)

// The published Standard Webhooks test vector (the reference Go library's
// TestWebhookSign, standard-webhooks/standard-webhooks libraries/go).
const (
	vectorKey     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS      = 1614265330
	vectorPayload = `{"test": 2432232314}`
	vectorSig     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vectorHeader(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestSignMatchesStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	// The reference library base64-decodes the part after whsec_.
	dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(vectorKey, "whsec_"))
	require.NoError(t, err)
	require.Equal(t, vectorSig, webhook.Sign(dec, vectorID, vectorTS, []byte(vectorPayload)))
}

// TestVerify checks the receiver's snippet: the vector verifies at its
// time; a replay outside the window, a changed body, a wrong key or a
// missing header does not; several signatures (a key rotation) verify
// when one matches.
func TestVerify(t *testing.T) {
	t.Parallel()
	at := time.Unix(vectorTS, 0)
	ok := vectorHeader(vectorID, vectorTS, vectorSig)
	require.NoError(t, webhook.Verify(vectorKey, ok, []byte(vectorPayload), at))
	require.NoError(t, webhook.Verify(vectorKey, ok, []byte(vectorPayload), at.Add(webhook.VerifyTolerance)))
	require.NoError(t, webhook.Verify(vectorKey, vectorHeader(vectorID, vectorTS, "v1,AAAA "+vectorSig), []byte(vectorPayload), at))

	for name, tc := range map[string]struct {
		key    string
		header http.Header
		body   string
		now    time.Time
	}{
		"replayed later":   {vectorKey, ok, vectorPayload, at.Add(webhook.VerifyTolerance + time.Second)},
		"from the future":  {vectorKey, ok, vectorPayload, at.Add(-webhook.VerifyTolerance - time.Second)},
		"changed body":     {vectorKey, ok, `{"test": 2432232315}`, at},
		"wrong key":        {"whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ok, vectorPayload, at},
		"changed id":       {vectorKey, vectorHeader("msg_other", vectorTS, vectorSig), vectorPayload, at},
		"missing header":   {vectorKey, http.Header{"Webhook-Id": {vectorID}}, vectorPayload, at},
		"not whsec base64": {"whsec_%%%", ok, vectorPayload, at},
	} {
		require.Error(t, webhook.Verify(tc.key, tc.header, []byte(tc.body), tc.now), name)
	}
}

// TestDocsQuoteVerify holds docs/sinks/webhook.md to the code: the Go
// snippet a receiver team pastes is verify.go's, between its markers.
func TestDocsQuoteVerify(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("verify.go")
	require.NoError(t, err)
	s := string(src)
	begin, end := strings.Index(s, "// BEGIN VERIFY SNIPPET\n"), strings.Index(s, "// END VERIFY SNIPPET")
	require.True(t, begin >= 0 && end > begin)
	snippet := strings.TrimSpace(s[begin+len("// BEGIN VERIFY SNIPPET\n") : end])
	doc, err := os.ReadFile("../../../docs/sinks/webhook.md")
	require.NoError(t, err)
	require.Contains(t, string(doc), snippet, "docs/sinks/webhook.md quotes verify.go's Verify verbatim")
}

// TestDocsPythonSnippet runs the documented Python verifier on the
// Standard Webhooks vector, where python3 is installed.
func TestDocsPythonSnippet(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	doc, err := os.ReadFile("../../../docs/sinks/webhook.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	require.True(t, ok, "the docs have a Python snippet")
	code, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	check := code + `
h = {"webhook-id": "` + vectorID + `", "webhook-timestamp": "` + strconv.Itoa(vectorTS) + `", "webhook-signature": "` + vectorSig + `"}
verify("` + vectorKey + `", h, b'` + vectorPayload + `', ` + strconv.Itoa(vectorTS) + `)
try:
    verify("` + vectorKey + `", h, b'` + vectorPayload + ` ', ` + strconv.Itoa(vectorTS) + `)
    raise SystemExit("a changed body verified")
except ValueError:
    pass
try:
    verify("` + vectorKey + `", h, b'` + vectorPayload + `', ` + strconv.Itoa(vectorTS+301) + `)
    raise SystemExit("a replay outside the window verified")
except ValueError:
    pass
`
	out, err := exec.CommandContext(t.Context(), py, "-c", check).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
