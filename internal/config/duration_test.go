package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	const d = 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "21d", want: 21 * d},
		{in: "90d", want: 90 * d},
		{in: "1h", want: time.Hour},
		{in: "30m", want: 30 * time.Minute},
		{in: "30s", want: 30 * time.Second},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1d12h30m", want: 36*time.Hour + 30*time.Minute},
		{in: "12h1d", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: ".5d", want: 12 * time.Hour},
		{in: "0d", want: 0},
		{in: "0", want: 0},
		{in: "-1d", want: -d},
		{in: "+2d", want: 2 * d},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "1d100ms", want: d + 100*time.Millisecond},
		{in: "106751d", want: 106751 * d},
		{in: "", wantErr: true},
		{in: "d", wantErr: true},
		{in: "21", wantErr: true},
		{in: "21 d", wantErr: true},
		{in: "21D", wantErr: true},
		{in: "1w", wantErr: true},
		{in: "1dd", wantErr: true},
		{in: "1d-1h", wantErr: true},
		{in: "-", wantErr: true},
		{in: ".d", wantErr: true},
		{in: "1..5d", wantErr: true},
		{in: "1d12", wantErr: true},
		{in: "106752d", wantErr: true},
		{in: "100000d100000d", wantErr: true},
		{in: "3x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseDuration checks that ParseDuration never panics, agrees with
// time.ParseDuration on everything without days, and reads back what
// domain.FormatDuration writes.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"21d", "1d12h", "1.5d", "90d", "30m", "-1d", "1h30m", "0", "", "9223372036854775807ns", "-9223372036854775808ns", "106751d", "1.0000000001d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDuration(s)
		if !strings.Contains(s, "d") {
			want, werr := time.ParseDuration(s)
			require.Equal(t, werr == nil, err == nil, "input %q", s)
			if werr == nil {
				require.Equal(t, want, got)
			}
			return
		}
		if err != nil {
			return
		}
		back, err := ParseDuration(domain.FormatDuration(got))
		require.NoError(t, err, "%q → %v → %q", s, got, domain.FormatDuration(got))
		require.Equal(t, got, back)
	})
}
