package core

import (
	"crypto/rand"
	"fmt"
	"math/big"
)

// Client secret shape. Entra's secrets are 40 characters: three random
// characters (the hint), a version marker "8Q~", then 34 more from a
// URL-safe alphabet.
const (
	secretPrefixAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretAlphabet       = secretPrefixAlphabet + "_.~-"
	secretMarker         = "8Q~"
	secretLen            = 40
)

// NewSecretText generates a client secret in Entra's shape from
// crypto/rand: for seeded identities and for Graph's addPassword.
func NewSecretText() (string, error) {
	head, err := randomString(secretPrefixAlphabet, 3)
	if err != nil {
		return "", err
	}
	tail, err := randomString(secretAlphabet, secretLen-3-len(secretMarker))
	if err != nil {
		return "", err
	}
	return head + secretMarker + tail, nil
}

// randomString draws n characters uniformly from alphabet.
func randomString(alphabet string, n int) (string, error) {
	max := big.NewInt(int64(len(alphabet)))
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate random text: %w", err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b), nil
}
