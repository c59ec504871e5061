package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ListApplications pages through the tenant's app registrations. For
// inventory pass Top 999 and a Select: it costs Graph fewer resource units
// and rotor fewer requests.
func (c *Client) ListApplications(opts ListOptions) *Pager[Application] {
	return newPager[Application](c, c.path("/applications")+opts.query(), opts.headers())
}

func selectQuery(sel []string) string {
	if len(sel) == 0 {
		return ""
	}
	return "?$select=" + queryEscape(strings.Join(sel, ","))
}

func requireID(what, id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("graph: %s is empty", what)
	}
	return nil
}

// GetApplication reads an application by its object id.
func (c *Client) GetApplication(ctx context.Context, objectID string, sel []string) (*Application, error) {
	if err := requireID("application object id", objectID); err != nil {
		return nil, err
	}
	var a Application
	err := c.doJSON(ctx, call{method: "GET", url: c.path("/applications/"+segment(objectID)) + selectQuery(sel), ok: []int{200}}, &a)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// GetApplicationByAppID reads an application by its client (app) id through
// Graph's alternate key /applications(appId='…').
func (c *Client) GetApplicationByAppID(ctx context.Context, appID string, sel []string) (*Application, error) {
	if err := requireID("application app id", appID); err != nil {
		return nil, err
	}
	u := c.path("/applications(appId=" + strings.ReplaceAll(segment(odataString(appID)), "%27", "'") + ")")
	var a Application
	if err := c.doJSON(ctx, call{method: "GET", url: u + selectQuery(sel), ok: []int{200}}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AddPasswordRequest describes a new client secret.
type AddPasswordRequest struct {
	// DisplayName should say who made it and why: rotor uses "rotor:<run id>"
	// so that recovery can always find what a run created.
	DisplayName string
	// StartDateTime is optional (Graph uses now).
	StartDateTime time.Time
	// EndDateTime is required: Graph's default is two years, which app
	// management policies refuse and audits flag.
	EndDateTime time.Time
}

// AddPassword creates a client secret on the application and returns it with
// its SecretText — the only time Graph reveals the value.
//
// addPassword is not idempotent: if the connection drops after Graph
// committed, azcore's retry makes a second secret. Callers find both by
// display name (rotor:<run id>) and retire the extra one.
func (c *Client) AddPassword(ctx context.Context, objectID string, req AddPasswordRequest) (*PasswordCredential, error) {
	if err := requireID("application object id", objectID); err != nil {
		return nil, err
	}
	if req.EndDateTime.IsZero() {
		return nil, errors.New("graph: addPassword needs an end date (Graph's two-year default breaks policies)")
	}
	if !req.StartDateTime.IsZero() && !req.EndDateTime.After(req.StartDateTime) {
		return nil, errors.New("graph: addPassword end date must be after its start date")
	}
	body := map[string]any{"passwordCredential": passwordCredentialJSON{
		DisplayName:   req.DisplayName,
		StartDateTime: timePtr(req.StartDateTime),
		EndDateTime:   timePtr(req.EndDateTime),
	}}
	var p PasswordCredential
	err := c.doJSON(ctx, call{method: "POST", url: c.path("/applications/" + segment(objectID) + "/addPassword"), body: body, ok: []int{200, 201}}, &p)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// RemovePassword deletes a client secret. A 404 means it (or its
// application) is already gone, which is what the caller wanted.
func (c *Client) RemovePassword(ctx context.Context, objectID, keyID string) error {
	if err := requireID("application object id", objectID); err != nil {
		return err
	}
	if err := requireID("key id", keyID); err != nil {
		return err
	}
	err := c.doJSON(ctx, call{method: "POST", url: c.path("/applications/" + segment(objectID) + "/removePassword"),
		body: map[string]string{"keyId": keyID}, ok: []int{200, 204}}, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// AddKey uploads a certificate with addKey. proof is a JWT signed by one of
// the application's current valid certificates (see ProofOfPossession); an
// application without one must use UpdateKeyCredentials instead.
func (c *Client) AddKey(ctx context.Context, objectID string, key KeyCredential, proof string) (*KeyCredential, error) {
	if err := requireID("application object id", objectID); err != nil {
		return nil, err
	}
	if proof == "" {
		return nil, errors.New("graph: addKey needs a proof-of-possession token")
	}
	if len(key.Key) == 0 {
		return nil, errors.New("graph: addKey needs the certificate (key)")
	}
	if key.Type == "" {
		key.Type = "AsymmetricX509Cert"
	}
	if key.Usage == "" {
		key.Usage = "Verify"
	}
	body := map[string]any{"keyCredential": key, "passwordCredential": nil, "proof": proof}
	var out KeyCredential
	err := c.doJSON(ctx, call{method: "POST", url: c.path("/applications/" + segment(objectID) + "/addKey"), body: body, ok: []int{200, 201}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveKey deletes a certificate with removeKey (proof as for AddKey). A 404
// means it is already gone.
func (c *Client) RemoveKey(ctx context.Context, objectID, keyID, proof string) error {
	if err := requireID("application object id", objectID); err != nil {
		return err
	}
	if err := requireID("key id", keyID); err != nil {
		return err
	}
	if proof == "" {
		return errors.New("graph: removeKey needs a proof-of-possession token")
	}
	err := c.doJSON(ctx, call{method: "POST", url: c.path("/applications/" + segment(objectID) + "/removeKey"),
		body: map[string]string{"keyId": keyID, "proof": proof}, ok: []int{200, 204}}, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// UpdateKeyCredentials replaces the application's whole keyCredentials
// collection (PATCH). Read the current one first (with $select=keyCredentials)
// and send it back with the change, or the others are deleted.
func (c *Client) UpdateKeyCredentials(ctx context.Context, objectID string, keys []KeyCredential) error {
	if err := requireID("application object id", objectID); err != nil {
		return err
	}
	if keys == nil {
		keys = []KeyCredential{}
	}
	return c.doJSON(ctx, call{method: "PATCH", url: c.path("/applications/" + segment(objectID)),
		body: map[string]any{"keyCredentials": keys}, ok: []int{200, 204}}, nil)
}

// ListOwners returns every owner of the application (all pages).
func (c *Client) ListOwners(ctx context.Context, objectID string) ([]DirectoryObject, error) {
	if err := requireID("application object id", objectID); err != nil {
		return nil, err
	}
	return newPager[DirectoryObject](c, c.path("/applications/"+segment(objectID)+"/owners"), nil).Collect(ctx)
}

// ListOwnedObjects pages through what a service principal owns. An
// Application.ReadWrite.OwnedBy identity uses it on its own service
// principal to find the applications it may manage.
func (c *Client) ListOwnedObjects(spObjectID string) *Pager[OwnedObject] {
	p := newPager[OwnedObject](c, c.path("/servicePrincipals/"+segment(spObjectID)+"/ownedObjects"), nil)
	if err := requireID("service principal object id", spObjectID); err != nil {
		p.next, p.err = "", err
	}
	return p
}

// ListOwnedDirectoryObjects is ListOwnedObjects with query options, decoded
// as plain directory objects (type and id, no application properties):
// the inventory reads what rotor owns at every sync with $select=id in
// pages of 999 ($top), one small request per 999 objects.
func (c *Client) ListOwnedDirectoryObjects(spObjectID string, opts ListOptions) *Pager[DirectoryObject] {
	p := newPager[DirectoryObject](c, c.path("/servicePrincipals/"+segment(spObjectID)+"/ownedObjects")+opts.query(), opts.headers())
	if err := requireID("service principal object id", spObjectID); err != nil {
		p.next, p.err = "", err
	}
	return p
}

// GetServicePrincipalByAppID finds the tenant's service principal of appID;
// a missing one is an *Error with status 404 (IsNotFound).
func (c *Client) GetServicePrincipalByAppID(ctx context.Context, appID string) (*ServicePrincipal, error) {
	if err := requireID("app id", appID); err != nil {
		return nil, err
	}
	opts := ListOptions{Filter: "appId eq " + odataString(appID), Select: []string{"id", "appId", "displayName"}}
	var pg page[ServicePrincipal]
	if err := c.doJSON(ctx, call{method: "GET", url: c.path("/servicePrincipals") + opts.query(), ok: []int{200}}, &pg); err != nil {
		return nil, err
	}
	if len(pg.Value) == 0 {
		return nil, &Error{StatusCode: 404, Code: CodeNotFound, Message: fmt.Sprintf("no service principal for app %s", appID),
			Method: "GET", Path: c.baseURL.Path + "/servicePrincipals"}
	}
	return &pg.Value[0], nil
}

// CreateServicePrincipal creates the service principal of appID in this
// tenant (how a multi-tenant app gets its stub, like az ad sp create --id).
func (c *Client) CreateServicePrincipal(ctx context.Context, appID string) (*ServicePrincipal, error) {
	if err := requireID("app id", appID); err != nil {
		return nil, err
	}
	var sp ServicePrincipal
	if err := c.doJSON(ctx, call{method: "POST", url: c.path("/servicePrincipals"), body: map[string]string{"appId": appID}, ok: []int{200, 201}}, &sp); err != nil {
		return nil, err
	}
	return &sp, nil
}

// ListFederatedCredentials returns the application's federated identity
// credentials.
func (c *Client) ListFederatedCredentials(ctx context.Context, objectID string) ([]FederatedIdentityCredential, error) {
	if err := requireID("application object id", objectID); err != nil {
		return nil, err
	}
	return newPager[FederatedIdentityCredential](c, c.path("/applications/"+segment(objectID)+"/federatedIdentityCredentials"), nil).Collect(ctx)
}

// AddFederatedCredential creates a federated identity credential. Audiences
// default to api://AzureADTokenExchange.
func (c *Client) AddFederatedCredential(ctx context.Context, objectID string, fic FederatedIdentityCredential) (*FederatedIdentityCredential, error) {
	if err := requireID("application object id", objectID); err != nil {
		return nil, err
	}
	switch {
	case fic.Name == "" || len(fic.Name) > 120:
		return nil, errors.New("graph: federated credential name must be 1–120 characters")
	case fic.Issuer == "" || fic.Subject == "":
		return nil, errors.New("graph: federated credential needs an issuer and a subject")
	}
	if len(fic.Audiences) == 0 {
		fic.Audiences = []string{"api://AzureADTokenExchange"}
	}
	fic.ID = ""
	var out FederatedIdentityCredential
	err := c.doJSON(ctx, call{method: "POST", url: c.path("/applications/" + segment(objectID) + "/federatedIdentityCredentials"), body: fic, ok: []int{200, 201}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}
