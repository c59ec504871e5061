package ado

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

type oneSecret string

func (s oneSecret) Resolve(context.Context, sink.SecretRef) (secret.Value, error) {
	return secret.New(string(s)), nil
}

func TestCheckOrgURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://dev.azure.com/Contoso/":   "https://dev.azure.com/Contoso",
		"https://DEV.azure.com/contoso":    "https://dev.azure.com/contoso",
		"https://contoso.visualstudio.com": "https://contoso.visualstudio.com",
		"https://127.0.0.1:8443/contoso":   "https://127.0.0.1:8443/contoso",
	} {
		got, err := CheckOrgURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"http://dev.azure.com/contoso", "https://dev.azure.com", "https://dev.azure.com/a/b", "https://u:p@dev.azure.com/a", "https://dev.azure.com/a?x=1"} {
		_, err := CheckOrgURL(in)
		require.Error(t, err, in)
	}
}

// Azure DevOps' answers become errors a rotation can act on: refusals are
// permanent, throttling and failures retryable, and the value sent never
// shows.
func TestClassification(t *testing.T) {
	t.Parallel()
	const value = "the-value-being-written"
	for _, tc := range []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		permanent bool
		denied    bool
		retry     time.Duration
	}{
		{"sign-in page", http.StatusNonAuthoritativeInfo, map[string]string{"Content-Type": "text/html"}, "<html>Sign In</html>", true, true, 0},
		{"not authorized", http.StatusUnauthorized, nil, `{"message":"TF400813: nope","typeKey":"UnauthorizedRequestException"}`, true, true, 0},
		{"forbidden", http.StatusForbidden, nil, `{"message":"Access Denied"}`, true, true, 0},
		{"bad request echoing the value", http.StatusBadRequest, nil, `{"message":"bad key ` + value + `"}`, true, false, 0},
		{"throttled", http.StatusTooManyRequests, map[string]string{"Retry-After": "7"}, `{"message":"slow down"}`, false, false, 7 * time.Second},
		{"failing", http.StatusServiceUnavailable, nil, ``, false, false, 0},
	} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			require.Equal(t, "7.1", r.URL.Query().Get("api-version"))
			user, pass, ok := r.BasicAuth()
			require.True(t, ok)
			require.Equal(t, "", user)
			require.Equal(t, "the-pat", pass)
			for k, v := range tc.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		ref := sink.SecretRef{Env: "ADO_PAT"}
		c, err := NewClient(sink.Deps{HTTPClient: srv.Client(), Secrets: oneSecret("the-pat")}, "default", "", Common{OrgURL: srv.URL + "/contoso", PAT: &ref})
		require.NoError(t, err)
		_, err = c.Do(context.Background(), Call{Op: "test", Method: http.MethodPut, Path: "/_apis/x", In: map[string]string{"v": value}, Secret: value})
		srv.Close()
		require.Error(t, err, tc.name)
		require.Equal(t, tc.permanent, sink.IsPermanent(err), "%s: %v", tc.name, err)
		require.Equal(t, tc.denied, IsDenied(err), tc.name)
		require.NotContains(t, err.Error(), value, tc.name)
		var e *Error
		if tc.retry > 0 {
			require.True(t, errors.As(err, &e))
			require.Equal(t, tc.retry, e.RetryAfter)
		}
	}
}
