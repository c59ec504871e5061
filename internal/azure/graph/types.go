package graph

import (
	"encoding/json"
	"time"

	"github.com/rotor-dev/rotor/internal/secret"
)

// Application is an app registration (Graph's application resource), with
// the properties rotor reads.
type Application struct {
	// ID is the application object id (not the client id).
	ID                  string               `json:"id"`
	AppID               string               `json:"appId"`
	DisplayName         string               `json:"displayName"`
	SignInAudience      string               `json:"signInAudience,omitempty"`
	CreatedDateTime     time.Time            `json:"createdDateTime"`
	PasswordCredentials []PasswordCredential `json:"passwordCredentials,omitempty"`
	KeyCredentials      []KeyCredential      `json:"keyCredentials,omitempty"`
	Tags                []string             `json:"tags,omitempty"`
}

// PasswordCredential is a client secret on an application. SecretText is set
// only in AddPassword's result; Graph never returns it again.
type PasswordCredential struct {
	KeyID         string
	DisplayName   string
	Hint          string
	StartDateTime time.Time
	EndDateTime   time.Time
	// SecretText is the new secret, only from AddPassword. It is read from
	// Graph's "secretText" and never written back by MarshalJSON.
	SecretText secret.Value
}

type passwordCredentialJSON struct {
	KeyID         string     `json:"keyId,omitempty"`
	DisplayName   string     `json:"displayName,omitempty"`
	Hint          string     `json:"hint,omitempty"`
	StartDateTime *time.Time `json:"startDateTime,omitempty"`
	EndDateTime   *time.Time `json:"endDateTime,omitempty"`
}

// UnmarshalJSON reads Graph's passwordCredential, including secretText.
func (p *PasswordCredential) UnmarshalJSON(b []byte) error {
	var v struct {
		passwordCredentialJSON
		SecretText *string `json:"secretText"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = PasswordCredential{
		KeyID:       v.KeyID,
		DisplayName: v.DisplayName,
		Hint:        v.Hint,
	}
	if v.StartDateTime != nil {
		p.StartDateTime = *v.StartDateTime
	}
	if v.EndDateTime != nil {
		p.EndDateTime = *v.EndDateTime
	}
	if v.SecretText != nil {
		p.SecretText = secret.New(*v.SecretText)
	}
	return nil
}

// MarshalJSON writes everything except SecretText, so that caching or
// logging an application as JSON can never persist a secret.
func (p PasswordCredential) MarshalJSON() ([]byte, error) {
	return json.Marshal(passwordCredentialJSON{
		KeyID:         p.KeyID,
		DisplayName:   p.DisplayName,
		Hint:          p.Hint,
		StartDateTime: timePtr(p.StartDateTime),
		EndDateTime:   timePtr(p.EndDateTime),
	})
}

// KeyCredential is a certificate on an application.
type KeyCredential struct {
	KeyID       string
	DisplayName string
	// Type is "AsymmetricX509Cert" for certificates.
	Type string
	// Usage is "Verify" for client authentication certificates.
	Usage string
	// CustomKeyIdentifier is Graph's base64 value (the SHA-1 thumbprint for
	// certificates uploaded by the portal).
	CustomKeyIdentifier string
	// Key is the DER certificate; Graph returns it only when selected.
	Key           []byte
	StartDateTime time.Time
	EndDateTime   time.Time
}

type keyCredentialJSON struct {
	KeyID               string     `json:"keyId,omitempty"`
	DisplayName         string     `json:"displayName,omitempty"`
	Type                string     `json:"type,omitempty"`
	Usage               string     `json:"usage,omitempty"`
	CustomKeyIdentifier string     `json:"customKeyIdentifier,omitempty"`
	Key                 []byte     `json:"key,omitempty"`
	StartDateTime       *time.Time `json:"startDateTime,omitempty"`
	EndDateTime         *time.Time `json:"endDateTime,omitempty"`
}

// UnmarshalJSON reads Graph's keyCredential (nulls become zero values).
func (k *KeyCredential) UnmarshalJSON(b []byte) error {
	var v keyCredentialJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*k = KeyCredential{
		KeyID: v.KeyID, DisplayName: v.DisplayName, Type: v.Type, Usage: v.Usage,
		CustomKeyIdentifier: v.CustomKeyIdentifier, Key: v.Key,
	}
	if v.StartDateTime != nil {
		k.StartDateTime = *v.StartDateTime
	}
	if v.EndDateTime != nil {
		k.EndDateTime = *v.EndDateTime
	}
	return nil
}

// MarshalJSON writes the keyCredential as Graph expects it in addKey and
// PATCH, omitting empty fields (so unset dates take Graph's defaults).
func (k KeyCredential) MarshalJSON() ([]byte, error) {
	return json.Marshal(keyCredentialJSON{
		KeyID: k.KeyID, DisplayName: k.DisplayName, Type: k.Type, Usage: k.Usage,
		CustomKeyIdentifier: k.CustomKeyIdentifier, Key: k.Key,
		StartDateTime: timePtr(k.StartDateTime), EndDateTime: timePtr(k.EndDateTime),
	})
}

// DirectoryObject is any directory object (owners, owned objects), told
// apart by ODataType, e.g. "#microsoft.graph.servicePrincipal".
type DirectoryObject struct {
	ODataType   string `json:"@odata.type"`
	ID          string `json:"id"`
	AppID       string `json:"appId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// OData types of directory objects rotor distinguishes.
const (
	TypeApplication      = "#microsoft.graph.application"
	TypeServicePrincipal = "#microsoft.graph.servicePrincipal"
	TypeUser             = "#microsoft.graph.user"
)

// OwnedObject is one entry of a service principal's ownedObjects: a
// DirectoryObject, plus the full Application when it is one (which is what
// an Application.ReadWrite.OwnedBy identity lists to find what it manages).
type OwnedObject struct {
	DirectoryObject
	// Application is non-nil when ODataType is TypeApplication.
	Application *Application
}

// UnmarshalJSON decodes the directory object and, for applications, the
// application's own properties.
func (o *OwnedObject) UnmarshalJSON(b []byte) error {
	var d DirectoryObject
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*o = OwnedObject{DirectoryObject: d}
	if d.ODataType == TypeApplication {
		var a Application
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		o.Application = &a
	}
	return nil
}

// ServicePrincipal is an application's identity in a tenant.
type ServicePrincipal struct {
	ID          string `json:"id"`
	AppID       string `json:"appId"`
	DisplayName string `json:"displayName,omitempty"`
}

// FederatedIdentityCredential lets an external identity provider's token
// (GitHub Actions, Kubernetes, another tenant) stand in for a secret.
type FederatedIdentityCredential struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Description string   `json:"description,omitempty"`
	Audiences   []string `json:"audiences"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
