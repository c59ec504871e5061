package codec

import (
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/store"
)

// CheckCertificateDetails rejects what no store keeps: details without
// org or tenant, a detail without application or key id, or a validity
// time outside years 0000-9999. Errors read "put certificate details: …".
func CheckCertificateDetails(p store.PutCertificateDetailsParams) error {
	if p.Org == "" || p.TenantID == "" {
		return errors.New("put certificate details: org and tenant must be set")
	}
	for _, d := range p.Details {
		if d.AppObjectID == "" || d.KeyID == "" {
			return errors.New("put certificate details: application and key id must be set")
		}
		if err := CheckTimes(NamedTime{Name: "not before", T: d.Info.NotBefore}, NamedTime{Name: "not after", T: d.Info.NotAfter}); err != nil {
			return fmt.Errorf("put certificate details: %w", err)
		}
	}
	return nil
}
