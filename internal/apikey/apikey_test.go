package apikey

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

func TestNewParseRoundTrip(t *testing.T) {
	t.Parallel()
	for _, org := range []domain.OrgID{"default", "contoso_eu-1.prod", "a", domain.OrgID(strings.Repeat("o", 64))} {
		k, err := New(org)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(k.Text, Prefix+string(org)+"_"+k.ID+"_"))
		require.LessOrEqual(t, len(k.Text), MaxLen)
		ref, err := Parse(k.Text)
		require.NoError(t, err, org)
		require.Equal(t, Ref{Org: org, ID: k.ID}, ref)
		require.True(t, IsID(k.ID))
		require.True(t, Matches(k.Text, Hash(k.Text)))
	}
}

func TestNewKeysDiffer(t *testing.T) {
	t.Parallel()
	a, err := New("o")
	require.NoError(t, err)
	b, err := New("o")
	require.NoError(t, err)
	require.NotEqual(t, a.ID, b.ID)
	require.NotEqual(t, a.Text, b.Text)
	require.False(t, Matches(a.Text, Hash(b.Text)))
}

func TestNewRefusesBadOrg(t *testing.T) {
	t.Parallel()
	for _, org := range []domain.OrgID{"", "has space", "ü", domain.OrgID(strings.Repeat("o", 65))} {
		_, err := New(org)
		require.Error(t, err, org)
	}
}

func TestParseRefusesWhatIsNotAKey(t *testing.T) {
	t.Parallel()
	k, err := New("contoso")
	require.NoError(t, err)
	secret := k.Text[strings.LastIndexByte(k.Text, '_')+1:]
	cases := map[string]string{
		"Empty":           "",
		"NoPrefix":        strings.TrimPrefix(k.Text, Prefix),
		"OtherPrefix":     "ghp_" + strings.TrimPrefix(k.Text, Prefix),
		"ShortSecret":     k.Text[:len(k.Text)-1],
		"LongSecret":      k.Text + "a",
		"UpperCase":       strings.ToUpper(k.Text),
		"BadAlphabet":     k.Text[:len(k.Text)-1] + "1",
		"NoID":            Prefix + "contoso_" + secret,
		"NoOrg":           Prefix + "_" + k.ID + "_" + secret,
		"OnlyPrefix":      Prefix,
		"JWT":             "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"TooLong":         Prefix + strings.Repeat("o", 200) + "_" + k.ID + "_" + secret,
		"SpaceInOrg":      Prefix + "con toso_" + k.ID + "_" + secret,
		"TrailingNewline": k.Text + "\n",
	}
	for name, text := range cases {
		_, err := Parse(text)
		require.ErrorIs(t, err, ErrMalformed, name)
		require.Equal(t, ErrMalformed.Error(), err.Error(), "%s: the error says nothing of the key", name)
	}
}

func TestMatchesRefusesTamperedKeysAndBadHashes(t *testing.T) {
	t.Parallel()
	k, err := New("contoso")
	require.NoError(t, err)
	h := Hash(k.Text)
	flipped := []byte(k.Text)
	last := len(flipped) - 1
	flipped[last] = map[bool]byte{true: 'b', false: 'a'}[flipped[last] == 'a']
	require.False(t, Matches(string(flipped), h))
	require.False(t, Matches(k.Text, h[:31]))
	require.False(t, Matches(k.Text, nil))
}

// FuzzParse checks that no input makes Parse panic, and that whatever it
// accepts is well formed.
func FuzzParse(f *testing.F) {
	k, _ := New("contoso_eu")
	f.Add(k.Text)
	f.Add("rtr___")
	f.Add("rtr_a_b_c")
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := Parse(s)
		if err != nil {
			return
		}
		require.True(t, IsID(ref.ID))
		require.True(t, orgPattern.MatchString(string(ref.Org)))
	})
}
