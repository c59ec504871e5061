package rotation

import (
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/certgen"
)

// What a target might echo of a certificate credential's private half —
// the PEM key whole, cut short, JSON-escaped, one line of it alone, or the
// PKCS#12 in base64 — never survives the runner's scrub.
func TestScrubKeyMaterial(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c, err := certgen.Generate(certgen.Request{Subject: pkix.Name{CommonName: "scrub"}, NotBefore: now, NotAfter: now.Add(time.Hour)})
	require.NoError(t, err)
	kp, err := c.KeyPEM()
	require.NoError(t, err)
	key := kp.Reveal()
	lines := strings.Split(strings.TrimSpace(key), "\n")
	escaped, err := json.Marshal(key)
	require.NoError(t, err)
	pfx := base64.StdEncoding.EncodeToString([]byte(c.PKCS12.Reveal()))
	for name, echoed := range map[string]string{
		"whole":        "invalid parameter: " + key + " (400)",
		"cut short":    "bad value " + key[:400],
		"json-escaped": `{"error":{"message":"bad value ` + string(escaped) + `"}}`,
		"one line":     "unexpected token " + lines[3] + " at 12",
		"pkcs12":       "value " + pfx + " rejected",
	} {
		got := scrubKeyMaterial(echoed, c)
		for _, l := range lines[1 : len(lines)-1] {
			require.NotContains(t, got, l, name)
		}
		require.NotContains(t, got, pfx[:64], name)
		require.Contains(t, got, "[REDACTED]", name)
	}
	require.Equal(t, "nothing to hide", scrubKeyMaterial("nothing to hide", c))
}
