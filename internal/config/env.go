package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/rotor-dev/rotor/internal/secret"
)

// EnvPrefix starts the name of every environment override.
//
// Every key of rotor.yaml can be overridden by ROTOR_ and its path in upper
// case with "_" between the parts: listen is ROTOR_LISTEN, rotation.jitter
// is ROTOR_ROTATION_JITTER. Items of the connections and policies lists are
// addressed by name (upper case, anything but letters and digits becomes
// "_"): the client secret of connection "contoso-prod" is
// ROTOR_CONNECTIONS_CONTOSO_PROD_CLIENT_SECRET. An override changes an item
// the file defines; it cannot add one. Sinks are not overridable (they are
// lists of maps with no stable name). An empty variable counts as unset.
const EnvPrefix = "ROTOR"

// envSegment turns a connection or policy name into its part of a variable
// name: "contoso-prod" → "CONTOSO_PROD".
func envSegment(name string) string {
	return strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return unicode.ToUpper(r)
		}
		return '_'
	}, name)
}

// envLeaf is a raw type that takes its own value from a variable even
// though it is also a map in YAML (managed_identity: true).
type envLeaf interface{ setEnv(value string) error }

// envInit prepares a raw value that an override brings into being.
type envInit interface{ initEnv() }

func (m *rawManagedIdentity) setEnv(v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	m.enabled = b
	return nil
}

func (m *rawManagedIdentity) initEnv() { m.enabled = true }

var (
	envLeafType  = reflect.TypeFor[envLeaf]()
	envInitType  = reflect.TypeFor[envInit]()
	secretRefPtr = reflect.TypeFor[*SecretRef]()
	durationType = reflect.TypeFor[duration]()
)

// applyEnv overrides the fields of the struct v (addressable) from the
// environment, reporting values it cannot use. It returns whether anything
// was set.
func applyEnv(v reflect.Value, prefix, path string, getenv func(string) string, ps *problems) bool {
	changed := false
	t := v.Type()
	for _, k := range yamlKeys(t) {
		name := prefix + "_" + strings.ToUpper(k.name)
		fv := v.FieldByIndex(k.field.Index)
		if applyEnvField(fv, name, joinPath(path, k.name), getenv, ps) {
			changed = true
		}
	}
	return changed
}

func applyEnvField(fv reflect.Value, name, path string, getenv func(string) string, ps *problems) bool {
	ft := fv.Type()
	val := getenv(name)
	bad := func(want string) bool {
		// Values of these kinds are never secrets, so quoting one helps.
		ps.addf(path, "", 0, "environment variable %s=%q: %s", name, val, want)
		return false
	}
	switch {
	case ft == secretRefPtr:
		if val == "" {
			return false
		}
		fv.Set(reflect.ValueOf(envSecret(name, val)))
		return true
	case ft == durationType:
		if val == "" {
			return false
		}
		fv.Set(reflect.ValueOf(duration{raw: val, src: name}))
		return true
	case ft.Kind() == reflect.String:
		if val == "" {
			return false
		}
		fv.SetString(val)
		return true
	case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Int:
		if val == "" {
			return false
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return bad("want a whole number")
		}
		fv.Set(reflect.ValueOf(&n))
		return true
	case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Bool, ft.Kind() == reflect.Bool:
		if val == "" {
			return false
		}
		b, err := strconv.ParseBool(val)
		if err != nil {
			return bad("want true or false")
		}
		if ft.Kind() == reflect.Bool {
			fv.SetBool(b)
		} else {
			fv.Set(reflect.ValueOf(&b))
		}
		return true
	case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
		if val == "" {
			return false
		}
		var list []string
		for _, s := range strings.Split(val, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		fv.Set(reflect.ValueOf(list))
		return true
	case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != yamlNodeType:
		changed := false
		for i := 0; i < fv.Len(); i++ {
			item := fv.Index(i)
			nf := item.FieldByName("Name")
			if !nf.IsValid() || nf.String() == "" {
				continue
			}
			if applyEnvItem(item, name+"_"+envSegment(nf.String()), fmt.Sprintf("%s[%d]", path, i), getenv, ps) {
				changed = true
			}
		}
		return changed
	case ft.Kind() == reflect.Struct:
		return applyEnv(fv, name, path, getenv, ps)
	case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
		target := fv
		if fv.IsNil() {
			target = reflect.New(ft.Elem())
			if ft.Implements(envInitType) {
				target.Interface().(envInit).initEnv()
			}
		}
		changed := false
		if ft.Implements(envLeafType) && val != "" {
			if err := target.Interface().(envLeaf).setEnv(val); err != nil {
				bad(err.Error())
			} else {
				changed = true
			}
		}
		if applyEnv(target.Elem(), name, path, getenv, ps) {
			changed = true
		}
		if changed && fv.IsNil() {
			fv.Set(target)
		}
		return changed
	}
	return false
}

// applyEnvItem overrides one named list item; its name is its address and
// is not itself overridable.
func applyEnvItem(item reflect.Value, prefix, path string, getenv func(string) string, ps *problems) bool {
	changed := false
	for _, k := range yamlKeys(item.Type()) {
		if k.name == "name" {
			continue
		}
		if applyEnvField(item.FieldByIndex(k.field.Index), prefix+"_"+strings.ToUpper(k.name), joinPath(path, k.name), getenv, ps) {
			changed = true
		}
	}
	return changed
}

func envSecret(name, val string) *SecretRef {
	r := &SecretRef{kind: refEnv, name: name}
	r.value, r.resolved = secret.New(val), true
	return r
}

// EnvVars lists every environment variable rotor reads its configuration
// from, sorted; <NAME> stands for a connection's or policy's name.
func EnvVars() []string {
	var out []string
	var walk func(t reflect.Type, prefix string, item bool)
	walk = func(t reflect.Type, prefix string, item bool) {
		for _, k := range yamlKeys(t) {
			if item && k.name == "name" {
				continue
			}
			name := prefix + "_" + strings.ToUpper(k.name)
			ft := k.field.Type
			switch {
			case ft == secretRefPtr || ft == durationType:
				out = append(out, name)
			case ft.Kind() == reflect.Slice && ft.Elem() == yamlNodeType:
				// sinks: not overridable
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				if _, named := findKey(yamlKeys(ft.Elem()), "name"); named {
					walk(ft.Elem(), name+"_<NAME>", true)
				}
				// Items without a name (api_auth.entra.roles) have no
				// address: not overridable.
			case ft.Kind() == reflect.Struct:
				walk(ft, name, false)
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
				if ft.Implements(envLeafType) {
					out = append(out, name)
				}
				walk(ft.Elem(), name, false)
			default:
				out = append(out, name)
			}
		}
	}
	walk(reflect.TypeFor[rawConfig](), EnvPrefix, false)
	sort.Strings(out)
	return out
}
