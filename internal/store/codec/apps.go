package codec

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// ValidateSync checks one page of a sync before anything is written: the
// org and connection are set, every application is the params' org's and
// carries no other connection's view, ids are present, key ids are unique
// per application and every time is storable.
func ValidateSync(p *store.SyncApplicationsParams) error {
	if p.Org == "" || p.Connection == "" {
		return errors.New("org and connection must be set")
	}
	if p.SyncStarted.IsZero() {
		return errors.New("SyncStarted must be set")
	}
	if err := CheckTime("SyncStarted", p.SyncStarted); err != nil {
		return err
	}
	for i := range p.Applications {
		a := &p.Applications[i]
		if a.TenantID == "" || a.ObjectID == "" {
			return fmt.Errorf("application %d (%q): tenant id and object id must be set", i, a.DisplayName)
		}
		if a.Org != "" && a.Org != p.Org {
			return fmt.Errorf("application %s belongs to org %q, not %q", a.ObjectID, a.Org, p.Org)
		}
		for _, x := range a.Access {
			if x.Connection != p.Connection {
				return fmt.Errorf("application %s carries the view of connection %q, not %q", a.ObjectID, x.Connection, p.Connection)
			}
		}
		if err := CheckTime("application "+a.ObjectID+" createdDateTime", a.CreatedAt); err != nil {
			return err
		}
		for j, c := range a.Credentials {
			if c.KeyID == "" {
				return fmt.Errorf("application %s: a credential has no key id", a.ObjectID)
			}
			for _, prev := range a.Credentials[:j] {
				if prev.KeyID == c.KeyID {
					return fmt.Errorf("application %s: key id %s appears twice", a.ObjectID, c.KeyID)
				}
			}
			if err := CheckTime("credential "+c.KeyID+" start", c.Start); err != nil {
				return err
			}
			if err := CheckTime("credential "+c.KeyID+" end", c.End); err != nil {
				return err
			}
		}
	}
	return nil
}

// MinEnd is the earliest credential end, or the zero time when no
// credential has one.
func MinEnd(creds []domain.Credential) time.Time {
	var m time.Time
	for _, c := range creds {
		if !c.End.IsZero() && (m.IsZero() || c.End.Before(m)) {
			m = c.End
		}
	}
	return m
}

// SortedOwners returns owners sorted, as every store keeps them, without
// changing the caller's slice; never nil.
func SortedOwners(owners []string) []string {
	o := slices.Clone(owners)
	if o == nil {
		o = []string{}
	}
	slices.Sort(o)
	return o
}

// Fingerprinter hashes what Entra says of an application, so that a sync
// can skip rows that did not change. It reuses its buffers between
// applications; the zero value is ready.
type Fingerprinter struct {
	buf   []byte
	creds []domain.Credential
}

// FingerprintVersion changes whenever what the fingerprint covers
// changes, so that old fingerprints never match and every row is
// rewritten once.
const FingerprintVersion = 2

// Sum covers what Entra says of the application, not which connection
// saw it or whether it may change it: those are each connection's own
// rows, so a read connection's sync and a rotation connection's sync never
// undo each other's work. owners is the stored form of the owners (any
// deterministic encoding of the sorted list). Times count to the
// nanosecond, as given: a store keeping microseconds still sees a change
// the caller made.
func (f *Fingerprinter) Sum(app *domain.Application, owners string) []byte {
	b := f.buf[:0]
	b = append(b, FingerprintVersion)
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
