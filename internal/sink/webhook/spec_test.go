package webhook_test

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink/webhook"
)

const (
	recipientA = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
)

func baseSpec() map[string]any {
	return map[string]any{
		webhook.KeyURL:           "https://hooks.example.com/rotor",
		webhook.KeySigningKey:    map[string]any{"env": "ROTOR_WEBHOOK_KEY"},
		webhook.KeyIncludeSecret: true,
		webhook.KeyRecipients:    []any{recipientA},
		webhook.KeyTimeout:       "5s",
		webhook.KeyHeaders:       map[string]any{"X-Team": "payroll", "x-functions-key": map[string]any{"env": "FN_KEY"}},
	}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		tweak func(map[string]any)
		want  []string // substrings of the error; none: valid
	}{
		"valid":               {func(map[string]any) {}, nil},
		"no value by default": {func(s map[string]any) { delete(s, webhook.KeyIncludeSecret); delete(s, webhook.KeyRecipients) }, nil},
		"http to loopback without value": {func(s map[string]any) {
			s[webhook.KeyURL] = "http://127.0.0.1:9000/hook"
			delete(s, webhook.KeyIncludeSecret)
			delete(s, webhook.KeyRecipients)
		}, nil},
		"include_secret over http": {func(s map[string]any) { s[webhook.KeyURL] = "http://127.0.0.1:9000/hook" },
			[]string{"include_secret: true needs an https url"}},
		"include_secret without recipients": {func(s map[string]any) { delete(s, webhook.KeyRecipients) },
			[]string{"recipients: include_secret: true needs at least one age recipient"}},
		"recipients without include_secret": {func(s map[string]any) { delete(s, webhook.KeyIncludeSecret) },
			[]string{"recipients are used only with include_secret"}},
		"a private key as recipient": {func(s map[string]any) {
			s[webhook.KeyRecipients] = []any{"AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"}
		}, []string{"item 1 is not an age recipient"}},
		"plain http elsewhere": {func(s map[string]any) { s[webhook.KeyURL] = "http://hooks.example.com/" },
			[]string{"plain http is allowed only to a loopback host"}},
		"key in the query": {func(s map[string]any) { s[webhook.KeyURL] = "https://fn.example.net/api/hook?code=abc123" },
			[]string{"must not have a query string"}},
		"literal signing key": {func(s map[string]any) { s[webhook.KeySigningKey] = "whsec_abc" },
			[]string{"signing_key: must be a reference"}},
		"missing url and key": {func(s map[string]any) { delete(s, webhook.KeyURL); delete(s, webhook.KeySigningKey) },
			[]string{"url: is required", "signing_key: is required"}},
		"literal credential header": {func(s map[string]any) { s[webhook.KeyHeaders] = map[string]any{"Authorization": "Bearer abc"} },
			[]string{"headers.Authorization: looks like a credential"}},
		"reserved header": {func(s map[string]any) { s[webhook.KeyHeaders] = map[string]any{"webhook-id": "x"} },
			[]string{"headers.webhook-id: is set by rotor itself"}},
		"bad timeout": {func(s map[string]any) { s[webhook.KeyTimeout] = "10m" }, []string{"timeout: must be between 1s and 2m0s"}},
		"adopt":       {func(s map[string]any) { s["adopt"] = true }, []string{"adopt: a webhook has no target state"}},
		"unknown key and every other problem at once": {func(s map[string]any) {
			s["secret"] = "x"
			s[webhook.KeyTimeout] = 3
			s[webhook.KeyURL] = "ftp://x"
		}, []string{"unknown setting(s) secret (known: headers, include_secret, recipients, signing_key, timeout, url)", "timeout: must be a duration", "url: must be an https URL"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := maps.Clone(baseSpec())
			tc.tweak(s)
			err := webhook.Kind{}.CheckSpec(domain.SinkSpec{Type: webhook.Type, Settings: s})
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "abc123", "an error never repeats a URL that may hold a key")
			require.NotContains(t, err.Error(), "Bearer abc")
		})
	}
}

func TestTargetIsCanonicalURL(t *testing.T) {
	t.Parallel()
	a, err := webhook.TargetFor("HTTPS://Hooks.Example.com")
	require.NoError(t, err)
	require.Equal(t, "webhook:https://hooks.example.com/", a.String())
	b, err := webhook.TargetFor("https://hooks.example.com/")
	require.NoError(t, err)
	require.Equal(t, a, b)
}
