package certgen_test

import (
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/certgen"
)

// BenchmarkGenerate is the floor under a certificate rotation: one
// Generate per op for each key type — the key pair, the self-signed
// certificate and its password-less PKCS#12, which every rotation of kind
// certificate makes once (docs/benchmarks.md, BenchmarkRotateKind in
// internal/server). RSA key generation is a search for primes, so its
// time varies from key to key; take many ops.
//
//	go test -run '^$' -bench 'BenchmarkGenerate|BenchmarkPKCS12' -benchtime=100x -count=6 ./internal/certgen/
func BenchmarkGenerate(b *testing.B) {
	now := time.Now()
	for _, kt := range certgen.KeyTypes() {
		b.Run(string(kt), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := certgen.Generate(certgen.Request{KeyType: kt, Subject: pkix.Name{CommonName: "bench"}, NotBefore: now, NotAfter: now.Add(30 * 24 * time.Hour)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPKCS12 is the PKCS#12 encoding alone (LegacyDES, empty
// password) of an RSA 2048 certificate, the part of Generate that is not
// the key: Generate makes it even when every sink takes PEM.
func BenchmarkPKCS12(b *testing.B) {
	now := time.Now()
	c, err := certgen.Generate(certgen.Request{Subject: pkix.Name{CommonName: "bench"}, NotBefore: now, NotAfter: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	key := c.Key.Signer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := certgen.PKCS12(c.Chain[0], key); err != nil {
			b.Fatal(err)
		}
	}
}
