package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// selfDecoded marks raw types that read their own YAML shape (and report
// their own mistakes); the unknown-key walk does not look inside them.
type selfDecoded interface{ selfDecoded() }

func (*SecretRef) selfDecoded() {}
func (*duration) selfDecoded()  {}

var (
	selfDecodedType     = reflect.TypeFor[selfDecoded]()
	yamlNodeType        = reflect.TypeFor[yaml.Node]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// yamlKey is one key of a raw struct type.
type yamlKey struct {
	name  string
	field reflect.StructField
}

// yamlKeys returns the yaml keys of struct type t, in field order.
func yamlKeys(t reflect.Type) []yamlKey {
	var out []yamlKey
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, yamlKey{name, f})
	}
	return out
}

func findKey(keys []yamlKey, name string) (reflect.StructField, bool) {
	for _, k := range keys {
		if k.name == name {
			return k.field, true
		}
	}
	return reflect.StructField{}, false
}

// checkKeys reports every key of n that type t does not know, with its
// line and the closest known key, and every value of the wrong shape (a
// list where a map belongs, "yes please" for a boolean). It reports them
// all, not just the first, so that one edit fixes the file, and removes
// them from the tree so that decoding reports nothing twice and the rest of
// the file can still be checked. List items of the wrong shape become null
// (keeping the indices of the others) and are recorded in skip.
//
// objPath/object name the list item being walked (`policies[0]`,
// `policies[0] "web"`), path the key within it.
func checkKeys(n *yaml.Node, t reflect.Type, path, objPath, object string, ps *problems, skip map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || selfChecked(t) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		known := yamlKeys(t)
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := findKey(known, k.Value)
			child := joinPath(path, k.Value)
			rel := relPath(child, objPath)
			if !ok {
				where := ""
				if parent := relPath(path, objPath); parent != "" {
					where = " in " + parent
				}
				ps.addf(child, object, k.Line, "unknown key %q%s (line %d); %s", k.Value, where, k.Line, suggest(k.Value, known))
				continue
			}
			if want := wrongShape(v, f.Type); want != "" {
				ps.addf(child, object, v.Line, "%s must be %s (line %d)%s", rel, want, v.Line, notA(v))
				continue
			}
			kept = append(kept, k, v)
			checkKeys(v, f.Type, child, objPath, object, ps, skip)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		et := t.Elem()
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if want := wrongShape(item, et); want != "" {
				ps.addf(p, object, item.Line, "%s must be %s (line %d)%s", relPath(p, objPath), want, item.Line, notA(item))
				skip[p] = true
				n.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: item.Line}
				continue
			}
			if et.Kind() == reflect.Struct && !selfChecked(et) {
				checkKeys(item, et, p, p, itemName(p, item), ps, skip)
				continue
			}
			checkKeys(item, et, p, objPath, object, ps, skip)
		}
	}
}

// selfChecked reports whether values of t read (and check) their own YAML.
func selfChecked(t reflect.Type) bool {
	return t == yamlNodeType || reflect.PointerTo(t).Implements(selfDecodedType)
}

// wrongShape says what v should have been when it cannot be decoded into
// t, or "" when it can. null is always fine: it means "not set".
func wrongShape(v *yaml.Node, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v == nil || (v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null") {
		return ""
	}
	if selfChecked(t) || reflect.PointerTo(t).Implements(yamlUnmarshalerType) {
		return ""
	}
	switch t.Kind() {
	case reflect.Struct:
		if v.Kind != yaml.MappingNode {
			return "a map"
		}
	case reflect.Slice:
		if v.Kind != yaml.SequenceNode {
			return "a list"
		}
	case reflect.Bool:
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
			return "true or false"
		}
	case reflect.Int:
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
			return "a whole number"
		}
	case reflect.String:
		if v.Kind != yaml.ScalarNode {
			return "a single value"
		}
	}
	return ""
}

// notA names what a wrongly shaped value was, when that helps.
func notA(v *yaml.Node) string {
	if v.Kind == yaml.ScalarNode {
		return ""
	}
	return ", not a " + kindName(v)
}

// relPath is path relative to the list item at objPath.
func relPath(path, objPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, objPath), ".")
}

// itemName is how a problem names a list item: its index and, when it has
// one, its name: `policies[0] "web"`.
func itemName(p string, item *yaml.Node) string {
	if item.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(item.Content); i += 2 {
			if item.Content[i].Value == "name" && item.Content[i+1].Kind == yaml.ScalarNode && item.Content[i+1].Value != "" {
				return fmt.Sprintf("%s %q", p, item.Content[i+1].Value)
			}
		}
	}
	return p
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest proposes the known key closest to a mistyped one, or lists them.
func suggest(key string, known []yamlKey) string {
	names := make([]string, 0, len(known))
	for _, k := range known {
		names = append(names, k.name)
	}
	best, bestD := "", 3
	for _, k := range names {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known keys: " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
