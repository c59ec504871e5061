package server

import (
	"context"
	"errors"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
)

// vaultFinder gives the application layer's vault picker what a
// connection's identity sees in Azure: Resource Manager's vaults and a
// vault's secrets' names, through the connection's own credential and
// cloud (as the Key Vault sink writes with them). Whether a secret is
// rotor's is the Key Vault sink's rule: its managed-by tag.
type vaultFinder struct{ s *Server }

var _ app.VaultFinder = vaultFinder{}

func (f vaultFinder) Vaults(ctx context.Context, org domain.OrgID, connection string) ([]app.Vault, error) {
	id, err := f.identity(ctx, org, connection)
	if err != nil {
		return nil, err
	}
	list, err := azure.ListVaults(ctx, id.Credential, id.ClientOptions)
	if err != nil {
		return nil, appAzureError(err)
	}
	out := make([]app.Vault, 0, len(list))
	for _, v := range list {
		out = append(out, app.Vault{Name: v.Name, URL: v.URL, Subscription: v.SubscriptionName, SubscriptionID: v.SubscriptionID,
			ResourceGroup: v.ResourceGroup, Location: v.Location})
	}
	return out, nil
}

func (f vaultFinder) VaultSecrets(ctx context.Context, org domain.OrgID, connection, vaultURL string) ([]app.VaultSecret, error) {
	id, err := f.identity(ctx, org, connection)
	if err != nil {
		return nil, err
	}
	list, err := azure.ListVaultSecrets(ctx, vaultURL, id.Credential, id.ClientOptions, id.Simulator)
	if err != nil {
		return nil, appAzureError(err)
	}
	out := make([]app.VaultSecret, 0, len(list))
	for _, sc := range list {
		mine := sc.Tags[keyvault.TagManagedBy] == keyvault.ManagedByRotor
		vs := app.VaultSecret{Name: sc.Name, ManagedByRotor: mine, Enabled: sc.Enabled, Updated: sc.Updated}
		if mine {
			vs.AppID = sc.Tags[keyvault.TagAppID]
		}
		out = append(out, vs)
	}
	return out, nil
}

// identity is the connection's credential, once the connections are in
// line with the store (one made in the UI a moment ago is found).
func (f vaultFinder) identity(ctx context.Context, org domain.OrgID, connection string) (sink.AzureIdentity, error) {
	if err := f.s.refreshConns(ctx, org); err != nil {
		f.s.log.Warn("refresh connections before listing vaults", "org", org, "err", err)
	}
	return f.s.conns.TokenCredential(org, connection)
}

// appAzureError turns Azure's answer into the application layer's
// *app.AzureError (the layer adds the connection and what was listed).
func appAzureError(err error) error {
	var le *azure.ListError
	if errors.As(err, &le) {
		return &app.AzureError{Service: le.Service, Status: le.Status, Code: le.Code, Message: le.Message, Err: err}
	}
	return err
}
