package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

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

var (
	_ Directory        = (*GraphDirectory)(nil)
	_ ChangeTracker    = (*GraphDirectory)(nil)
	_ OwnershipChecker = (*GraphDirectory)(nil)
)

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

// OwnedApplicationIDs implements Directory. It asks only for ids, 999 to a
// page: a rotation identity owning 5,000 applications costs five small
// requests, which every sync can afford (ownership is how rotor knows what
// it may change, and change tracking does not report it).
func (d *GraphDirectory) OwnedApplicationIDs(ctx context.Context) (map[string]bool, error) {
	if d.principal == "" {
		return nil, errors.New("the rotation identity's service principal object id is not known")
	}
	ids := map[string]bool{}
	p := d.client.ListOwnedDirectoryObjects(d.principal, graph.ListOptions{Select: []string{"id"}, Top: PageSize})
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

// TrackingScope implements ChangeTracker: a delta link is the tenant's,
// read by the identity whose service principal this is ("" for a read
// connection, whose Application.Read.All sees every application).
func (d *GraphDirectory) TrackingScope() string { return d.tenantID + "/" + d.principal }

// LatestLink implements ChangeTracker with $deltatoken=latest, selecting
// what the inventory stores (Graph encodes the $select into the link).
func (d *GraphDirectory) LatestLink(ctx context.Context) (string, error) {
	p := d.client.ApplicationsDelta(graph.DeltaOptions{Select: applicationSelect, Latest: true})
	for p.More() {
		if _, err := p.NextPage(ctx); err != nil {
			return "", err
		}
	}
	return p.DeltaLink(), nil
}

// Changes implements ChangeTracker. Graph's refusal of the link
// (syncStateNotFound, 410, an expired $skiptoken) and a stored link that
// is not this endpoint's are ErrLinkExpired.
func (d *GraphDirectory) Changes(ctx context.Context, link string, fn func([]Change) error) (string, error) {
	p := d.client.ApplicationsDeltaFrom(link)
	first := true
	for p.More() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if graph.IsDeltaExpired(err) || (first && errors.Is(err, graph.ErrNotDeltaLink)) {
				return "", fmt.Errorf("%w: %w", ErrLinkExpired, err)
			}
			return "", err
		}
		first = false
		changes := make([]Change, 0, len(page))
		for i := range page {
			changes = append(changes, d.change(&page[i]))
		}
		if err := fn(changes); err != nil {
			return "", err
		}
	}
	return p.DeltaLink(), nil
}

// change converts one delta entry, noting the properties it left out.
func (d *GraphDirectory) change(c *graph.ApplicationChange) Change {
	ch := Change{App: domain.Application{TenantID: d.tenantID, ObjectID: c.ID}}
	if c.Removed != "" {
		ch.Removed = true
		return ch
	}
	str := func(v *string, dst *string, f Fields) {
		if v == nil {
			ch.Missing |= f
			return
		}
		*dst = *v
	}
	str(c.AppID, &ch.App.AppID, FieldAppID)
	str(c.DisplayName, &ch.App.DisplayName, FieldDisplayName)
	str(c.SignInAudience, &ch.App.SignInAudience, FieldSignInAudience)
	if c.CreatedDateTime == nil {
		ch.Missing |= FieldCreatedAt
	} else {
		ch.App.CreatedAt = *c.CreatedDateTime
	}
	var a graph.Application
	if c.PasswordCredentials == nil {
		ch.Missing |= FieldSecrets
	} else {
		a.PasswordCredentials = *c.PasswordCredentials
	}
	if c.KeyCredentials == nil {
		ch.Missing |= FieldCertificates
	} else {
		a.KeyCredentials = *c.KeyCredentials
	}
	ch.App.Credentials = Credentials(&a)
	return ch
}

// GetApplications implements ChangeTracker with $batch, 20 GETs to a
// request. An application Graph does not have (404) or does not show
// this identity (403: Application.ReadWrite.OwnedBy alone reads only what
// it owns) is gone.
func (d *GraphDirectory) GetApplications(ctx context.Context, ids []string) ([]domain.Application, []string, error) {
	var found []domain.Application
	var gone []string
	sel := "?$select=" + strings.Join(applicationSelect, ",")
	err := d.eachApplication(ctx, ids, func(id string) string { return "/applications/" + url.PathEscape(id) + sel }, "application",
		func(_ string, body []byte) error {
			var a graph.Application
			if err := json.Unmarshal(body, &a); err != nil {
				return err
			}
			found = append(found, d.application(&a))
			return nil
		},
		func(id string) { gone = append(gone, id) })
	if err != nil {
		return nil, nil, err
	}
	return found, gone, nil
}

// OwnsApplications implements OwnershipChecker: each application's
// owners (ids only, up to 999), twenty applications to a $batch. One
// Graph does not have (404) or does not show this identity (403) is not
// owned.
func (d *GraphDirectory) OwnsApplications(ctx context.Context, ids []string) (map[string]bool, error) {
	if d.principal == "" {
		return nil, errors.New("the rotation identity's service principal object id is not known")
	}
	owned := make(map[string]bool, len(ids))
	err := d.eachApplication(ctx, ids, func(id string) string { return "/applications/" + url.PathEscape(id) + "/owners?$select=id&$top=999" }, "owners of application",
		func(id string, body []byte) error {
			var page struct {
				Value []graph.DirectoryObject `json:"value"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				return err
			}
			for _, o := range page.Value {
				if o.ID == d.principal {
					owned[id] = true
				}
			}
			return nil
		}, nil)
	if err != nil {
		return nil, err
	}
	return owned, nil
}

// eachApplication GETs path(id) for every id, twenty to a $batch, and
// hands each answer's body to found, or the id to gone (which may be nil)
// when Graph does not have the application (404) or does not show it to
// this identity (403). A failed batch is returned as it is; any other
// failed GET, or found's error, stops the reading with an error naming
// what ("application", "owners of application") was read of which id.
func (d *GraphDirectory) eachApplication(ctx context.Context, ids []string, path func(id string) string, what string,
	found func(id string, body []byte) error, gone func(id string)) error {
	for chunk := range slices.Chunk(ids, graph.MaxBatchRequests) {
		reqs := make([]graph.BatchRequest, len(chunk))
		for i, id := range chunk {
			reqs[i] = graph.BatchRequest{ID: strconv.Itoa(i), Method: "GET", URL: path(id)}
		}
		resps, err := d.client.Batch(ctx, reqs)
		if err != nil {
			return err
		}
		for i, r := range resps {
			err := r.Err()
			switch {
			case err == nil:
				if err := found(chunk[i], r.Body); err != nil {
					return fmt.Errorf("%s %s: %w", what, chunk[i], err)
				}
			case graph.IsNotFound(err) || graph.IsForbidden(err):
				if gone != nil {
					gone(chunk[i])
				}
			default:
				return fmt.Errorf("%s %s: %w", what, chunk[i], err)
			}
		}
	}
	return nil
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
