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

// deletedSecret is what the vault's deleted-secret list says of the
// soft-deleted secret of the sink's name: its latest version's properties
// and tags (Key Vault keeps them; never a value) and its dates.
type deletedSecret struct {
	found bool
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
	pager := s.client.NewListDeletedSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return deletedSecret{}, s.classify(opListDeleted, err, "")
		}
		for _, p := range page.Value {
			if p == nil || !strings.EqualFold(deletedName(p), s.name) {
				continue
			}
			d := deletedSecret{found: true, enabled: true, tags: map[string]string{}}
			if p.ID != nil {
				d.id = string(*p.ID)
			}
			if p.Attributes != nil && p.Attributes.Enabled != nil {
				d.enabled = *p.Attributes.Enabled
			}
			for k, v := range p.Tags {
				if v != nil {
					d.tags[k] = *v
				}
			}
			if p.DeletedDate != nil {
				d.deleted = *p.DeletedDate
			}
			if p.ScheduledPurgeDate != nil {
				d.purge = *p.ScheduledPurgeDate
			}
			return d, nil
		}
	}
	return deletedSecret{}, nil
}

// deletedName is the secret name of a deleted-list item, from its id
// (…/secrets/{name}) or else its recovery id (…/deletedsecrets/{name}).
func deletedName(p *azsecrets.DeletedSecretProperties) string {
	for _, raw := range []*string{(*string)(p.ID), p.RecoveryID} {
		if raw == nil {
			continue
		}
		u, err := url.Parse(*raw)
		if err != nil {
			continue
		}
		segs := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(segs) >= 2 && (segs[0] == "secrets" || segs[0] == "deletedsecrets") && segs[1] != "" {
			return segs[1]
		}
	}
	return ""
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
	cur := current{exists: true, enabled: true, tags: map[string]string{}}
	if resp.ID != nil {
		cur.id = string(*resp.ID)
	}
	if resp.Attributes != nil && resp.Attributes.Enabled != nil {
		cur.enabled = *resp.Attributes.Enabled
	}
	for k, v := range resp.Tags {
		if v != nil {
			cur.tags[k] = *v
		}
	}
	note := "recovered rotor's soft-deleted secret first"
	if !d.deleted.IsZero() {
		note += fmt.Sprintf(" (deleted %s)", d.deleted.UTC().Format(time.RFC3339))
	}
	return cur, note, nil
}
