package ui

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/sink"
)

// The Sinks page's settings: what a person has chosen so far, carried in
// the page's URL as `rotor sinks discover` carries them in --set, and the
// rotor.yaml snippet they add up to.
//
// A setting travels as set=KEY=VALUE, VALUE being YAML as in rotor.yaml
// (`{env: VERCEL_TOKEN}`, `[a, b]`, `payments`). A secret never does:
// the settings that hold a credential (a token, a PAT, a signing key) are
// accepted only as references, so neither the URL, nor the page, nor the
// snippet ever holds a value. What follows knows a little about a few
// kinds (which settings are credentials, which are lists) from their
// pages in docs/sinks/; everything else it treats alike.

// maxSettings bounds the settings one page carries (a URL is not a
// configuration file).
const maxSettings = 40

// settingKey is what a setting's name may be: rotor.yaml's keys are
// lower-case snake case.
var settingKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// credentialKeys are settings that hold a credential in some kind: only a
// reference ({env: …}, {file: …}, {keyvault: …}) is accepted for them.
var credentialKeys = []string{"token", "pat", "signing_key", "password", "client_secret", "api_key"}

// credentialPlaceholders are the credential settings a kind needs and the
// placeholder the snippet shows while none is chosen (docs/sinks/<kind>.md).
// unless lists settings that make it unnecessary (Azure DevOps signs in
// with a PAT, or as a connection).
var credentialPlaceholders = map[string]struct {
	key, ref string
	unless   []string
}{
	"vercel":        {key: "token", ref: "VERCEL_TOKEN"},
	"github":        {key: "token", ref: "GITHUB_TOKEN"},
	"webhook":       {key: "signing_key", ref: "ROTOR_WEBHOOK_KEY"},
	"adoconnection": {key: "pat", ref: "ADO_PAT", unless: []string{"entra", "connection"}},
	"adovariables":  {key: "pat", ref: "ADO_PAT", unless: []string{"entra", "connection"}},
	"adogit":        {key: "pat", ref: "ADO_PAT", unless: []string{"connection"}},
}

// listKeys are the listable settings that take several choices (each
// choice is added to the list rather than replacing it).
var listKeys = map[string][]string{
	"kubernetes": {"restart"},
	"logicapp":   {"connections"},
}

func isListKey(typ, key string) bool { return slices.Contains(listKeys[typ], key) }

func isCredentialKey(key string) bool { return slices.Contains(credentialKeys, key) }

// setting is one chosen setting: its key, the YAML it was given as, and
// that YAML's value.
type sinkSetting struct {
	Key  string
	Raw  string
	Item any
}

// settings are a sink's chosen settings, in the order they were chosen;
// a list key may occur several times (one item each).
type sinkSettings []sinkSetting

// errNotReference says a credential was given as a value: the error
// never repeats it.
type errNotReference struct{ key string }

func (e *errNotReference) Error() string {
	return fmt.Sprintf("%s holds a credential: give it as a reference, {env: NAME} or {file: PATH} (or {keyvault: {vault_url: URL, secret: NAME}}), never the value itself; the value was not kept", e.key)
}

// parseSinkSetting reads one KEY=VALUE (VALUE as YAML).
func parseSinkSetting(kv string) (sinkSetting, error) {
	k, v, ok := strings.Cut(kv, "=")
	k = strings.TrimSpace(k)
	if !ok || !settingKey.MatchString(k) {
		return sinkSetting{}, fmt.Errorf("a setting is KEY=VALUE with a lower-case key such as namespace=payments, not %q", trimTo(k, 64))
	}
	return newSinkSetting(k, v)
}

// newSinkSetting reads the value v of setting k.
func newSinkSetting(k, v string) (sinkSetting, error) {
	if !settingKey.MatchString(k) {
		return sinkSetting{}, fmt.Errorf("a setting's name is lower-case letters, digits and _, such as namespace, not %q", trimTo(k, 64))
	}
	v = strings.TrimSpace(v)
	var val any
	if err := yaml.Unmarshal([]byte(v), &val); err != nil {
		if isCredentialKey(k) {
			return sinkSetting{}, &errNotReference{key: k}
		}
		return sinkSetting{}, fmt.Errorf("%s: the value is not YAML (write it as in rotor.yaml, e.g. %s: payments or %s: [a, b])", k, k, k)
	}
	if isCredentialKey(k) {
		if _, err := sink.ParseSecretRef(val); err != nil {
			if _, isString := val.(string); isString || val == nil {
				return sinkSetting{}, &errNotReference{key: k}
			}
			// The shape is wrong, not a pasted value: say how (the
			// reference parser's messages never repeat a value).
			return sinkSetting{}, fmt.Errorf("%s %v", k, err)
		}
	}
	return sinkSetting{Key: k, Raw: v, Item: val}, nil
}

// parseSinkSettings reads every set=KEY=VALUE of q.
func parseSinkSettings(q url.Values) (sinkSettings, error) {
	raw := q["set"]
	if len(raw) > maxSettings {
		return nil, fmt.Errorf("at most %d settings", maxSettings)
	}
	var out sinkSettings
	for _, kv := range raw {
		s, err := parseSinkSetting(kv)
		if err != nil {
			return nil, err
		}
		out = out.with(s)
	}
	return out, nil
}

// with adds s: a setting of the same key is replaced in place, except an
// item of a list key, which is added (once).
func (ss sinkSettings) with(s sinkSetting) sinkSettings {
	out := slices.Clone(ss)
	for i, o := range out {
		if o.Key != s.Key {
			continue
		}
		if o.Raw == s.Raw {
			return out
		}
		if !isListKeyAny(s.Key) {
			out[i] = s
			return out
		}
	}
	return append(out, s)
}

// isListKeyAny is whether key is a list key of any kind: the settings
// are parsed before the kind's table is consulted, and a list key of one
// kind is no scalar of another.
func isListKeyAny(key string) bool {
	for _, ks := range listKeys {
		if slices.Contains(ks, key) {
			return true
		}
	}
	return false
}

// without removes key's settings (the one item raw, when given).
func (ss sinkSettings) without(key, raw string) sinkSettings {
	return slices.DeleteFunc(slices.Clone(ss), func(s sinkSetting) bool { return s.Key == key && (raw == "" || s.Raw == raw) })
}

// has is whether key is set.
func (ss sinkSettings) has(key string) bool {
	return slices.ContainsFunc(ss, func(s sinkSetting) bool { return s.Key == key })
}

// values are key's raw values.
func (ss sinkSettings) values(key string) []string {
	var out []string
	for _, s := range ss {
		if s.Key == key {
			out = append(out, s.Raw)
		}
	}
	return out
}

// query is ss as set=KEY=VALUE parameters, added to base.
func (ss sinkSettings) query(base url.Values) url.Values {
	q := url.Values{}
	for k, v := range base {
		if v2 := slices.DeleteFunc(slices.Clone(v), func(s string) bool { return s == "" }); len(v2) > 0 {
			q[k] = v2
		}
	}
	for _, s := range ss {
		q.Add("set", s.Key+"="+s.Raw)
	}
	return q
}

// spec is the settings as typ's sink reads them (rotor.yaml's shape): a
// list key's items gathered into one list; a Kubernetes restart choice
// ("Deployment/api") as {kind: Deployment, name: api}.
func (ss sinkSettings) spec(typ string) (keys []string, values map[string]any) {
	values = map[string]any{}
	for _, s := range ss {
		if !isListKey(typ, s.Key) {
			if _, seen := values[s.Key]; !seen {
				keys = append(keys, s.Key)
			}
			values[s.Key] = s.Item
			continue
		}
		list, seen := values[s.Key].([]any)
		if !seen {
			keys = append(keys, s.Key)
		}
		items := []any{s.Item}
		if l, ok := s.Item.([]any); ok {
			items = l
		}
		for _, it := range items {
			if str, ok := it.(string); ok && typ == "kubernetes" && s.Key == "restart" {
				if kind, name, ok := strings.Cut(str, "/"); ok {
					it = map[string]any{"kind": kind, "name": name}
				}
			}
			list = append(list, it)
		}
		values[s.Key] = list
	}
	return keys, values
}

// scalar is v written as a YAML value that reads back as the string v
// (quoted when YAML would read it as something else: 123, true, null,
// {x}).
func yamlScalar(v string) string {
	var back any
	if err := yaml.Unmarshal([]byte(v), &back); err == nil {
		if s, ok := back.(string); ok && s == v {
			return v
		}
	}
	return strconv.Quote(v)
}

// snippet is the `sinks:` block of rotor.yaml for a typ sink with ss,
// as the person pastes it under a policy. A credential the kind needs and
// ss lacks is a placeholder reference; no value is ever in it (ss holds
// only references for credentials).
func sinkSnippet(typ, connection string, ss sinkSettings) (string, error) {
	keys, values := ss.spec(typ)
	// rotor.yaml's shape: `- <type>: {settings…}`, one key per item.
	body := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v any, comment string) error {
		kn := &yaml.Node{Kind: yaml.ScalarNode, Value: k}
		vn := &yaml.Node{}
		if err := vn.Encode(v); err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
		if vn.Kind == yaml.MappingNode || vn.Kind == yaml.SequenceNode {
			vn.Style = yaml.FlowStyle
		}
		vn.LineComment = comment
		body.Content = append(body.Content, kn, vn)
		return nil
	}
	for _, k := range keys {
		if err := add(k, values[k], ""); err != nil {
			return "", err
		}
	}
	if p, ok := credentialPlaceholders[typ]; ok && !ss.has(p.key) && !slices.ContainsFunc(p.unless, ss.has) {
		comment := "# a reference (or {file: PATH}); never the value"
		if len(p.unless) > 0 {
			comment = "# a reference; or " + strings.Join(p.unless, " / ") + " instead (docs/sinks/" + typ + ".md)"
		}
		if err := add(p.key, map[string]any{"env": p.ref}, comment); err != nil {
			return "", err
		}
	}
	if len(body.Content) == 0 {
		body.Style = yaml.FlowStyle // {}
	}
	item := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: typ}, body}}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "sinks"},
		{Kind: yaml.SequenceNode, Content: []*yaml.Node{item}},
	}}
	if connection != "" {
		doc.HeadComment = "# under a policy with connection: " + yamlScalar(connection)
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("write the snippet: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("write the snippet: %w", err)
	}
	return b.String(), nil
}

func trimTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
