// Package codec is what rotor's SQL stores share above their SQL: the
// checks on what a caller hands a store, and the forms in which a store
// keeps rotor's values (an application's content fingerprint, the JSON of
// a connection's identity and of a policy's selector and sinks), so that
// SQLite and PostgreSQL accept the same input and mean the same by it.
// It holds no SQL: each store writes its own.
package codec

import (
	"fmt"
	"time"
)

// CheckTime rejects times outside years 0000-9999: SQLite's fixed-width
// text cannot hold them, and PostgreSQL refuses them too so that both
// stores accept the same input.
func CheckTime(what string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%s %s is outside years 0000-9999", what, t)
	}
	return nil
}

// NamedTime is a time and what it is, for CheckTimes' errors.
type NamedTime struct {
	Name string
	T    time.Time
}

// CheckTimes runs CheckTime on each.
func CheckTimes(ts ...NamedTime) error {
	for _, nt := range ts {
		if err := CheckTime(nt.Name, nt.T); err != nil {
			return err
		}
	}
	return nil
}
