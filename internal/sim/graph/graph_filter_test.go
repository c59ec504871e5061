package graph

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fields is a fake object for filter matching.
func fields(m map[string]string) filterField {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestParseFilterMatches(t *testing.T) {
	t.Parallel()
	obj := fields(map[string]string{
		"id": "11111111-1111-1111-1111-111111111111", "appId": "22222222-2222-2222-2222-222222222222",
		"displayName": "O'Brien's App",
	})
	cases := []struct {
		name   string
		filter string
		want   bool
	}{
		{"appId eq", "appId eq '22222222-2222-2222-2222-222222222222'", true},
		{"appId eq upper-case guid", "appId eq '22222222-2222-2222-2222-222222222222'", true},
		{"id eq other", "id eq '33333333-3333-3333-3333-333333333333'", false},
		{"escaped quote", "displayName eq 'O''Brien''s App'", true},
		{"display name case-insensitive", "displayName eq 'o''brien''s app'", true},
		{"startswith", "startswith(displayName,'O''Bri')", true},
		{"startswith miss", "startswith(displayName,'Brien')", false},
		{"and", "appId eq '22222222-2222-2222-2222-222222222222' and startswith(displayName,'O')", true},
		{"and one false", "appId eq '22222222-2222-2222-2222-222222222222' and displayName eq 'x'", false},
		{"or", "displayName eq 'x' or id eq '11111111-1111-1111-1111-111111111111'", true},
		{"and binds tighter than or", "displayName eq 'x' and displayName eq 'y' or displayName eq 'O''Brien''s App'", true},
		{"parentheses", "(displayName eq 'x' or displayName eq 'O''Brien''s App') and appId eq '22222222-2222-2222-2222-222222222222'", true},
		{"in", "appId in ('a', '22222222-2222-2222-2222-222222222222')", true},
		{"keywords any case", "DisplayName EQ 'x' OR StartsWith(displayName, 'o')", true},
		{"whitespace", "  appId   eq\t'22222222-2222-2222-2222-222222222222'  ", true},
		{"empty string literal", "displayName eq ''", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tc.filter, "id", "appId", "displayName")
			require.NoError(t, err)
			require.Equal(t, tc.want, f.Match(obj))
		})
	}
}

func TestParseFilterRefuses(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"unsupported operator":   "displayName ne 'x'",
		"unknown property":       "publisherDomain eq 'x'",
		"unterminated string":    "displayName eq 'x",
		"missing value":          "displayName eq",
		"number literal":         "displayName eq 5",
		"trailing garbage":       "displayName eq 'x' 'y'",
		"dangling and":           "displayName eq 'x' and",
		"unbalanced paren":       "(displayName eq 'x'",
		"startswith on appId":    "startswith(appId,'x')",
		"lambda":                 "tags/any(t:t eq 'x')",
		"empty":                  "",
		"bad character":          "displayName eq 'x' ; drop",
		"not":                    "not(displayName eq 'x')",
		"endswith":               "endswith(displayName,'x')",
		"empty in list":          "appId in ()",
		"deep nesting":           strings.Repeat("(", 40) + "id eq 'x'" + strings.Repeat(")", 40),
		"too long":               "displayName eq '" + strings.Repeat("a", maxFilterLen) + "'",
		"invalid utf-8":          "displayName eq '\xff'",
		"operator without value": "appId in",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseFilter(src, "id", "appId", "displayName")
			var fe *FilterError
			require.ErrorAs(t, err, &fe)
		})
	}
}

func TestFilterEqualityKey(t *testing.T) {
	t.Parallel()
	f, err := ParseFilter("appId eq 'abc'", "appId", "displayName")
	require.NoError(t, err)
	prop, val, ok := f.EqualityKey()
	require.True(t, ok)
	require.Equal(t, "appId", prop)
	require.Equal(t, "abc", val)

	f, err = ParseFilter("appId eq 'abc' or appId eq 'def'", "appId")
	require.NoError(t, err)
	_, _, ok = f.EqualityKey()
	require.False(t, ok)

	var nilFilter *Filter
	require.True(t, nilFilter.Match(fields(nil)))
}

// FuzzFilter: the parser is fed outside input; it must never panic, and
// what it accepts must be matchable.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		"appId eq 'x'", "id eq 'a' and displayName eq 'b'", "startswith(displayName,'O''B')",
		"(a eq 'b') or (c eq 'd')", "appId in ('a','b')", "'", "((((", "eq eq eq", "startswith(", "displayName eq ''''",
	} {
		f.Add(s)
	}
	obj := fields(map[string]string{"id": "x", "appId": "y", "displayName": "O'B"})
	f.Fuzz(func(t *testing.T, src string) {
		flt, err := ParseFilter(src, "id", "appId", "displayName")
		if err != nil {
			var fe *FilterError
			require.ErrorAs(t, err, &fe)
			return
		}
		_ = flt.Match(obj)
		_, _, _ = flt.EqualityKey()
	})
}
