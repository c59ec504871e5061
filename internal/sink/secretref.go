package sink

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/internal/secret"
)

// SecretRef says where a sink's own credential lives (an Azure DevOps PAT,
// a GitHub token, a webhook signing key), as written in a sink's spec:
//
//	token: {env: ADO_PAT}                                        # an environment variable
//	token: {file: /run/secrets/ado-pat}                          # a file's content, trimmed
//	token: {keyvault: {vault_url: https://…, secret: ado-pat}}   # a Key Vault secret
//
// It is the same syntax as the configuration's secret references
// (internal/config.SecretRef), but parsed from the decoded settings map a
// sink receives rather than from YAML, and with no inline form: a sink's
// credential is never written into rotor.yaml. Unlike the configuration's,
// a sink's reference is resolved at use (SecretResolver), so a rotated PAT
// file or Key Vault secret is picked up without a restart.
//
// A SecretRef holds no value; it prints where the secret comes from.
type SecretRef struct {
	// Env names an environment variable.
	Env string
	// File is a path; a relative one is relative to rotor.yaml's directory.
	File string
	// KeyVault is a Key Vault secret (its latest version).
	KeyVault *KeyVaultRef
}

// KeyVaultRef is a Key Vault secret a SecretRef points to.
type KeyVaultRef struct {
	VaultURL string
	Secret   string
}

// SecretResolver turns a SecretRef into the secret it names, at the moment
// a sink needs it. Errors describe the reference, never the value.
type SecretResolver interface {
	Resolve(ctx context.Context, ref SecretRef) (secret.Value, error)
}

var (
	envNamePattern     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	kvSecretNamePatern = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
)

const secretRefShapes = "use {env: NAME}, {file: PATH} or {keyvault: {vault_url: URL, secret: NAME}}"

// ParseSecretRef reads a reference from a spec setting's decoded value
// (YAML decoded into map[string]any). Errors say what shape is expected
// and never repeat a value that might be a pasted secret.
func ParseSecretRef(v any) (SecretRef, error) {
	m, ok := v.(map[string]any)
	switch {
	case v == nil:
		return SecretRef{}, fmt.Errorf("is empty: %s", secretRefShapes)
	case !ok:
		if _, isString := v.(string); isString {
			return SecretRef{}, fmt.Errorf("must be a reference, not the secret itself: %s", secretRefShapes)
		}
		return SecretRef{}, fmt.Errorf("has the wrong shape (%T): %s", v, secretRefShapes)
	case len(m) != 1:
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		return SecretRef{}, fmt.Errorf("must have exactly one key, has %d (%s): %s", len(m), strings.Join(keys, ", "), secretRefShapes)
	}
	for k, val := range m {
		switch k {
		case "env":
			s, _ := val.(string)
			if !envNamePattern.MatchString(s) {
				return SecretRef{}, fmt.Errorf("env must name an environment variable (letters, digits, _)")
			}
			return SecretRef{Env: s}, nil
		case "file":
			s, _ := val.(string)
			if strings.TrimSpace(s) == "" {
				return SecretRef{}, fmt.Errorf("file must name a file")
			}
			return SecretRef{File: s}, nil
		case "keyvault":
			kv, ok := val.(map[string]any)
			if !ok {
				return SecretRef{}, fmt.Errorf("keyvault must be {vault_url: URL, secret: NAME}")
			}
			var ref KeyVaultRef
			for kk, vv := range kv {
				s, _ := vv.(string)
				switch kk {
				case "vault_url":
					ref.VaultURL = s
				case "secret":
					ref.Secret = s
				default:
					return SecretRef{}, fmt.Errorf("unknown key %q under keyvault: use vault_url and secret", kk)
				}
			}
			u, err := url.Parse(ref.VaultURL)
			if ref.VaultURL == "" || err != nil || u.Scheme != "https" || u.Host == "" {
				return SecretRef{}, fmt.Errorf("keyvault.vault_url must be the vault's https URL, e.g. https://myvault.vault.azure.net/")
			}
			if !kvSecretNamePatern.MatchString(ref.Secret) {
				return SecretRef{}, fmt.Errorf("keyvault.secret must be a Key Vault secret name (1-127 letters, digits and dashes)")
			}
			return SecretRef{KeyVault: &ref}, nil
		default:
			return SecretRef{}, fmt.Errorf("unknown key %q: %s", k, secretRefShapes)
		}
	}
	panic("unreachable")
}

// String describes where the secret comes from, never the secret.
func (r SecretRef) String() string {
	switch {
	case r.Env != "":
		return "environment variable " + r.Env
	case r.File != "":
		return "file " + r.File
	case r.KeyVault != nil:
		return fmt.Sprintf("Key Vault secret %q in %s", r.KeyVault.Secret, r.KeyVault.VaultURL)
	}
	return "empty secret reference"
}
