package config

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// day is the length of the "d" unit. Configuration days are always 24
// hours: credential lifetimes are not calendar arithmetic, and Entra itself
// stores end times as instants.
const day = 24 * time.Hour

// ParseDuration parses a duration as configuration spells it: anything Go's
// time.ParseDuration accepts ("1h", "30m", "1h30m", "1.5h"), plus days
// ("21d", "90d", "1d12h", "1.5d"). A day is exactly 24 hours.
//
// Strings without a "d" are handed to time.ParseDuration unchanged, so the
// two agree on every Go duration, including their error messages.
func ParseDuration(s string) (time.Duration, error) {
	if !strings.Contains(s, "d") {
		return time.ParseDuration(s)
	}
	orig := s
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("invalid duration %q: use a number and a unit, e.g. 30s, 15m, 1h, 21d, 1d12h", orig)
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return bad()
	}
	var total time.Duration
	for s != "" {
		// A segment is a number ([0-9.]+) followed by a unit (letters).
		i := 0
		for i < len(s) && (s[i] == '.' || (s[i] >= '0' && s[i] <= '9')) {
			i++
		}
		num := s[:i]
		if num == "" || num == "." {
			return bad()
		}
		j := i
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit := s[i:j]
		if unit == "" {
			return bad()
		}
		var seg time.Duration
		if unit == "d" {
			// n days = (n hours) × 24, so Go parses the number with its
			// own rules for fractions and overflow.
			h, err := time.ParseDuration(num + "h")
			if err != nil {
				return bad()
			}
			if h > math.MaxInt64/24 {
				return 0, fmt.Errorf("invalid duration %q: too long", orig)
			}
			seg = h * 24
		} else {
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return bad()
			}
			seg = d
		}
		if total > math.MaxInt64-seg {
			return 0, fmt.Errorf("invalid duration %q: too long", orig)
		}
		total += seg
		s = s[j:]
	}
	if neg {
		total = -total
	}
	return total, nil
}
