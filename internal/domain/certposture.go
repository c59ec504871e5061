package domain

import "time"

// UnheldCertificates answers the posture question "which of rotor's
// certificates has a private key rotor knows nowhere?": the key ids of the
// certificates rotor created (display name rotor:…) that are not expired
// at now and that no sink delivery record holds (held: the key ids the
// application's sink targets last received), unless a newer rotor
// certificate is held — then the older one is only waiting out its
// overlap before retirement, which is normal.
//
// rotor keeps no private key at rest: once a run ends, a key lives only in
// the sinks it reached. A certificate that reached none (a run that failed
// before delivery, a sink removed from the policy, a delivery record lost
// with a restored backup) is valid in Entra yet usable by no consumer
// rotor knows of; whoever holds its key, rotor cannot say. It should be
// removed, or the policy's sinks mended and the application rotated.
func UnheldCertificates(creds []Credential, held map[string]bool, now time.Time) []string {
	var newestHeld time.Time
	for _, c := range creds {
		if c.Kind == KindCertificate && c.RotorCreated() && held[c.KeyID] && c.Start.After(newestHeld) {
			newestHeld = c.Start
		}
	}
	var out []string
	for _, c := range creds {
		switch {
		case c.Kind != KindCertificate || !c.RotorCreated() || held[c.KeyID]:
		case !c.End.IsZero() && !c.End.After(now):
		case !newestHeld.IsZero() && !c.Start.After(newestHeld):
		default:
			out = append(out, c.KeyID)
		}
	}
	return out
}
