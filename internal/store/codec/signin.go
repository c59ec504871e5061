package codec

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/internal/store"
)

// CheckSession checks what both stores require of a new session: an org,
// a 32-byte hash (never an id), a method, a subject, a role, and a
// creation time before the expiry.
func CheckSession(s store.Session) error {
	switch {
	case s.Org == "":
		return errors.New("an org is required")
	case len(s.IDHash) != sha256.Size:
		return fmt.Errorf("the id hash must be %d bytes (SHA-256), not %d", sha256.Size, len(s.IDHash))
	case s.Method == "" || s.Subject == "" || s.Role == "":
		return errors.New("method, subject and role are required")
	case s.CreatedAt.IsZero() || !s.ExpiresAt.After(s.CreatedAt):
		return errors.New("a creation time before the expiry is required")
	case !s.OwnedOnly && s.OwnedObjectIDs != nil:
		return errors.New("owned object ids are only kept for a session restricted to them (OwnedOnly)")
	case len(s.OwnedObjectIDs) > store.MaxOwnedObjectIDs:
		return fmt.Errorf("%d owned object ids, at most %d", len(s.OwnedObjectIDs), store.MaxOwnedObjectIDs)
	}
	return CheckTimes(NamedTime{"created_at", s.CreatedAt}, NamedTime{"expires_at", s.ExpiresAt})
}

// EncodeOwned is a session's owned_object_ids column: NULL (nil) for an
// unrestricted session, else a JSON array of object ids ("[]" when the
// person owns nothing: restricted to nothing, not unrestricted).
func EncodeOwned(s store.Session) (*string, error) {
	if !s.OwnedOnly {
		return nil, nil
	}
	ids := s.OwnedObjectIDs
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	v := string(b)
	return &v, nil
}

// DecodeOwned reads the owned_object_ids column into s (EncodeOwned's
// inverse).
func DecodeOwned(col *string, s *store.Session) error {
	if col == nil {
		s.OwnedOnly, s.OwnedObjectIDs = false, nil
		return nil
	}
	ids := []string{}
	if err := json.Unmarshal([]byte(*col), &ids); err != nil {
		return fmt.Errorf("owned object ids: %w", err)
	}
	s.OwnedOnly, s.OwnedObjectIDs = true, ids
	return nil
}

// CheckLocalAdmin checks a new local admin: an org, a name, a PHC-format
// password hash (never a password) and a creation time.
func CheckLocalAdmin(a store.LocalAdmin) error {
	switch {
	case a.Org == "" || a.Name == "":
		return errors.New("org and name are required")
	case !strings.HasPrefix(a.PasswordHash, "$") || strings.Count(a.PasswordHash, "$") < 4:
		return errors.New("the password hash must be a PHC string ($alg$…$salt$hash)")
	case a.CreatedAt.IsZero():
		return errors.New("a creation time is required")
	}
	return CheckTimes(NamedTime{"created_at", a.CreatedAt})
}

// CheckRecordLogin checks a sign-in attempt.
func CheckRecordLogin(p store.RecordLoginParams) error {
	switch {
	case p.Org == "" || p.Name == "":
		return errors.New("org and name are required")
	case p.At.IsZero():
		return errors.New("a time is required")
	case p.LockAfter < 1 || p.LockFor <= 0:
		return errors.New("lock after must be at least 1 and the lock positive")
	}
	return CheckTimes(NamedTime{"at", p.At}, NamedTime{"locked_until", p.At.Add(p.LockFor)})
}
