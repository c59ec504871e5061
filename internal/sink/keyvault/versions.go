package keyvault

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// This file is what secrets and certificates share in how the sink reads a
// target: the version list (properties only, never a value), which version
// is the latest, and the same for the deleted list. The SDK gives each
// object type its own property structs; each is turned into the one shape
// below (secretVersion, certificateVersion in certificate.go) so the rules
// are written once.

// version is one version's properties as a version list gives them.
type version struct {
	id               string
	created, updated time.Time
	enabled          bool
	tags             map[string]string
	// thumbprint is the certificate's hex SHA-1, upper case (certificates
	// only).
	thumbprint string
}

// scan hands every non-nil item of every page of pager to each, in order,
// until each returns false or the pages run out. It reads a page only when
// each still wants more, so a lookup stops at the first page that answers
// it.
func scan[R, P any](ctx context.Context, pager *runtime.Pager[R], items func(R) []*P, each func(*P) bool) error {
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, p := range items(page) {
			if p != nil && !each(p) {
				return nil
			}
		}
	}
	return nil
}

// latestOf reads a version list into current: the latest version's
// properties and every version's rotor-key-id. A missing object (404, or
// no versions) is not an error.
func latestOf[R, P any](ctx context.Context, s *Sink, pager *runtime.Pager[R], items func(R) []*P, conv func(*P) version) (current, error) {
	var latest *version
	ever := map[string]bool{}
	err := scan(ctx, pager, items, func(p *P) bool {
		v := conv(p)
		if k := v.tags[TagKeyID]; k != "" {
			ever[strings.ToLower(k)] = true
		}
		if latest == nil || newer(v, *latest) {
			latest = &v
		}
		return true
	})
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return current{}, nil
		}
		return current{}, s.classify("list", err, "")
	}
	if latest == nil {
		return current{}, nil
	}
	return current{exists: true, id: latest.id, enabled: latest.enabled, tags: latest.tags, everKeyIDs: ever, thumbprint: latest.thumbprint}, nil
}

// newer reports whether version a is newer than b: created later, then
// updated later, then the greater id. Key Vault lists versions in no
// promised order, so this defines the "latest version". Its times have a
// resolution of one second: versions created in the same second are ordered
// by when they were last updated and then by id, which need not be the
// order they were written in. A missing time is the zero time, the oldest.
func newer(a, b version) bool {
	if c := a.created.Compare(b.created); c != 0 {
		return c > 0
	}
	if c := a.updated.Compare(b.updated); c != 0 {
		return c > 0
	}
	return a.id > b.id
}

// findDeletedIn looks for the soft-deleted object of the sink's name in a
// deleted list; names compare without case, as Key Vault's do. It stops
// at the first match.
func findDeletedIn[R, P any](ctx context.Context, s *Sink, pager *runtime.Pager[R], items func(R) []*P, conv func(*P) deletedSecret) (deletedSecret, error) {
	var found deletedSecret
	err := scan(ctx, pager, items, func(p *P) bool {
		d := conv(p)
		if !strings.EqualFold(d.name, s.name) {
			return true
		}
		found, found.found = d, true
		return false
	})
	if err != nil {
		return deletedSecret{}, s.classify(opListDeleted, err, "")
	}
	return found, nil
}

// strs is tags without nil values.
func strs(tags map[string]*string) map[string]string {
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// derefTime is *t, or the zero time.
func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// derefBool is *b, or def.
func derefBool(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// derefID is *id as a string, or "".
func derefID[S ~string](id *S) string {
	if id == nil {
		return ""
	}
	return string(*id)
}
