package keyvault

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// fakeVault is an in-memory SecretsAPI for the sink's own logic (ownership,
// skip-unchanged, error classification). The behaviour against Key Vault's
// real protocol is proven against the simulator in sim_test.go.
//
// Its version list is paged (pageSize items a page, linked by nextLink as
// Key Vault does) and newest first: Key Vault promises no order, and the
// simulator lists oldest first, so a sink that took the list's first or
// last item for the latest version fails against one of the two. List items
// are azsecrets.SecretProperties, which have no value field.
type fakeVault struct {
	url string
	// t, when set, fails the test if anything calls GetSecret.
	t testing.TB

	mu       sync.Mutex
	versions map[string][]fakeVersion
	// now is the time the next write is stamped with; each write advances
	// it by a second, Key Vault's resolution.
	now      time.Time
	pageSize int
	sets     int
	// pages counts version-list pages served; getCalls counts GetSecret.
	pages, getCalls int
	// listErr, when set, is returned for page listErrPage (0: the first)
	// instead of serving it; setErr instead of doing SetSecret.
	listErr     error
	listErrPage int
	setErr      error

	// deleted are soft-deleted secrets (their versions, newest last) by
	// name; recoverFn, when set, runs (with mu held) before a recovery and
	// its error is returned instead; recovers counts recoveries.
	deleted   map[string][]fakeVersion
	deletedAt map[string]time.Time
	recoverFn func(name string) error
	recovers  int
}

type fakeVersion struct {
	id               string
	value            string
	contentType      string
	enabled          bool
	expires          *time.Time
	created, updated time.Time
	tags             map[string]string
}

var _ SecretsAPI = (*fakeVault)(nil)

func newFakeVault(url string) *fakeVault {
	return &fakeVault{url: url, versions: map[string][]fakeVersion{},
		deleted: map[string][]fakeVersion{}, deletedAt: map[string]time.Time{},
		now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), pageSize: 2}
}

// GetSecret is not part of SecretsAPI; it is here so that a sink that
// type-asserted its way to reading a value would be caught.
func (f *fakeVault) GetSecret(context.Context, string, string, *azsecrets.GetSecretOptions) (azsecrets.GetSecretResponse, error) {
	f.mu.Lock()
	f.getCalls++
	f.mu.Unlock()
	if f.t != nil {
		f.t.Errorf("GetSecret called: the sink must never read a secret value")
	}
	return azsecrets.GetSecretResponse{}, responseError(http.StatusForbidden, "Forbidden", "The sink must not get secrets.")
}

func (f *fakeVault) NewListSecretPropertiesVersionsPager(name string, _ *azsecrets.ListSecretPropertiesVersionsOptions) *runtime.Pager[azsecrets.ListSecretPropertiesVersionsResponse] {
	return runtime.NewPager(runtime.PagingHandler[azsecrets.ListSecretPropertiesVersionsResponse]{
		More: func(page azsecrets.ListSecretPropertiesVersionsResponse) bool {
			return page.NextLink != nil && len(*page.NextLink) > 0
		},
		Fetcher: func(ctx context.Context, page *azsecrets.ListSecretPropertiesVersionsResponse) (azsecrets.ListSecretPropertiesVersionsResponse, error) {
			if err := ctx.Err(); err != nil {
				return azsecrets.ListSecretPropertiesVersionsResponse{}, err
			}
			start := 0
			if page != nil {
				u, err := url.Parse(*page.NextLink)
				if err != nil {
					return azsecrets.ListSecretPropertiesVersionsResponse{}, err
				}
				if start, err = strconv.Atoi(u.Query().Get("$skiptoken")); err != nil {
					return azsecrets.ListSecretPropertiesVersionsResponse{}, err
				}
			}
			return f.listPage(name, start)
		},
	})
}

// listPage serves the versions of name from index start, newest first.
func (f *fakeVault) listPage(name string, start int) (azsecrets.ListSecretPropertiesVersionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil && f.pages == f.listErrPage {
		return azsecrets.ListSecretPropertiesVersionsResponse{}, f.listErr
	}
	f.pages++
	vs := f.versions[name]
	if len(vs) == 0 {
		return azsecrets.ListSecretPropertiesVersionsResponse{}, responseError(http.StatusNotFound, "SecretNotFound",
			fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name))
	}
	end := min(start+f.pageSize, len(vs))
	var out azsecrets.ListSecretPropertiesVersionsResponse
	for i := start; i < end; i++ {
		v := vs[len(vs)-1-i]
		id := azsecrets.ID(v.id)
		tags := map[string]*string{}
		for k, val := range v.tags {
			tags[k] = &val
		}
		out.Value = append(out.Value, &azsecrets.SecretProperties{
			ID: &id, ContentType: &v.contentType, Tags: tags,
			Attributes: &azsecrets.SecretAttributes{Enabled: &v.enabled, Expires: v.expires, Created: &v.created, Updated: &v.updated},
		})
	}
	if end < len(vs) {
		next := fmt.Sprintf("%ssecrets/%s/versions?api-version=7.6&maxresults=%d&$skiptoken=%d", f.url, name, f.pageSize, end)
		out.NextLink = &next
	}
	return out, nil
}

func (f *fakeVault) SetSecret(_ context.Context, name string, p azsecrets.SetSecretParameters, _ *azsecrets.SetSecretOptions) (azsecrets.SetSecretResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.setErr != nil {
		return azsecrets.SetSecretResponse{}, f.setErr
	}
	if _, gone := f.deleted[name]; gone {
		return azsecrets.SetSecretResponse{}, responseErrorBody(http.StatusConflict, "Conflict", fmt.Sprintf(
			`{"error":{"code":"Conflict","message":"Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.","innererror":{"code":"ObjectIsDeletedButRecoverable"}}}`, name))
	}
	f.sets++
	v := f.newVersion(name, *p.Value, nil)
	if p.ContentType != nil {
		v.contentType = *p.ContentType
	}
	if a := p.SecretAttributes; a != nil {
		if a.Enabled != nil {
			v.enabled = *a.Enabled
		}
		v.expires = a.Expires
	}
	for k, val := range p.Tags {
		v.tags[k] = *val
	}
	f.versions[name] = append(f.versions[name], v)
	id := azsecrets.ID(v.id)
	return azsecrets.SetSecretResponse{Secret: azsecrets.Secret{ID: &id}}, nil
}

// NewListDeletedSecretPropertiesPager lists the deleted secrets in name
// order, one a page (so a sink that stopped at the first page would miss
// most of them).
func (f *fakeVault) NewListDeletedSecretPropertiesPager(*azsecrets.ListDeletedSecretPropertiesOptions) *runtime.Pager[azsecrets.ListDeletedSecretPropertiesResponse] {
	return runtime.NewPager(runtime.PagingHandler[azsecrets.ListDeletedSecretPropertiesResponse]{
		More: func(page azsecrets.ListDeletedSecretPropertiesResponse) bool {
			return page.NextLink != nil && len(*page.NextLink) > 0
		},
		Fetcher: func(ctx context.Context, page *azsecrets.ListDeletedSecretPropertiesResponse) (azsecrets.ListDeletedSecretPropertiesResponse, error) {
			if err := ctx.Err(); err != nil {
				return azsecrets.ListDeletedSecretPropertiesResponse{}, err
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			names := slices.Sorted(maps.Keys(f.deleted))
			start := 0
			if page != nil {
				u, err := url.Parse(*page.NextLink)
				if err != nil {
					return azsecrets.ListDeletedSecretPropertiesResponse{}, err
				}
				if start, err = strconv.Atoi(u.Query().Get("$skiptoken")); err != nil {
					return azsecrets.ListDeletedSecretPropertiesResponse{}, err
				}
			}
			var out azsecrets.ListDeletedSecretPropertiesResponse
			if start < len(names) {
				name := names[start]
				vs := f.deleted[name]
				v := vs[len(vs)-1]
				tags := map[string]*string{}
				for k, val := range v.tags {
					tags[k] = &val
				}
				id := azsecrets.ID(f.url + "secrets/" + name)
				del := f.deletedAt[name]
				purge := del.Add(90 * 24 * time.Hour)
				out.Value = append(out.Value, &azsecrets.DeletedSecretProperties{
					ID: &id, RecoveryID: to.Ptr(f.url + "deletedsecrets/" + name), ContentType: &v.contentType, Tags: tags,
					Attributes:  &azsecrets.SecretAttributes{Enabled: &v.enabled, Created: &v.created, Updated: &v.updated},
					DeletedDate: &del, ScheduledPurgeDate: &purge,
				})
			}
			if start+1 < len(names) {
				next := fmt.Sprintf("%sdeletedsecrets?api-version=7.6&maxresults=1&$skiptoken=%d", f.url, start+1)
				out.NextLink = &next
			}
			return out, nil
		},
	})
}

// RecoverDeletedSecret moves a deleted secret back, every version.
func (f *fakeVault) RecoverDeletedSecret(_ context.Context, name string, _ *azsecrets.RecoverDeletedSecretOptions) (azsecrets.RecoverDeletedSecretResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recoverFn != nil {
		if err := f.recoverFn(name); err != nil {
			return azsecrets.RecoverDeletedSecretResponse{}, err
		}
	}
	vs, ok := f.deleted[name]
	if !ok {
		return azsecrets.RecoverDeletedSecretResponse{}, responseError(http.StatusNotFound, "SecretNotFound", "Deleted Secret not found: "+name)
	}
	f.recovers++
	delete(f.deleted, name)
	delete(f.deletedAt, name)
	f.versions[name] = vs
	v := vs[len(vs)-1]
	id := azsecrets.ID(v.id)
	tags := map[string]*string{}
	for k, val := range v.tags {
		tags[k] = &val
	}
	return azsecrets.RecoverDeletedSecretResponse{Secret: azsecrets.Secret{ID: &id, Tags: tags,
		Attributes: &azsecrets.SecretAttributes{Enabled: &v.enabled, Created: &v.created, Updated: &v.updated}}}, nil
}

// softDelete deletes name as someone with the delete permission would.
func (f *fakeVault) softDelete(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted[name] = f.versions[name]
	f.deletedAt[name] = f.now
	f.now = f.now.Add(time.Second)
	delete(f.versions, name)
}

// newVersion stamps a new version of name; f.mu is held.
func (f *fakeVault) newVersion(name, value string, tags map[string]string) fakeVersion {
	now := f.now
	f.now = f.now.Add(time.Second)
	if tags == nil {
		tags = map[string]string{}
	}
	return fakeVersion{
		id:    fmt.Sprintf("%ssecrets/%s/v%d", f.url, name, len(f.versions[name])+1),
		value: value, enabled: true, created: now, updated: now, tags: maps.Clone(tags),
	}
}

// put stores a version as someone else would have.
func (f *fakeVault) put(name, value string, tags map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[name] = append(f.versions[name], f.newVersion(name, value, tags))
}

// update changes version i (0: the oldest) of name as a PATCH would, and
// stamps its updated time.
func (f *fakeVault) update(name string, i int, fn func(*fakeVersion)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := &f.versions[name][i]
	fn(v)
	v.updated = f.now
	f.now = f.now.Add(time.Second)
}

func (f *fakeVault) latest(name string) (fakeVersion, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.versions[name]
	if len(vs) == 0 {
		return fakeVersion{}, 0
	}
	return vs[len(vs)-1], len(vs)
}

// responseError builds the *azcore.ResponseError azsecrets returns, with Key
// Vault's error body.
func responseError(status int, code, message string) error {
	return responseErrorBody(status, code, fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, message))
}

func responseErrorBody(status int, code, body string) error {
	req, _ := http.NewRequest(http.MethodGet, "https://kv.example/secrets/x", nil)
	return &azcore.ResponseError{StatusCode: status, ErrorCode: code, RawResponse: &http.Response{
		StatusCode: status, Status: http.StatusText(status), Request: req,
		Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{},
	}}
}
