package api

import (
	"context"
	"time"
)

// The vault picker's routes: the Key Vaults a connection's identity sees
// and a vault's secrets' names, for a client choosing where an
// application's secret goes. Operator: they call Azure as the connection.

// Vault is a Key Vault a connection's identity can see.
type Vault struct {
	Name           string `json:"name"`
	URL            string `json:"url" doc:"The vault's address, https://…/ with a trailing slash."`
	Subscription   string `json:"subscription" doc:"The subscription's display name."`
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	Location       string `json:"location"`
}

// VaultList is every vault a connection's identity sees, by name.
type VaultList struct {
	Items []Vault `json:"items"`
}

// VaultSecret is one secret of a vault, never its value.
type VaultSecret struct {
	Name           string    `json:"name"`
	ManagedByRotor bool      `json:"managed_by_rotor" doc:"It carries rotor's managed-by tag. Any other secret the Key Vault sink refuses to overwrite unless the sink sets adopt: true."`
	AppID          string    `json:"app_id,omitempty" doc:"The application rotor manages it for (its rotor-app-id tag)."`
	Enabled        bool      `json:"enabled"`
	Updated        time.Time `json:"updated,omitzero"`
}

// VaultSecretList is a vault's secrets, by name.
type VaultSecretList struct {
	Vault string        `json:"vault"`
	Items []VaultSecret `json:"items"`
}

type vaultsOutput struct{ Body VaultList }

func (a *API) listVaults(ctx context.Context, in *nameInput) (*vaultsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	list, err := a.app.ListVaults(ctx, scope, in.Name)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &vaultsOutput{Body: VaultList{Items: make([]Vault, 0, len(list))}}
	for _, v := range list {
		out.Body.Items = append(out.Body.Items, Vault(v))
	}
	return out, nil
}

type vaultSecretsInput struct {
	Org   string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Name  string `path:"name" maxLength:"64" doc:"The connection's name."`
	Vault string `query:"vault" maxLength:"512" required:"true" doc:"The vault's URL: one the vaults route lists for this connection (404 otherwise: rotor calls no address its identity does not see)."`
}

type vaultSecretsOutput struct{ Body VaultSecretList }

func (a *API) listVaultSecrets(ctx context.Context, in *vaultSecretsInput) (*vaultSecretsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	list, err := a.app.ListVaultSecrets(ctx, scope, in.Name, in.Vault)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &vaultSecretsOutput{Body: VaultSecretList{Vault: in.Vault, Items: make([]VaultSecret, 0, len(list))}}
	for _, s := range list {
		out.Body.Items = append(out.Body.Items, VaultSecret(s))
	}
	return out, nil
}
