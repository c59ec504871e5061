package codec

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/store"
)

// CheckAPIKey checks what both stores require of a new API key: an org,
// an id, a name, a role, a 32-byte hash, a creation time, and times the
// stores can keep.
func CheckAPIKey(k store.APIKey) error {
	switch {
	case k.Org == "" || k.ID == "":
		return errors.New("org and id are required")
	case k.Name == "" || k.Role == "":
		return errors.New("name and role are required")
	case len(k.Hash) != sha256.Size:
		return fmt.Errorf("hash must be %d bytes (SHA-256), not %d", sha256.Size, len(k.Hash))
	case k.CreatedAt.IsZero():
		return errors.New("a creation time is required")
	}
	return CheckTimes(NamedTime{"created_at", k.CreatedAt}, NamedTime{"expires_at", k.ExpiresAt}, NamedTime{"revoked_at", k.RevokedAt})
}
