package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Setting keys of a "webhook" sink spec.
const (
	KeyURL           = "url"
	KeySigningKey    = "signing_key"
	KeyIncludeSecret = "include_secret"
	KeyRecipients    = "recipients"
	KeyTimeout       = "timeout"
	KeyHeaders       = "headers"
)

// Timeouts of one delivery attempt. The rotation retries; one attempt
// must not hold a run for long.
const (
	DefaultTimeout = 10 * time.Second
	minTimeout     = time.Second
	maxTimeout     = 2 * time.Minute
)

var knownKeys = []string{KeyHeaders, KeyIncludeSecret, KeyRecipients, KeySigningKey, KeyTimeout, KeyURL}

// reservedHeaders are set by the sink itself; a spec may not override them.
var reservedHeaders = []string{"content-type", "content-length", "host", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature", "transfer-encoding", "connection"}

// secretLooking are header names whose value is a credential: they must be
// references ({env: …}), never literals in rotor.yaml.
var secretLooking = regexp.MustCompile(`(?i)(authorization|key|token|secret|password|signature|cookie)`)

// headerName is RFC 9110's token.
var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")

// SpecError is a problem with one setting of a webhook sink spec.
type SpecError struct {
	// Key is the setting, e.g. "url"; empty for the spec as a whole.
	Key string
	Msg string
}

// Error names the setting.
func (e *SpecError) Error() string {
	if e.Key == "" {
		return "webhook sink: " + e.Msg
	}
	return fmt.Sprintf("webhook sink: %s: %s", e.Key, e.Msg)
}

// Permanent is true: a spec mistake needs a person.
func (e *SpecError) Permanent() bool { return true }

// header is one extra request header: a literal (non-secret) value, or a
// reference resolved at use.
type header struct {
	name  string
	value string
	ref   *sink.SecretRef
}

// settings is a checked spec.
type settings struct {
	url           string
	signingKey    sink.SecretRef
	includeSecret bool
	recipients    []age.Recipient
	recipientText []string
	timeout       time.Duration
	headers       []header
}

// parseSpec checks every setting and returns all problems at once.
func parseSpec(spec domain.SinkSpec) (settings, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &SpecError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if spec.Type != Type {
		bad("", "spec type is %q, not %q", spec.Type, Type)
	}
	var unknown []string
	for k := range spec.Settings {
		if k == sink.KeyAdopt {
			bad(k, "a webhook has no target state to take over: remove adopt")
			continue
		}
		if !slices.Contains(knownKeys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		bad("", "unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))
	}
	s := settings{timeout: DefaultTimeout}
	var scheme string
	switch v := spec.Settings[KeyURL].(type) {
	case nil:
		bad(KeyURL, "is required: the receiver's https URL")
	case string:
		u, err := CanonicalURL(v)
		if err != nil {
			bad(KeyURL, "%v", err)
		} else {
			s.url = u
			scheme, _, _ = strings.Cut(u, ":")
		}
	default:
		bad(KeyURL, "must be a string, got %T", v)
	}
	if v, ok := spec.Settings[KeySigningKey]; !ok || v == nil {
		bad(KeySigningKey, "is required: a reference to the Standard Webhooks secret (whsec_…) the receiver verifies with, e.g. {env: ROTOR_WEBHOOK_KEY}")
	} else if ref, err := sink.ParseSecretRef(v); err != nil {
		bad(KeySigningKey, "%v", err)
	} else {
		s.signingKey = ref
	}
	if v, ok := spec.Settings[KeyIncludeSecret]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			bad(KeyIncludeSecret, "must be true or false, got %T", v)
		}
		s.includeSecret = b
	}
	if v, ok := spec.Settings[KeyRecipients]; ok && v != nil {
		list, isList := v.([]any)
		if !isList {
			bad(KeyRecipients, "must be a list of age recipients (age1…), got %T", v)
		}
		for i, item := range list {
			r, isString := item.(string)
			if !isString {
				bad(KeyRecipients, "item %d must be an age recipient string, got %T", i+1, item)
				continue
			}
			rs, err := age.ParseRecipients(strings.NewReader(r))
			if err != nil || len(rs) != 1 {
				// age's own message never repeats the text: it may be an
				// identity (a private key) pasted by mistake.
				bad(KeyRecipients, "item %d is not an age recipient (age1… or age1pq1…; an AGE-SECRET-KEY is the private half and must not be here)", i+1)
				continue
			}
			s.recipients = append(s.recipients, rs[0])
			s.recipientText = append(s.recipientText, strings.TrimSpace(r))
		}
	}
	switch {
	case s.includeSecret && len(s.recipients) == 0:
		bad(KeyRecipients, "include_secret: true needs at least one age recipient: the secret is only ever sent encrypted to them")
	case s.includeSecret && scheme != "" && scheme != "https":
		bad(KeyIncludeSecret, "include_secret: true needs an https url")
	case !s.includeSecret && len(s.recipients) > 0:
		bad(KeyRecipients, "recipients are used only with include_secret: true; set it, or remove recipients")
	}
	if v, ok := spec.Settings[KeyTimeout]; ok && v != nil {
		str, isString := v.(string)
		d, err := time.ParseDuration(str)
		switch {
		case !isString || err != nil:
			bad(KeyTimeout, "must be a duration such as 10s, got %v", v)
		case d < minTimeout || d > maxTimeout:
			bad(KeyTimeout, "must be between %s and %s, got %s", minTimeout, maxTimeout, d)
		default:
			s.timeout = d
		}
	}
	if v, ok := spec.Settings[KeyHeaders]; ok && v != nil {
		m, isMap := v.(map[string]any)
		if !isMap {
			bad(KeyHeaders, "must be a map of header name to a value or a reference, got %T", v)
		}
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}) {
			key := KeyHeaders + "." + name
			switch {
			case !headerName.MatchString(name):
				bad(key, "is not a valid header name")
				continue
			case slices.Contains(reservedHeaders, strings.ToLower(name)):
				bad(key, "is set by rotor itself (reserved: %s)", strings.Join(reservedHeaders, ", "))
				continue
			}
			switch hv := m[name].(type) {
			case string:
				if secretLooking.MatchString(name) {
					bad(key, "looks like a credential: give it as a reference, e.g. {env: NAME}, never as a value in rotor.yaml")
					continue
				}
				if strings.ContainsAny(hv, "\r\n") {
					bad(key, "must be one line")
					continue
				}
				s.headers = append(s.headers, header{name: name, value: hv})
			default:
				ref, err := sink.ParseSecretRef(hv)
				if err != nil {
					bad(key, "%v", err)
					continue
				}
				s.headers = append(s.headers, header{name: name, ref: &ref})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

// CanonicalURL checks a receiver URL and returns its canonical form (the
// target id's locator): https, or plain http to a loopback host only (a
// receiver on the same machine, where nothing crosses a network); no user
// information, query or fragment, since those end up in logs and target
// ids, and a key belongs in a header reference; scheme and host in lower
// case, an empty path as "/". Errors never repeat the URL: a pasted one may
// carry a key.
func CanonicalURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", errors.New("is not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	switch {
	case scheme != "https" && scheme != "http":
		return "", errors.New("must be an https URL")
	case u.Hostname() == "":
		return "", errors.New("has no host")
	case scheme == "http" && !loopback(u.Hostname()):
		return "", errors.New("plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost); use https")
	case u.User != nil:
		return "", errors.New("must not carry user information: put credentials in a header reference (headers: {Authorization: {env: NAME}})")
	case u.RawQuery != "" || u.ForceQuery:
		return "", errors.New("must not have a query string (it would be logged and stored as the target id): put a key in a header reference instead, e.g. headers: {x-functions-key: {env: NAME}}")
	case u.Fragment != "":
		return "", errors.New("must not have a fragment")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
