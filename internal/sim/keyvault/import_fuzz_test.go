package keyvault

import (
	"encoding/base64"
	"encoding/pem"
	"testing"
)

// FuzzImportParsers feeds the certificate import's parsers (outside input:
// a PEM bundle, or a base64 PKCS#12 with its password) arbitrary bytes:
// they refuse or return a certificate with the key that belongs to it,
// and never panic.
func FuzzImportParsers(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "")
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x00}}), "pwd")
	f.Add([]byte(base64.StdEncoding.EncodeToString([]byte{0x30, 0x82, 0x01})), "")
	f.Fuzz(func(t *testing.T, data []byte, pwd string) {
		for _, parse := range []func() (int, error){
			func() (int, error) { c, _, err := parsePEMBundle(data); return len(c), err },
			func() (int, error) { c, _, err := parsePFX(string(data), pwd); return len(c), err },
		} {
			if n, err := parse(); err == nil && n == 0 {
				t.Fatal("no error and no certificate")
			}
		}
	})
}
