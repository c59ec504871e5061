package inventory

import (
	"context"
	"errors"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/domain"
)

// PageSize is the $top of application listings: Graph's maximum, so a
// 100k-application tenant costs about 100 requests.
const PageSize = 999

// applicationSelect is every property the inventory stores and nothing
// more: $select lowers Graph's cost per request, and leaving out
// keyCredentials.key keeps certificates' DER bodies off the wire.
var applicationSelect = []string{
	"id", "appId", "displayName", "signInAudience", "createdDateTime",
	"passwordCredentials", "keyCredentials",
}

// GraphDirectory reads a tenant's applications through Microsoft Graph.
type GraphDirectory struct {
	client    *graph.Client
	tenantID  string
	principal string
}

var _ Directory = (*GraphDirectory)(nil)

// NewGraphDirectory returns the Directory of the tenant c is signed in to.
// rotationSPObjectID is the object id of the rotation identity's service
// principal, whose ownedObjects are the manageable applications.
func NewGraphDirectory(c *graph.Client, tenantID, rotationSPObjectID string) Directory {
	return &GraphDirectory{client: c, tenantID: tenantID, principal: rotationSPObjectID}
}

// ListApplications implements Directory.
func (d *GraphDirectory) ListApplications(ctx context.Context, fn func([]domain.Application) error) error {
	p := d.client.ListApplications(graph.ListOptions{Select: applicationSelect, Top: PageSize})
	for p.More() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		apps := make([]domain.Application, 0, len(page))
		for i := range page {
			apps = append(apps, d.application(&page[i]))
		}
		if err := fn(apps); err != nil {
			return err
		}
	}
	return nil
}

// OwnedApplicationIDs implements Directory.
func (d *GraphDirectory) OwnedApplicationIDs(ctx context.Context) (map[string]bool, error) {
	if d.principal == "" {
		return nil, errors.New("the rotation identity's service principal object id is not known")
	}
	ids := map[string]bool{}
	p := d.client.ListOwnedObjects(d.principal)
	for p.More() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page {
			if o.ODataType == graph.TypeApplication {
				ids[o.ID] = true
			}
		}
	}
	return ids, nil
}

func (d *GraphDirectory) application(a *graph.Application) domain.Application {
	return domain.Application{
		TenantID:       d.tenantID,
		ObjectID:       a.ID,
		AppID:          a.AppID,
		DisplayName:    a.DisplayName,
		SignInAudience: a.SignInAudience,
		CreatedAt:      a.CreatedDateTime,
		Credentials:    Credentials(a),
	}
}

// Credentials converts an application's Graph credentials into rotor's:
// passwordCredentials are secrets, keyCredentials certificates (their
// customKeyIdentifier is the thumbprint).
func Credentials(a *graph.Application) []domain.Credential {
	out := make([]domain.Credential, 0, len(a.PasswordCredentials)+len(a.KeyCredentials))
	for _, p := range a.PasswordCredentials {
		out = append(out, domain.Credential{
			KeyID: p.KeyID, Kind: domain.KindSecret, DisplayName: p.DisplayName, Hint: p.Hint,
			Start: p.StartDateTime, End: p.EndDateTime,
		})
	}
	for _, k := range a.KeyCredentials {
		out = append(out, domain.Credential{
			KeyID: k.KeyID, Kind: domain.KindCertificate, DisplayName: k.DisplayName, Thumbprint: k.CustomKeyIdentifier,
			Start: k.StartDateTime, End: k.EndDateTime,
		})
	}
	return out
}
