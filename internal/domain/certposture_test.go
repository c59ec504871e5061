package domain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUnheldCertificates(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cert := func(id, name string, startAgo time.Duration) Credential {
		return Credential{KeyID: id, Kind: KindCertificate, DisplayName: name, Start: now.Add(-startAgo), End: now.Add(90 * 24 * time.Hour)}
	}
	base := []Credential{cert("old", "rotor:r1", 48*time.Hour), cert("new", "rotor:r2", time.Hour)}
	for _, tc := range []struct {
		name  string
		tweak func([]Credential) []Credential
		held  map[string]bool
		want  []string
	}{
		{"the newest is held: the older waits out its overlap", nil, map[string]bool{"new": true}, nil},
		{"nothing is held: both are unknown", nil, nil, []string{"old", "new"}},
		{"only the older is held: the newer reached no sink", nil, map[string]bool{"old": true}, []string{"new"}},
		{"a certificate rotor did not create is never flagged", func(c []Credential) []Credential {
			return append(c, cert("theirs", "CN=by hand", 0))
		}, map[string]bool{"new": true}, nil},
		{"an expired one is not flagged", func(c []Credential) []Credential {
			c[1].End = now.Add(-time.Minute)
			return c
		}, map[string]bool{}, []string{"old"}},
		{"secrets are not certificates", func([]Credential) []Credential {
			return []Credential{{KeyID: "s", Kind: KindSecret, DisplayName: "rotor:r3", Start: now, End: now.Add(time.Hour)}}
		}, nil, nil},
	} {
		creds := append([]Credential{}, base...)
		if tc.tweak != nil {
			creds = tc.tweak(creds)
		}
		require.Equal(t, tc.want, UnheldCertificates(creds, tc.held, now), tc.name)
	}
}
