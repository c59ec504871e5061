package domain

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// NewestRotorCredential returns the most recently started credential of
// the given kind that rotor created, or false when there is none.
func NewestRotorCredential(creds []Credential, kind CredentialKind) (Credential, bool) {
	var best Credential
	found := false
	for _, c := range creds {
		if c.Kind != kind || !c.RotorCreated() {
			continue
		}
		if !found || c.Start.After(best.Start) || (c.Start.Equal(best.Start) && c.End.After(best.End)) {
			best, found = c, true
		}
	}
	return best, found
}

// UnjournaledRotorCredential returns a credential of kind in creds that
// rotor made (display name rotor:<run id>) in a run the journal does not
// know (known reports whether it knows a run id), started after after. It
// is the trace a lost journal leaves: a database restored from a backup
// holds no run begun after the backup was taken, while Entra holds what
// those runs created and did not retire. Its presence explains a newer
// journaled secret's absence (that run's retirement removed it) without
// anyone outside rotor having removed it. The newest such credential is
// returned.
func UnjournaledRotorCredential(creds []Credential, kind CredentialKind, after time.Time, known func(runID string) bool) (Credential, bool) {
	var best Credential
	found := false
	for _, c := range creds {
		if c.Kind != kind || !c.RotorCreated() || !c.Start.After(after) || known(c.RunID()) {
			continue
		}
		if !found || c.Start.After(best.Start) {
			best, found = c, true
		}
	}
	return best, found
}

// RenewalTime is when a credential ending at end must be replaced: end −
// renewBefore, never later than end.
func RenewalTime(end time.Time, renewBefore time.Duration) time.Time {
	if renewBefore < 0 {
		renewBefore = 0
	}
	return end.Add(-renewBefore)
}

// ToRetire lists the credentials a run that created keep may remove once
// the overlap has passed: every older credential rotor created of the same
// kind (including those of abandoned runs), and, only when the policy says
// so, older credentials rotor did not create. Credentials of a later run
// are left to it.
//
// "Older" is the journal's order where the journal knows both runs: later
// reports, for a rotor credential, whether its run came after keep's
// (known false when the journal has no such run). Start times only order
// what the journal cannot: they have seconds, so two runs of one
// application within a second look the same age, and a run on a host
// whose clock is behind looks older than it is. later may be nil (start
// times only).
func ToRetire(creds []Credential, keep Credential, retireUnmanaged bool, later func(Credential) (later, known bool)) []Credential {
	var out []Credential
	for _, c := range creds {
		if c.KeyID == keep.KeyID || c.Kind != keep.Kind {
			continue
		}
		if c.RotorCreated() && later != nil {
			if l, known := later(c); known {
				if l {
					continue
				}
				out = append(out, c)
				continue
			}
		}
		if c.Start.After(keep.Start) {
			continue
		}
		if c.RotorCreated() || retireUnmanaged {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Validate checks a policy on its own (connections and sinks are checked
// by the configuration loader, which knows them). Errors name the key and
// the fix.
func (p Policy) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("name is empty: give the policy a name")
	}
	if p.Kind != KindSecret && p.Kind != KindCertificate {
		return fmt.Errorf("kind %q is not known: use %q or %q", p.Kind, KindSecret, KindCertificate)
	}
	if p.Lifetime <= 0 {
		return fmt.Errorf("lifetime must be positive")
	}
	if p.RenewBefore <= 0 {
		return fmt.Errorf("renew_before must be positive")
	}
	if p.RenewBefore >= p.Lifetime {
		return fmt.Errorf("renew_before (%s) must be shorter than lifetime (%s): a credential would be due the moment it is made", FormatDuration(p.RenewBefore), FormatDuration(p.Lifetime))
	}
	if p.Overlap < 0 {
		return fmt.Errorf("overlap must not be negative")
	}
	if p.Overlap >= p.Lifetime {
		return fmt.Errorf("overlap (%s) must be shorter than lifetime (%s)", FormatDuration(p.Overlap), FormatDuration(p.Lifetime))
	}
	n := 0
	if p.Selector.AllOwned {
		n++
	}
	if p.Selector.NamePrefix != "" {
		n++
	}
	if len(p.Selector.IDs) > 0 {
		n++
	}
	if n != 1 {
		return fmt.Errorf("applications must set exactly one of name_prefix, ids or all_owned")
	}
	if err := p.Certificate.validate(p.Kind); err != nil {
		return err
	}
	if p.Kind == KindCertificate && p.Certificate.KeySource == KeySourceKeyVaultCertificate {
		months := ValidityMonths(p.Lifetime)
		if p.Lifetime < 30*24*time.Hour {
			return fmt.Errorf("lifetime (%s) is shorter than a month: Key Vault issues certificates for whole months (key_source: keyvault-certificate)", FormatDuration(p.Lifetime))
		}
		if shortest := time.Duration(months) * 28 * 24 * time.Hour; p.RenewBefore >= shortest {
			return fmt.Errorf("renew_before (%s) must be shorter than %d×28d: Key Vault issues the certificate for %d month(s) (lifetime %s in whole months, key_source: keyvault-certificate)",
				FormatDuration(p.RenewBefore), months, months, FormatDuration(p.Lifetime))
		}
	}
	return nil
}

// ValidityMonths is the validity Key Vault is asked for when it issues a
// certificate (key_source: keyvault-certificate): Key Vault counts in whole
// months, so the lifetime in 30-day months, rounded down (never past an app
// management policy's limit that the lifetime respects), at least one.
func ValidityMonths(lifetime time.Duration) int {
	return max(1, int(lifetime/(30*24*time.Hour)))
}

// validate checks a certificate spec against the policy's kind.
func (c CertificateSpec) validate(kind CredentialKind) error {
	if kind != KindCertificate {
		if !c.IsZero() {
			return fmt.Errorf("certificate is set but kind is %q: certificate settings are for kind: certificate", kind)
		}
		return nil
	}
	switch strings.ToLower(c.KeyType) {
	case "", "rsa-2048", "rsa-3072", "rsa-4096":
	case "ec-p256":
		return fmt.Errorf("certificate.key_type ec-p256 cannot sign in to Entra: its client assertions are RS256/PS256 and MSAL (azidentity) refuses non-RSA keys; use rsa-2048, rsa-3072 or rsa-4096")
	default:
		return fmt.Errorf("certificate.key_type %q is not known: use rsa-2048 (the default), rsa-3072 or rsa-4096", c.KeyType)
	}
	for i, n := range c.DNSNames {
		if strings.TrimSpace(n) == "" || strings.ContainsAny(n, " /:@") {
			return fmt.Errorf("certificate.dns_names[%d] %q is not a DNS name", i, n)
		}
	}
	return c.validateKeySource()
}

// validateKeySource checks the Key Vault settings against the key source.
func (c CertificateSpec) validateKeySource() error {
	switch c.KeySource {
	case "", KeySourceLocal:
		switch {
		case c.VaultURL != "":
			return fmt.Errorf("certificate.vault_url is set but certificate.key_source is local: set key_source: keyvault-key or keyvault-certificate, or drop vault_url")
		case c.HSM:
			return fmt.Errorf("certificate.hsm is set but certificate.key_source is local: an HSM key needs key_source: keyvault-key or keyvault-certificate")
		case c.VaultName != "":
			return fmt.Errorf("certificate.vault_name is set but certificate.key_source is local: it names the Key Vault object of a Key Vault key source")
		}
		return nil
	case KeySourceKeyVaultCertificate, KeySourceKeyVaultKey:
	default:
		return fmt.Errorf("certificate.key_source %q is not known: use local (the default), keyvault-certificate or keyvault-key", c.KeySource)
	}
	if c.VaultURL == "" {
		return fmt.Errorf("certificate.key_source %s needs certificate.vault_url, the vault the key lives in (https://<vault>.vault.azure.net/)", c.KeySource)
	}
	if !strings.HasPrefix(c.VaultURL, "https://") {
		return fmt.Errorf("certificate.vault_url %q must be an https URL such as https://myvault.vault.azure.net/", c.VaultURL)
	}
	if c.Bootstrap != nil {
		return fmt.Errorf("certificate.bootstrap is not used with key_source %s: rotor proves possession with the Key Vault key of the certificate it registered last", c.KeySource)
	}
	switch strings.ToLower(c.KeyType) {
	case "", "rsa-2048", "rsa-3072", "rsa-4096":
	default:
		return fmt.Errorf("certificate.key_type %q: a Key Vault key source makes RSA keys only", c.KeyType)
	}
	return nil
}

// FormatDuration prints durations the way configuration spells them
// (90d, 36h, 15m).
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// HumanDuration prints a span for people: "20d 23h", "5h 12m", "42s".
func HumanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	day := 24 * time.Hour
	switch {
	case d >= day:
		if h := (d % day) / time.Hour; h > 0 {
			return fmt.Sprintf("%dd %dh", d/day, h)
		}
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour:
		if m := (d % time.Hour) / time.Minute; m > 0 {
			return fmt.Sprintf("%dh %dm", d/time.Hour, m)
		}
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.Round(time.Second).String()
}
