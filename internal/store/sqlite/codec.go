package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// timeLayout is how every time is stored: UTC, fixed width, nanoseconds.
// Fixed width makes string order time order, so min_end and created_at
// compare and sort in SQL; nanoseconds make the round trip exact. NULL is
// the zero time.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// encTime returns t as stored: nil for the zero time. t must have passed
// codec.CheckTime.
func encTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
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
