package sink

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// TargetID names what one sink instance writes, stably: the kind, a colon,
// and the kind's own canonical locator, e.g.
//
//	keyvault:https://myvault.vault.azure.net/secrets/web-storefront-secret
//
// It is what rotor pins for an application at the first delivery (so a
// rename does not move the target), what recovery compares to find "the
// same sink" a crashed run wrote to, and what the UI links. Two TargetIDs
// are the same target exactly when they are ==; each kind canonicalises its
// locator (case, trailing slashes) before making one, so equality needs no
// kind-specific code.
//
// It is a struct rather than a string so that every TargetID went through
// NewTargetID or ParseTargetID: a stored or compared id is always well
// formed. The zero TargetID means "none" (e.g. nothing pinned).
type TargetID struct{ kind, ref string }

// maxTargetRef bounds a locator; stored ids stay small.
const maxTargetRef = 2048

// ErrBadTargetID is wrapped by every TargetID parse error.
var ErrBadTargetID = errors.New("bad sink target id")

// NewTargetID makes the id of kind's target ref. kind is a sink type
// ("keyvault"); ref is the kind's canonical locator: not empty, at most
// 2048 characters, no spaces or control characters.
func NewTargetID(kind, ref string) (TargetID, error) {
	if !validKind(kind) {
		return TargetID{}, fmt.Errorf("%w: kind %q must be lower-case letters and digits, starting with a letter", ErrBadTargetID, kind)
	}
	switch {
	case ref == "":
		return TargetID{}, fmt.Errorf("%w: %s target has an empty locator", ErrBadTargetID, kind)
	case len(ref) > maxTargetRef:
		return TargetID{}, fmt.Errorf("%w: %s target locator is %d bytes long (at most %d)", ErrBadTargetID, kind, len(ref), maxTargetRef)
	}
	for _, r := range ref {
		if r == unicode.ReplacementChar || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return TargetID{}, fmt.Errorf("%w: %s target locator %q contains %q", ErrBadTargetID, kind, ref, r)
		}
	}
	return TargetID{kind: kind, ref: ref}, nil
}

// ParseTargetID parses the String form "kind:locator". The empty string is
// the zero TargetID.
func ParseTargetID(s string) (TargetID, error) {
	if s == "" {
		return TargetID{}, nil
	}
	kind, ref, ok := strings.Cut(s, ":")
	if !ok {
		return TargetID{}, fmt.Errorf("%w %q: want kind:locator, e.g. keyvault:https://myvault.vault.azure.net/secrets/name", ErrBadTargetID, s)
	}
	return NewTargetID(kind, ref)
}

func validKind(k string) bool {
	if k == "" || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// String is "kind:locator", or "" for the zero TargetID; ParseTargetID
// reads it back.
func (t TargetID) String() string {
	if t.IsZero() {
		return ""
	}
	return t.kind + ":" + t.ref
}

// Kind is the sink type, e.g. "keyvault".
func (t TargetID) Kind() string { return t.kind }

// Ref is the kind's locator, e.g. the Key Vault secret URL.
func (t TargetID) Ref() string { return t.ref }

// IsZero reports whether t is "no target".
func (t TargetID) IsZero() bool { return t.kind == "" }

// MarshalText stores the String form.
func (t TargetID) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText parses the String form.
func (t *TargetID) UnmarshalText(b []byte) error {
	v, err := ParseTargetID(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
