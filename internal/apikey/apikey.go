// Package apikey owns the format of rotor's API keys: how a key is made,
// how a presented one is read, and how it is hashed for keeping. A key is
//
//	rtr_<organization>_<id>_<secret>
//
// where id is 16 and secret 52 characters of lowercase base32 (80 and 256
// random bits). The organization and id say where the key is kept, so a
// presented key is found with one lookup by primary key, never by scanning
// hashes; only the secret proves it. rotor keeps the SHA-256 of the whole
// key (Hash) and shows the key itself once, when it is made.
//
// Nothing here logs, and no error says more of a presented key than that
// it is not one.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Prefix starts every rotor API key, so that a key is recognisable (in a
// header, by a secret scanner) and a bearer token is told from a JWT
// without parsing it.
const Prefix = "rtr_"

// Lengths of the random parts, in bytes and in characters.
const (
	idBytes     = 10
	secretBytes = 32
	// IDLen is the length of a key id.
	IDLen = 16
	// secretLen is base32 of 32 bytes without padding.
	secretLen = 52
	// MaxLen bounds a presented key: prefix, the longest organization
	// id, two separators, id and secret.
	MaxLen = len(Prefix) + 64 + 1 + IDLen + 1 + secretLen
)

// encoding is lowercase base32 without padding: no '_' (the separator),
// nothing a URL or a shell would mangle.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// orgPattern is what organization ids look like (config's namePattern).
var orgPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ErrMalformed is a presented string that is not a rotor API key. It says
// nothing about what was presented.
var ErrMalformed = errors.New("not a rotor API key")

// Key is a new API key. Text is the key itself: shown once, never kept.
type Key struct {
	Org  domain.OrgID
	ID   string
	Text string
}

// New makes a key for org from crypto/rand.
func New(org domain.OrgID) (Key, error) {
	if !orgPattern.MatchString(string(org)) {
		return Key{}, fmt.Errorf("apikey: organization %q cannot name a key", org)
	}
	id := make([]byte, idBytes)
	secret := make([]byte, secretBytes)
	if _, err := rand.Read(id); err != nil {
		return Key{}, fmt.Errorf("apikey: random id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("apikey: random secret: %w", err)
	}
	k := Key{Org: org, ID: encoding.EncodeToString(id)}
	k.Text = Prefix + string(org) + "_" + k.ID + "_" + encoding.EncodeToString(secret)
	return k, nil
}

// Ref is where a presented key would be kept: its organization and id.
// It is read from the key without trusting it; only Matches proves the
// key.
type Ref struct {
	Org domain.OrgID
	ID  string
}

// Parse reads the organization and id of a presented key. It checks the
// shape only (prefix, lengths, alphabet); ErrMalformed otherwise.
func Parse(text string) (Ref, error) {
	if len(text) > MaxLen {
		return Ref{}, ErrMalformed
	}
	rest, ok := strings.CutPrefix(text, Prefix)
	if !ok {
		return Ref{}, ErrMalformed
	}
	// The id and the secret hold no '_'; the organization may.
	i := strings.LastIndexByte(rest, '_')
	if i < 0 {
		return Ref{}, ErrMalformed
	}
	head, secret := rest[:i], rest[i+1:]
	j := strings.LastIndexByte(head, '_')
	if j < 0 {
		return Ref{}, ErrMalformed
	}
	org, id := head[:j], head[j+1:]
	if !orgPattern.MatchString(org) || !isBase32(id, IDLen) || !isBase32(secret, secretLen) {
		return Ref{}, ErrMalformed
	}
	return Ref{Org: domain.OrgID(org), ID: id}, nil
}

// IsID reports whether s looks like a key id (what `rotor apikey revoke`
// takes).
func IsID(s string) bool { return isBase32(s, IDLen) }

func isBase32(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// Hash is what rotor keeps of a key: the SHA-256 of the whole key text.
// A key carries 256 random bits, so a fast hash is enough: nobody can
// search that space, and a slow password hash would only let anyone
// with made-up keys burn rotor's CPU (docs/adr/0021).
func Hash(text string) []byte {
	sum := sha256.Sum256([]byte(text))
	return sum[:]
}

// Matches reports whether text hashes to hash, in constant time.
func Matches(text string, hash []byte) bool {
	return len(hash) == sha256.Size && subtle.ConstantTimeCompare(Hash(text), hash) == 1
}
