package config

import "github.com/rotor-dev/rotor/internal/store"

// StoreRef returns where the secret comes from in the form the store
// keeps: an environment variable, a file (its absolute path), a Key Vault
// secret, or, for a value written literally in rotor.yaml, the marker
// store.SecretInline, because the value itself never goes into the
// database (it stays in this process's memory, in the Config). Nil for a
// nil reference.
func (r *SecretRef) StoreRef() *store.SecretRef {
	if r == nil {
		return nil
	}
	switch r.kind {
	case refEnv:
		return &store.SecretRef{Kind: store.SecretEnv, Env: r.name}
	case refFile:
		return &store.SecretRef{Kind: store.SecretFile, File: r.name}
	case refKeyVault:
		return &store.SecretRef{Kind: store.SecretKeyVault, VaultURL: r.vaultURL, Secret: r.secretName}
	case refInline:
		return &store.SecretRef{Kind: store.SecretInline}
	}
	return nil
}
