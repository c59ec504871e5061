package codec

import (
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// SettingsRow is an application's settings in the columns both stores
// keep: NULL (nil) inherits the policy's value; durations in nanoseconds.
type SettingsRow struct {
	Enabled, Notify          *bool
	Lifetime, Renew, Overlap *int64
	VaultURL, Secret         *string
}

// CheckSettings rejects what no store keeps: a row without org or object
// id, or a time outside years 0000-9999. (What the values may be is the
// application layer's to decide.)
func CheckSettings(s store.ApplicationSettings) error {
	if s.Org == "" || s.ObjectID == "" {
		return errors.New("application settings: org and object id must be set")
	}
	if err := CheckTime("updated at", s.UpdatedAt); err != nil {
		return fmt.Errorf("application settings: %w", err)
	}
	return nil
}

// EncodeSettings is s as stored.
func EncodeSettings(s domain.AppSettings) SettingsRow {
	ns := func(d *time.Duration) *int64 {
		if d == nil {
			return nil
		}
		v := int64(*d)
		return &v
	}
	return SettingsRow{Enabled: s.Enabled, Notify: s.Notify, Lifetime: ns(s.Lifetime), Renew: ns(s.RenewBefore), Overlap: ns(s.Overlap),
		VaultURL: s.KeyVaultURL, Secret: s.KeyVaultSecret}
}

// Decode is the settings a stored row holds.
func (r SettingsRow) Decode() domain.AppSettings {
	d := func(v *int64) *time.Duration {
		if v == nil {
			return nil
		}
		x := time.Duration(*v)
		return &x
	}
	return domain.AppSettings{Enabled: r.Enabled, Notify: r.Notify, Lifetime: d(r.Lifetime), RenewBefore: d(r.Renew), Overlap: d(r.Overlap),
		KeyVaultURL: r.VaultURL, KeyVaultSecret: r.Secret}
}
