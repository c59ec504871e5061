package sink_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the thumbprint's definition
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

func TestCertificateEncodings(t *testing.T) {
	t.Parallel()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for name, c := range map[string]*sink.Certificate{
		"rsa": sinktest.SelfSigned(t, "rsa", rk),
		"ec":  sinktest.SelfSigned(t, "ec", ek),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := c.Encode(sink.FormatPEM)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(p.Reveal(), "-----BEGIN PRIVATE KEY-----\n"), "key first, PKCS#8, as Key Vault stores it")
			sinktest.RequireHoldsCertificate(t, c, p.Reveal(), "pem")

			tp, err := c.Encode(sink.FormatThumbprint)
			require.NoError(t, err)
			sum := sha1.Sum(c.Leaf().Raw) //nolint:gosec
			require.Equal(t, strings.ToUpper(hex.EncodeToString(sum[:])), tp.Reveal())
			require.NotContains(t, tp.Reveal(), "PRIVATE")
			require.Len(t, sink.ThumbprintSHA256(c.Leaf()), 64)

			_, err = c.Encode(sink.FormatPKCS12)
			require.Error(t, err, "no PKCS#12 blob, no pkcs12 format")
			require.True(t, sink.IsPermanent(err))
			withP12 := *c
			withP12.PKCS12 = secret.New("\x30\x82pfx-bytes")
			b, err := withP12.Encode(sink.FormatPKCS12)
			require.NoError(t, err)
			require.Equal(t, base64.StdEncoding.EncodeToString([]byte("\x30\x82pfx-bytes")), b.Reveal())

			// Rendering never shows the key.
			for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v %#v", c, sink.Material{Certificate: c})} {
				require.NotContains(t, s, sinktest.KeyMarker(t, c))
			}
		})
	}
	keyless := &sink.Certificate{Chain: sinktest.NewCertificate(t, "kv").Chain}
	_, err = keyless.Encode(sink.FormatPEM)
	require.True(t, sink.IsPermanent(err), "a key that stays in Key Vault cannot be delivered as PEM")
	tp, err := keyless.Encode(sink.FormatThumbprint)
	require.NoError(t, err)
	require.Len(t, tp.Reveal(), 40)
}

func TestCertificateFormatOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    any
		want sink.CertificateFormat
		ok   bool
	}{
		{nil, sink.FormatPEM, true}, {"pem", sink.FormatPEM, true}, {"PKCS12", sink.FormatPKCS12, true},
		{"thumbprint", sink.FormatThumbprint, true}, {"pfx", "", false}, {42, "", false},
	} {
		st := map[string]any{}
		if tc.v != nil {
			st[sink.KeyCertificateFormat] = tc.v
		}
		got, err := sink.CertificateFormatOf(domain.SinkSpec{Type: "x", Settings: st})
		require.Equal(t, tc.ok, err == nil, "%v: %v", tc.v, err)
		require.Equal(t, tc.want, got)
	}
}

func TestSecretOrEncoded(t *testing.T) {
	t.Parallel()
	v, err := sink.SecretOrEncoded("vercel", sink.SecretMaterial(secret.New("s3cret")), sink.FormatPEM)
	require.NoError(t, err)
	require.Equal(t, "s3cret", v.Reveal(), "a client secret is delivered unchanged")
	_, err = sink.SecretOrEncoded("vercel", sink.Material{}, sink.FormatPEM)
	require.True(t, sink.IsPermanent(err))
	c := sinktest.NewCertificate(t, "x")
	v, err = sink.SecretOrEncoded("vercel", sink.Material{Certificate: c}, sink.FormatThumbprint)
	require.NoError(t, err)
	require.Equal(t, sink.Thumbprint(c.Leaf()), v.Reveal())
}
