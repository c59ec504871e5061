// Package secret holds a credential's value while it is being delivered.
//
// A Value never prints, logs, marshals or formats its content: fmt, slog and
// encoding/json all see "[REDACTED]" (or an error). The only way out is
// Reveal, which is called at the exact point where the value is handed to
// Azure or a sink, so a reviewer can grep for every place a secret leaves.
package secret

import (
	"errors"
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// Value is a secret held in memory.
type Value struct{ v string }

// New wraps s.
func New(s string) Value { return Value{v: s} }

// Reveal returns the secret. Call it only to hand the value to the system
// that needs it.
func (v Value) Reveal() string { return v.v }

// IsZero reports whether there is no secret.
func (v Value) IsZero() bool { return v.v == "" }

// Hint returns the first three characters, as Entra shows them.
func (v Value) Hint() string {
	if len(v.v) < 3 {
		return ""
	}
	return v.v[:3]
}

// String implements fmt.Stringer without revealing anything.
func (v Value) String() string { return redacted }

// GoString implements fmt.GoStringer without revealing anything.
func (v Value) GoString() string { return redacted }

// Format makes every fmt verb print [REDACTED].
func (v Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (v Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// ErrMarshal is returned when something tries to serialise a Value.
var ErrMarshal = errors.New("secret: refusing to marshal a secret value")

// MarshalJSON refuses: a secret value is never serialised by accident.
func (v Value) MarshalJSON() ([]byte, error) { return nil, ErrMarshal }

// MarshalText refuses, for the same reason.
func (v Value) MarshalText() ([]byte, error) { return nil, ErrMarshal }
