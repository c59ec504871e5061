package sqlite

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// timeLayout is how every time is stored: UTC, fixed width, nanoseconds.
// Fixed width makes string order time order, so min_end and created_at
// compare and sort in SQL; nanoseconds make the round trip exact. NULL is
// the zero time.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// encTime returns t as stored: nil for the zero time. t must have passed
// checkTime.
func encTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// checkTime rejects times the fixed-width form cannot hold.
func checkTime(what string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%s %s is outside years 0000-9999", what, t)
	}
	return nil
}

type namedTime struct {
	name string
	t    time.Time
}

// checkTimes runs checkTime on each.
func checkTimes(ts ...namedTime) error {
	for _, nt := range ts {
		if err := checkTime(nt.name, nt.t); err != nil {
			return err
		}
	}
	return nil
}

// decTime parses a stored time; NULL is the zero time.
func decTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s.String, err)
	}
	return t, nil
}

// encOwners stores owners as a sorted JSON array.
func encOwners(owners []string) (string, error) {
	if len(owners) == 0 {
		return "[]", nil
	}
	o := slices.Clone(owners)
	slices.Sort(o)
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("encode owners: %w", err)
	}
	return string(b), nil
}

func decOwners(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var o []string
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return nil, fmt.Errorf("stored owners %q: %w", s, err)
	}
	return o, nil
}

// decAccess reads the [[connection, can_change], …] array queryApps builds.
func decAccess(s string) ([]domain.Access, error) {
	var pairs [][2]any
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("stored access %q: %w", s, err)
	}
	out := make([]domain.Access, 0, len(pairs))
	for _, p := range pairs {
		name, _ := p[0].(string)
		n, _ := p[1].(float64)
		out = append(out, domain.Access{Connection: name, CanChange: n == 1})
	}
	return out, nil
}

// minEnd is the earliest credential end, or the zero time when no
// credential has one.
func minEnd(creds []domain.Credential) time.Time {
	var m time.Time
	for _, c := range creds {
		if !c.End.IsZero() && (m.IsZero() || c.End.Before(m)) {
			m = c.End
		}
	}
	return m
}

// fingerprinter hashes the stored content of an application, so that a
// sync can skip rows that did not change. It reuses its buffers between
// applications.
type fingerprinter struct {
	buf   []byte
	creds []domain.Credential
}

// fingerprintVersion changes whenever what the fingerprint covers changes,
// so that old fingerprints never match and every row is rewritten once.
const fingerprintVersion = 2

// sum covers what Entra says of the application, not which connection
// saw it or whether it may change it: those are each connection's own
// rows (app_access), so a read connection's sync and a rotation
// connection's sync never undo each other's work.
func (f *fingerprinter) sum(app *domain.Application, owners string) []byte {
	b := f.buf[:0]
	b = append(b, fingerprintVersion)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	tm := func(t time.Time) {
		if t.IsZero() {
			b = append(b, 0)
			return
		}
		b = append(b, 1)
		b = binary.AppendVarint(b, t.Unix())
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	}
	str(app.TenantID)
	str(app.ObjectID)
	str(app.AppID)
	str(app.DisplayName)
	str(app.SignInAudience)
	tm(app.CreatedAt)
	str(owners)
	f.creds = append(f.creds[:0], app.Credentials...)
	slices.SortFunc(f.creds, func(x, y domain.Credential) int { return strings.Compare(x.KeyID, y.KeyID) })
	b = binary.AppendUvarint(b, uint64(len(f.creds)))
	for i := range f.creds {
		c := &f.creds[i]
		str(c.KeyID)
		str(string(c.Kind))
		str(c.DisplayName)
		str(c.Hint)
		str(c.Thumbprint)
		tm(c.Start)
		tm(c.End)
	}
	f.buf = b
	sum := sha256.Sum256(b)
	return sum[:16]
}
