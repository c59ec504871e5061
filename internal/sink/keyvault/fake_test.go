package keyvault

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// fakeVault is an in-memory SecretsAPI for the sink's own logic (ownership,
// skip-unchanged, error classification). The behaviour against Key Vault's
// real protocol is proven against the simulator in sim_test.go.
type fakeVault struct {
	url string

	mu       sync.Mutex
	versions map[string][]fakeVersion
	sets     int
	// getErr and setErr, when set, are returned instead of doing the call.
	getErr, setErr error
}

type fakeVersion struct {
	id          string
	value       string
	contentType string
	enabled     bool
	expires     *time.Time
	tags        map[string]string
}

var _ SecretsAPI = (*fakeVault)(nil)

func newFakeVault(url string) *fakeVault {
	return &fakeVault{url: url, versions: map[string][]fakeVersion{}}
}

func (f *fakeVault) GetSecret(_ context.Context, name, version string, _ *azsecrets.GetSecretOptions) (azsecrets.GetSecretResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return azsecrets.GetSecretResponse{}, f.getErr
	}
	vs := f.versions[name]
	if len(vs) == 0 || version != "" {
		return azsecrets.GetSecretResponse{}, responseError(http.StatusNotFound, "SecretNotFound",
			fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name))
	}
	v := vs[len(vs)-1]
	id := azsecrets.ID(v.id)
	tags := map[string]*string{}
	for k, val := range v.tags {
		tags[k] = &val
	}
	return azsecrets.GetSecretResponse{Secret: azsecrets.Secret{
		ID: &id, Value: &v.value, ContentType: &v.contentType, Tags: tags,
		Attributes: &azsecrets.SecretAttributes{Enabled: &v.enabled, Expires: v.expires},
	}}, nil
}

func (f *fakeVault) SetSecret(_ context.Context, name string, p azsecrets.SetSecretParameters, _ *azsecrets.SetSecretOptions) (azsecrets.SetSecretResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.setErr != nil {
		return azsecrets.SetSecretResponse{}, f.setErr
	}
	f.sets++
	v := fakeVersion{
		id:    fmt.Sprintf("%ssecrets/%s/v%d", f.url, name, len(f.versions[name])+1),
		value: *p.Value, enabled: true, tags: map[string]string{},
	}
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

// put stores a version as someone else would have.
func (f *fakeVault) put(name, value string, tags map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[name] = append(f.versions[name], fakeVersion{
		id:    fmt.Sprintf("%ssecrets/%s/v%d", f.url, name, len(f.versions[name])+1),
		value: value, enabled: true, tags: maps.Clone(tags),
	})
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
