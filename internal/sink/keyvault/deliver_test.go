package keyvault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// fakeBundle is what a fake-backed Deliver test needs.
type fakeBundle struct {
	vault *fakeVault
	sink  *Sink
	app   domain.Application
}

const fakeVaultURL = "https://payroll-kv.vault.azure.net/"

func setupFake(t *testing.T, tweaks ...func(domain.SinkSpec) domain.SinkSpec) fakeBundle {
	t.Helper()
	v := newFakeVault(fakeVaultURL)
	v.t = t // GetSecret fails the test
	spec := validSpec()
	for _, tw := range tweaks {
		spec = tw(spec)
	}
	app := domain.Application{TenantID: "tenant-1", ObjectID: "object-1", AppID: "app-1", DisplayName: "Payroll API"}
	s, err := newBuilder(nil, func(domain.OrgID, string, string) (SecretsAPI, error) { return v, nil }).
		Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: "conn", App: app})
	require.NoError(t, err)
	return fakeBundle{vault: v, sink: s.(*Sink), app: app}
}

func delivery(app domain.Application, keyID, value string) sink.Delivery {
	return sink.Delivery{
		Org: domain.DefaultOrg, RunID: "run-" + keyID, App: app, TenantID: app.TenantID, ClientID: app.AppID,
		KeyID: keyID, Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)),
		Start: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2030, 4, 1, 12, 30, 0, 0, time.UTC),
	}
}

func TestDeliverFake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const name = "payroll-api-secret"

	t.Run("creates a missing secret with tags, expiry and content type", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		d := delivery(b.app, "key-1", "s3cret-value-1")
		res, err := b.sink.Deliver(ctx, d)
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Equal(t, fakeVaultURL+"secrets/"+name+"/v1", res.Location)
		v, n := b.vault.latest(name)
		require.Equal(t, 1, n)
		require.Equal(t, "s3cret-value-1", v.value)
		require.Equal(t, DefaultContentType, v.contentType)
		require.True(t, v.enabled)
		require.NotNil(t, v.expires)
		require.True(t, d.End.Equal(*v.expires))
		require.Equal(t, map[string]string{
			TagManagedBy: ManagedByRotor, TagAppID: "app-1", TagObjectID: "object-1",
			TagKeyID: "key-1", TagRunID: "run-key-1", TagTenantID: "tenant-1",
		}, v.tags)
	})

	t.Run("skips when the latest version holds the same key", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		d := delivery(b.app, "key-1", "s3cret-value-1")
		first, err := b.sink.Deliver(ctx, d)
		require.NoError(t, err)
		again, err := b.sink.Deliver(ctx, d)
		require.NoError(t, err)
		require.False(t, again.Changed)
		require.Equal(t, first.Location, again.Location)
		require.Equal(t, 1, b.vault.sets)
	})

	t.Run("overwrites its own secret with a new key", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "value-one"))
		require.NoError(t, err)
		res, err := b.sink.Deliver(ctx, delivery(b.app, "key-2", "value-two"))
		require.NoError(t, err)
		require.True(t, res.Changed)
		v, n := b.vault.latest(name)
		require.Equal(t, 2, n)
		require.Equal(t, "value-two", v.value)
		require.Equal(t, "key-2", v.tags[TagKeyID])
	})

	t.Run("refuses a secret rotor does not own", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		b.vault.put(name, "theirs", map[string]string{"owner": "team-x"})
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "mine"))
		var no *NotOwnedError
		require.ErrorAs(t, err, &no)
		require.Equal(t, `Key Vault secret "payroll-api-secret" exists and is not managed by rotor (no managed-by=rotor tag); set adopt: true on the sink to take it over`, err.Error())
		require.True(t, sink.IsPermanent(err))
		require.Zero(t, b.vault.sets)
		v := b.sink.Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status)
		require.ErrorAs(t, v.Err, &no)
		require.Contains(t, v.Reason, "adopt: true")
	})

	t.Run("refuses a secret with a different managed-by", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		b.vault.put(name, "theirs", map[string]string{TagManagedBy: "terraform", TagKeyID: "key-1"})
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "mine"))
		var no *NotOwnedError
		require.ErrorAs(t, err, &no)
		require.Zero(t, b.vault.sets)
	})

	t.Run("adopt takes over a foreign secret and keeps its tags", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t, set(KeyAdopt, true))
		b.vault.put(name, "theirs", map[string]string{"owner": "team-x", TagManagedBy: "terraform"})
		val := b.sink.Validate(ctx)
		require.Equal(t, sink.StatusReady, val.Status, val.Reason)
		require.Contains(t, val.Reason, "adopt is on")
		res, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "mine"))
		require.NoError(t, err)
		require.True(t, res.Changed)
		v, _ := b.vault.latest(name)
		require.Equal(t, "mine", v.value)
		require.Equal(t, ManagedByRotor, v.tags[TagManagedBy])
		require.Equal(t, "team-x", v.tags["owner"])
	})

	t.Run("refuses another application's rotor secret even with adopt", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t, set(KeyAdopt, true))
		b.vault.put(name, "other", map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "app-2", TagKeyID: "key-9"})
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "mine"))
		var no *NotOwnedError
		require.ErrorAs(t, err, &no)
		require.Equal(t, "app-2", no.OwnerAppID)
		require.ErrorContains(t, err, "{{ .App.AppID }}")
		require.Zero(t, b.vault.sets)
	})

	t.Run("disabled latest version is not written over", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "v"))
		require.NoError(t, err)
		b.vault.update(name, 0, func(v *fakeVersion) { v.enabled = false })
		for _, keyID := range []string{"key-1", "key-2"} {
			_, err = b.sink.Deliver(ctx, delivery(b.app, keyID, "v"))
			var de *DisabledError
			require.ErrorAs(t, err, &de)
			require.Equal(t, fakeVaultURL+"secrets/"+name+"/v1", de.ID)
			require.True(t, sink.IsPermanent(err))
			require.ErrorContains(t, err, "latest version is disabled")
		}
		require.Equal(t, 1, b.vault.sets)
		v := b.sink.Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status)
		require.ErrorAs(t, v.Err, new(*DisabledError))
		held, err := b.sink.Holds(ctx, "key-1")
		require.NoError(t, err)
		require.True(t, held, "a disabled version still held the credential")
	})

	t.Run("an older disabled version does not matter", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "v"))
		require.NoError(t, err)
		_, err = b.sink.Deliver(ctx, delivery(b.app, "key-2", "v"))
		require.NoError(t, err)
		b.vault.update(name, 0, func(v *fakeVersion) { v.enabled = false })
		res, err := b.sink.Deliver(ctx, delivery(b.app, "key-2", "v"))
		require.NoError(t, err)
		require.False(t, res.Changed)
		require.Equal(t, fakeVaultURL+"secrets/"+name+"/v2", res.Location)
	})

	t.Run("custom content type", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t, set(KeyContentType, "application/x-client-secret"))
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", "v"))
		require.NoError(t, err)
		v, _ := b.vault.latest(name)
		require.Equal(t, "application/x-client-secret", v.contentType)
	})

	t.Run("refuses a delivery for another application", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		other := b.app
		other.AppID = "app-2"
		_, err := b.sink.Deliver(ctx, delivery(other, "key-1", "v"))
		require.ErrorContains(t, err, "built for application app-1")
		require.Zero(t, b.vault.sets)
	})

	t.Run("refuses an empty value or key id", func(t *testing.T) {
		t.Parallel()
		b := setupFake(t)
		_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", ""))
		require.ErrorContains(t, err, "no value")
		_, err = b.sink.Deliver(ctx, delivery(b.app, "", "v"))
		require.ErrorContains(t, err, "no key id")
	})

	t.Run("validate on an absent secret", func(t *testing.T) {
		t.Parallel()
		v := setupFake(t).sink.Validate(ctx)
		require.Equal(t, sink.StatusReady, v.Status)
		require.Contains(t, v.Reason, "does not exist yet")
	})
}

func TestDeliverErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const value = "super-secret-value-XYZ"

	cases := []struct {
		name          string
		listErr       error
		setErr        error
		wantPermanent bool
		wantType      any
		want          []string
	}{
		{name: "403 on list is a permission error",
			listErr:       responseError(http.StatusForbidden, "Forbidden", "The user, group or application does not have secrets list permission."),
			wantPermanent: true, wantType: new(*PermissionError),
			want: []string{`key vault https://payroll-kv.vault.azure.net/: list secret "payroll-api-secret": HTTP 403 Forbidden`, `connection "conn"`,
				"needs to list, set and recover secrets", "never gets a value", "Key Vault Secrets Officer",
				"secrets/readMetadata, secrets/setSecret and secrets/recover data actions", "list, set and recover secret permissions in its access policy"}},
		{name: "401 on set is a permission error",
			setErr:        responseError(http.StatusUnauthorized, "Unauthorized", "AKV10032: Invalid issuer."),
			wantPermanent: true, wantType: new(*PermissionError), want: []string{"set secret", "HTTP 401"}},
		{name: "token refused with 400 is a permission error",
			listErr:       tokenError(http.StatusBadRequest, "invalid_request", "AADSTS900023: Specified tenant identifier is neither a valid DNS name"),
			wantPermanent: true, wantType: new(*PermissionError),
			want: []string{`no token for connection "conn": HTTP 400 invalid_request: AADSTS900023`, "check the connection's credential"}},
		{name: "token refused with 401 is a permission error",
			listErr:       tokenError(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided."),
			wantPermanent: true, wantType: new(*PermissionError), want: []string{"HTTP 401 invalid_client"}},
		{name: "token refused with 403 on set is a permission error",
			setErr:        tokenError(http.StatusForbidden, "unauthorized_client", "AADSTS700016"),
			wantPermanent: true, wantType: new(*PermissionError), want: []string{`set secret`, "HTTP 403"}},
		{name: "token request without an answer is retryable",
			listErr:  &azidentity.AuthenticationFailedError{},
			wantType: new(*RequestError), want: []string{`no token for connection "conn"`, "may pass later"}},
		{name: "token request throttled is retryable",
			listErr:  tokenError(http.StatusTooManyRequests, "temporarily_unavailable", "slow down"),
			wantType: new(*RequestError), want: []string{"HTTP 429", `no token for connection "conn"`}},
		{name: "token endpoint 500 is retryable",
			listErr:  tokenError(http.StatusInternalServerError, "server_error", "AADSTS50000"),
			wantType: new(*RequestError), want: []string{"HTTP 500"}},
		{name: "token endpoint 503 on set is retryable",
			setErr:   tokenError(http.StatusServiceUnavailable, "temporarily_unavailable", "try later"),
			wantType: new(*RequestError), want: []string{"set secret", "HTTP 503"}},
		{name: "SecretDisabled is not a permission problem",
			listErr: responseErrorBody(http.StatusForbidden, "Forbidden",
				`{"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}}`),
			wantPermanent: true, wantType: new(*RequestError), want: []string{"version is disabled"}},
		{name: "503 after azcore's retries is retryable",
			setErr:   responseError(http.StatusServiceUnavailable, "ServiceUnavailable", "try later"),
			wantType: new(*RequestError), want: []string{"HTTP 503"}},
		{name: "429 is retryable",
			listErr:  responseError(http.StatusTooManyRequests, "Throttled", "slow down"),
			wantType: new(*RequestError)},
		{name: "409 deleted secret is retryable with a hint",
			setErr:   responseError(http.StatusConflict, "Conflict", "Secret payroll-api-secret is currently in a deleted but recoverable state."),
			wantType: new(*RequestError), want: []string{"waiting in soft delete", "must be recovered or purged"}},
		{name: "400 is permanent",
			setErr:        responseError(http.StatusBadRequest, "BadParameter", "bad"),
			wantPermanent: true, wantType: new(*RequestError)},
		{name: "network error is retryable and unwraps",
			listErr:  context.DeadlineExceeded,
			wantType: new(*RequestError), want: []string{"context deadline exceeded"}},
		{name: "service echoing the value in its body",
			setErr:   responseError(http.StatusBadRequest, "BadParameter", "value "+value+" is not allowed"),
			wantType: new(*RequestError), wantPermanent: true, want: []string{"value [REDACTED] is not allowed"}},
		{name: "transport error quoting the value",
			setErr:   errors.New("proxy rejected body {\"value\":\"" + value + "\"}"),
			wantType: new(*RequestError), want: []string{"[REDACTED]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupFake(t)
			b.vault.listErr, b.vault.setErr = tc.listErr, tc.setErr
			_, err := b.sink.Deliver(ctx, delivery(b.app, "key-1", value))
			require.Error(t, err)
			require.NotContains(t, err.Error(), value)
			require.NotContains(t, fmtAll(err), value)
			require.Equal(t, tc.wantPermanent, sink.IsPermanent(err), "IsPermanent(%v)", err)
			require.ErrorAs(t, err, tc.wantType)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			if tc.listErr == context.DeadlineExceeded {
				require.ErrorIs(t, err, context.DeadlineExceeded)
			}
		})
	}
}

// tokenError is the error azidentity returns when Entra answers a token
// request with status, in Entra's error body.
func tokenError(status int, code, description string) error {
	req, _ := http.NewRequest(http.MethodPost, "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token", nil)
	body := fmt.Sprintf(`{"error":%q,"error_description":%q}`, code, description)
	return &azidentity.AuthenticationFailedError{RawResponse: &http.Response{
		StatusCode: status, Status: http.StatusText(status), Request: req,
		Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{},
	}}
}

// fmtAll renders err and every error in its chain, as a log line with %+v
// or a caller unwrapping it would.
func fmtAll(err error) string {
	s := ""
	for e := err; e != nil; e = errors.Unwrap(e) {
		s += e.Error() + "\n"
	}
	return s
}

func TestIsPermanentPlainErrors(t *testing.T) {
	t.Parallel()
	require.False(t, sink.IsPermanent(errors.New("boom")))
	require.False(t, sink.IsPermanent(nil))
	require.True(t, sink.IsPermanent(&NotOwnedError{}))
	require.True(t, sink.IsPermanent(&DisabledError{}))
	require.True(t, sink.IsPermanent(fmt.Errorf("wrapped: %w", &PermissionError{})))
	for _, status := range []int{0, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		require.False(t, sink.IsPermanent(&RequestError{StatusCode: status}), "status %d", status)
	}
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity} {
		require.True(t, sink.IsPermanent(&RequestError{StatusCode: status}), "status %d", status)
	}
}

// TestTokenErrorStatus checks classify's split of token failures directly:
// only a refusal (400, 401, 403) is a permission problem.
func TestTokenErrorStatus(t *testing.T) {
	t.Parallel()
	b := setupFake(t)
	for _, tc := range []struct {
		err        error
		status     int
		permission bool
	}{
		{&azidentity.AuthenticationFailedError{}, 0, false},
		{fmt.Errorf("wrapped: %w", &azidentity.AuthenticationFailedError{}), 0, false},
		{tokenError(http.StatusBadRequest, "invalid_grant", "x"), http.StatusBadRequest, true},
		{tokenError(http.StatusUnauthorized, "invalid_client", "x"), http.StatusUnauthorized, true},
		{tokenError(http.StatusForbidden, "unauthorized_client", "x"), http.StatusForbidden, true},
		{tokenError(http.StatusTooManyRequests, "throttled", "x"), http.StatusTooManyRequests, false},
		{tokenError(http.StatusInternalServerError, "server_error", "x"), http.StatusInternalServerError, false},
		{tokenError(http.StatusBadGateway, "", ""), http.StatusBadGateway, false},
		{tokenError(http.StatusServiceUnavailable, "temporarily_unavailable", "x"), http.StatusServiceUnavailable, false},
		{tokenError(http.StatusGatewayTimeout, "", ""), http.StatusGatewayTimeout, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			err := b.sink.classify("list", tc.err, "")
			require.Equal(t, tc.permission, sink.IsPermanent(err), "%v", err)
			if tc.permission {
				var pe *PermissionError
				require.ErrorAs(t, err, &pe)
				require.True(t, pe.TokenFailed)
				require.Equal(t, tc.status, pe.StatusCode)
				return
			}
			var re *RequestError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.status, re.StatusCode)
			var pe *PermissionError
			require.False(t, errors.As(err, &pe))
			var afe *azidentity.AuthenticationFailedError
			require.ErrorAs(t, err, &afe, "the azidentity error stays reachable")
		})
	}
}
