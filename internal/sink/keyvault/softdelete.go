package keyvault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// Operations named in errors, beside "list" and "set".
const (
	opListDeleted = "list deleted"
	opRecover     = "recover"
)

// deletedSecret is what the vault's deleted-secret (or deleted-certificate)
// list says of the soft-deleted object of the sink's name: its latest
// version's properties and tags (Key Vault keeps them; never a value) and
// its dates.
type deletedSecret struct {
	found bool
	// name is the object's name, from its id or recovery id.
	name string
	// id is the secret's id as the list gives it (without a version).
	id      string
	enabled bool
	tags    map[string]string
	// deleted is when it was deleted, purge when Key Vault purges it.
	deleted, purge time.Time
}

// findDeleted looks for a soft-deleted secret of the sink's name in the
// vault's deleted-secret list. The list needs the list permission the sink
// has anyway; GetDeletedSecret would need get, which would let the sink's
// identity read every value in the vault. Names compare without case, as
// Key Vault's do.
func (s *Sink) findDeleted(ctx context.Context) (deletedSecret, error) {
	return findDeletedIn(ctx, s, s.client.NewListDeletedSecretPropertiesPager(nil),
		func(r azsecrets.ListDeletedSecretPropertiesResponse) []*azsecrets.DeletedSecretProperties {
			return r.Value
		},
		func(p *azsecrets.DeletedSecretProperties) deletedSecret {
			return deletedSecret{
				name: deletedName("secrets", (*string)(p.ID), p.RecoveryID), id: derefID(p.ID),
				enabled: p.Attributes == nil || derefBool(p.Attributes.Enabled, true), tags: strs(p.Tags),
				deleted: derefTime(p.DeletedDate), purge: derefTime(p.ScheduledPurgeDate),
			}
		})
}

// deletedName is the object name of a deleted-list item of collection
// ("secrets", "certificates"), from its id (…/secrets/{name}) or else its
// recovery id (…/deletedsecrets/{name}).
func deletedName(collection string, ids ...*string) string {
	for _, raw := range ids {
		if raw == nil {
			continue
		}
		u, err := url.Parse(*raw)
		if err != nil {
			continue
		}
		segs := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(segs) >= 2 && (segs[0] == collection || segs[0] == "deleted"+collection) && segs[1] != "" {
			return segs[1]
		}
	}
	return ""
}

// recoveredNote is the journal's note of a recovery of what was deleted
// at deleted (zero if unknown).
func (s *Sink) recoveredNote(deleted time.Time) string {
	note := "recovered rotor's soft-deleted " + s.object() + " first"
	if !deleted.IsZero() {
		note += fmt.Sprintf(" (deleted %s)", deleted.UTC().Format(time.RFC3339))
	}
	return note
}

// recoverable checks that rotor may recover d and then write to it: it
// carries rotor's managed-by tag, for this application (or for none), and
// its latest version was enabled. adopt does not widen this: adopting takes
// over a live secret someone left for rotor, while recovering would undo
// someone's deletion of a secret rotor never wrote.
func (s *Sink) recoverable(d deletedSecret) error {
	e := &DeletedError{Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), AppID: s.app.AppID, Purge: d.purge}
	switch {
	case d.tags[TagManagedBy] != ManagedByRotor:
		e.Adopt = s.adopt
		return e
	case d.tags[TagAppID] != "" && !strings.EqualFold(d.tags[TagAppID], s.app.AppID):
		e.OwnerAppID = d.tags[TagAppID]
		return e
	case !d.enabled:
		e.Disabled = true
		return e
	}
	return nil
}

// recoverOwn is Deliver's step for a secret that does not exist: if a
// soft-deleted secret holds the name and it is rotor's own for this
// application, it is recovered (every version comes back, as it was), and
// what its latest version now holds is returned with a note for the
// journal. No deleted secret returns what get says (absent); a deleted
// secret rotor may not recover is a *DeletedError and nothing is written.
func (s *Sink) recoverOwn(ctx context.Context) (current, string, error) {
	d, err := s.findDeleted(ctx)
	if err != nil || !d.found {
		return current{}, "", err
	}
	if err := s.recoverable(d); err != nil {
		return current{}, "", err
	}
	resp, err := s.client.RecoverDeletedSecret(ctx, s.name, nil)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			// Recovered or purged by someone since the list was read:
			// what the vault holds now decides.
			cur, err := s.get(ctx)
			return cur, "", err
		}
		return current{}, "", s.classify(opRecover, err, "")
	}
	cur := current{exists: true, id: derefID(resp.ID), enabled: resp.Attributes == nil || derefBool(resp.Attributes.Enabled, true), tags: strs(resp.Tags)}
	return cur, s.recoveredNote(d.deleted), nil
}
