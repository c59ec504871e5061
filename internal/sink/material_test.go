package sink_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// TestMaterialNeverPrints: a Delivery printed, logged or marshalled by
// mistake shows no secret, no PKCS#12 and no private key number.
func TestMaterialNeverPrints(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "payroll-api"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)

	const secretValue, pfx = "s3cret-client-value", "pkcs12-blob-bytes"
	d := key.D.String()
	for name, m := range map[string]sink.Material{
		"secret":      sink.SecretMaterial(secret.New(secretValue)),
		"certificate": {Certificate: &sink.Certificate{Chain: []*x509.Certificate{leaf}, Key: sink.NewPrivateKey(key), PKCS12: secret.New(pfx)}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			del := sink.Delivery{App: domain.Application{DisplayName: "payroll"}, KeyID: "k1", Material: m}
			var logs strings.Builder
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("delivery", "d", del, "m", m, "cert", m.Certificate)
			printed := []string{
				fmt.Sprintf("%v", del), fmt.Sprintf("%+v", del), fmt.Sprintf("%#v", del), fmt.Sprintf("%s", m),
				fmt.Sprintf("%+v", m.Certificate), fmt.Sprint(m), logs.String(),
			}
			if m.Certificate != nil {
				printed = append(printed, fmt.Sprintf("%+v %#v %v", m.Certificate.Key, m.Certificate.Key, m.Certificate.Key))
			}
			for _, p := range printed {
				for _, v := range []string{secretValue, pfx, d} {
					require.NotContains(t, p, v)
				}
			}
			_, err := json.Marshal(del)
			require.ErrorIs(t, err, secret.ErrMarshal)
			if m.Certificate != nil {
				require.Contains(t, m.String(), "CN=payroll-api", "the public leaf may be named")
				_, err = json.Marshal(m.Certificate.Key)
				require.ErrorIs(t, err, secret.ErrMarshal)
				require.Equal(t, key.Public(), m.Certificate.Key.Public())
				require.Same(t, key, m.Certificate.Key.Signer())
			}
		})
	}
	require.True(t, sink.Material{}.IsZero())
}
