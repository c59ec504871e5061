package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/secret"
)

// SecretRef says where a secret of the configuration comes from:
//
//	client_secret: {env: CONTOSO_ROTATION_SECRET}   # an environment variable
//	client_secret: {file: /run/secrets/contoso}      # a file's content, trimmed
//	client_secret: {keyvault: {vault_url: https://…, secret: contoso-rotation}}
//	client_secret: "the value itself"                # allowed, discouraged
//
// Environment and file references are resolved while the configuration
// loads, so a missing variable stops rotor before it starts. Key Vault
// references need an Azure identity and a network round trip; they are
// resolved afterwards with Resolve (or Config.ResolveSecrets).
//
// A SecretRef never prints its value: every fmt verb shows where the
// secret comes from, never what it is.
type SecretRef struct {
	kind       refKind
	name       string // environment variable name or file path
	vaultURL   string
	secretName string
	line       int
	// problem is a structural mistake found while decoding; it never
	// contains the value.
	problem string

	value    secret.Value
	resolved bool
}

type refKind int

const (
	refNone refKind = iota
	refInline
	refEnv
	refFile
	refKeyVault
)

// SecretResolver fetches secrets that live outside the configuration file
// and its environment. An implementation reads a Key Vault secret with an
// identity of its choosing (typically the host's managed identity).
type SecretResolver interface {
	KeyVaultSecret(ctx context.Context, vaultURL, name string) (secret.Value, error)
}

// ErrNoResolver is returned by Resolve for a Key Vault reference when no
// resolver was given.
var ErrNoResolver = errors.New("a Key Vault secret reference needs a resolver")

// Resolve returns the secret. Environment, file and inline secrets were
// read at load time and are returned at once; a Key Vault reference asks
// resolver the first time and remembers the answer. Errors describe the
// reference, never the value.
func (r *SecretRef) Resolve(ctx context.Context, resolver SecretResolver) (secret.Value, error) {
	if r == nil {
		return secret.Value{}, nil
	}
	if r.resolved {
		return r.value, nil
	}
	if r.kind != refKeyVault {
		return secret.Value{}, fmt.Errorf("%s was not resolved while loading the configuration", r)
	}
	if resolver == nil {
		return secret.Value{}, fmt.Errorf("%s: %w", r, ErrNoResolver)
	}
	v, err := resolver.KeyVaultSecret(ctx, r.vaultURL, r.secretName)
	if err != nil {
		return secret.Value{}, fmt.Errorf("read %s: %w", r, err)
	}
	if v.IsZero() {
		return secret.Value{}, fmt.Errorf("%s is empty", r)
	}
	r.value, r.resolved = v, true
	return v, nil
}

// Resolved reports whether the value is known (always, except for a Key
// Vault reference not yet resolved).
func (r *SecretRef) Resolved() bool { return r != nil && r.resolved }

// Value returns the secret, or the zero Value while unresolved.
func (r *SecretRef) Value() secret.Value {
	if r == nil {
		return secret.Value{}
	}
	return r.value
}

// IsKeyVault reports whether the secret lives in Key Vault.
func (r *SecretRef) IsKeyVault() bool { return r != nil && r.kind == refKeyVault }

// String describes where the secret comes from, never the secret.
func (r SecretRef) String() string {
	switch r.kind {
	case refEnv:
		return "environment variable " + r.name
	case refFile:
		return "file " + r.name
	case refKeyVault:
		return fmt.Sprintf("Key Vault secret %q in %s", r.secretName, r.vaultURL)
	case refInline:
		return "inline secret"
	}
	return "empty secret reference"
}

// GoString is String: %#v must not reveal the value either.
func (r SecretRef) GoString() string { return r.String() }

// Format makes every fmt verb print String.
func (r SecretRef) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }

// MarshalText describes the reference, so that a configuration dumped as
// JSON or YAML shows where secrets come from and not what they are.
func (r SecretRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalYAML records the reference's shape. It never fails: mistakes are
// kept and reported by validation with the key's path, alongside every
// other problem of the file.
func (r *SecretRef) UnmarshalYAML(n *yaml.Node) error {
	*r = SecretRef{line: n.Line}
	const shapes = "use {env: NAME}, {file: PATH}, {keyvault: {vault_url: URL, secret: NAME}} or a string"
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" || n.Value == "" {
			r.problem = "is empty: " + shapes
			return nil
		}
		r.kind, r.value, r.resolved = refInline, secret.New(n.Value), true
		return nil
	case yaml.MappingNode:
	default:
		r.problem = "has the wrong shape: " + shapes
		return nil
	}
	if len(n.Content) != 2 {
		r.problem = "must have exactly one key: " + shapes
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	switch k.Value {
	case "env", "file":
		if v.Kind != yaml.ScalarNode || v.Value == "" {
			r.problem = fmt.Sprintf("%s must name %s (line %d)", k.Value, map[string]string{"env": "an environment variable", "file": "a file"}[k.Value], v.Line)
			return nil
		}
		r.kind, r.name = refFile, v.Value
		if k.Value == "env" {
			r.kind = refEnv
		}
	case "keyvault":
		r.kind = refKeyVault
		if v.Kind != yaml.MappingNode {
			r.problem = fmt.Sprintf("keyvault must be {vault_url: URL, secret: NAME} (line %d)", v.Line)
			return nil
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			kk, vv := v.Content[i], v.Content[i+1]
			switch kk.Value {
			case "vault_url":
				r.vaultURL = vv.Value
			case "secret":
				r.secretName = vv.Value
			default:
				r.problem = fmt.Sprintf("unknown key %q under keyvault (line %d): use vault_url and secret", kk.Value, kk.Line)
				return nil
			}
		}
	default:
		r.problem = fmt.Sprintf("unknown key %q (line %d): %s", k.Value, k.Line, shapes)
	}
	return nil
}

// keyVaultSecretName is what Key Vault accepts as a secret name.
var keyVaultSecretName = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

// load resolves environment and file references and checks Key Vault
// ones. It returns a problem message (naming the reference, never the
// value) or "".
func (r *SecretRef) load(getenv func(string) string, baseDir string) string {
	if r.problem != "" {
		return r.problem
	}
	switch r.kind {
	case refEnv:
		v := getenv(r.name)
		if v == "" {
			return fmt.Sprintf("environment variable %s is not set or is empty: export it, or change the reference", r.name)
		}
		r.value, r.resolved = secret.New(v), true
	case refFile:
		r.name = resolvePath(baseDir, r.name)
		b, msg := readSecretFile(r.name)
		if msg != "" {
			return msg
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return fmt.Sprintf("secret file %s is empty", r.name)
		}
		r.value, r.resolved = secret.New(v), true
	case refKeyVault:
		u, err := url.Parse(r.vaultURL)
		if r.vaultURL == "" || err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Sprintf("keyvault.vault_url %q must be the vault's https URL, e.g. https://myvault.vault.azure.net", r.vaultURL)
		}
		if !keyVaultSecretName.MatchString(r.secretName) {
			return fmt.Sprintf("keyvault.secret %q must be a Key Vault secret name (1-127 letters, digits and dashes)", r.secretName)
		}
	case refNone:
		return "is empty"
	}
	return ""
}

// maxSecretFile is the largest secret file rotor reads. Secrets are
// short; a bigger file is the wrong one.
const maxSecretFile = 64 << 10

// readSecretFile reads a {file: …} secret. Only regular files (or links
// to them, as Kubernetes mounts secrets) are read, and only up to
// maxSecretFile, so that a reference to a device or a pipe cannot hang or
// exhaust rotor while it loads. The message names the file, never its
// content.
func readSecretFile(name string) ([]byte, string) {
	// Stat before opening: opening a pipe would wait for a writer.
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Sprintf("cannot read secret file %s: %s", name, pathErrReason(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Sprintf("secret file %s is not a regular file: point the reference at the file holding the secret", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Sprintf("cannot read secret file %s: %s", name, pathErrReason(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Sprintf("cannot read secret file %s: %s", name, pathErrReason(err))
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Sprintf("secret file %s is over 64 KiB: a secret is far shorter; point the reference at the file holding only the secret", name)
	}
	return b, ""
}

// pathErrReason says why a file could not be read without repeating the
// path (the caller already names it).
func pathErrReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
