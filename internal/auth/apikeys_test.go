package auth_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/apikey"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// keyBundle is a SQLite store with two organizations and a way to make
// keys in them as `rotor apikey create` does.
type keyBundle struct {
	s     *sqlite.Store
	clock *clock.Fake
	keys  *auth.APIKeys
}

func setupKeys(t *testing.T) *keyBundle {
	t.Helper()
	clk := clock.NewFake(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"), sqlite.WithClock(clk))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for _, org := range []domain.OrgID{orgA, orgB} {
		require.NoError(t, s.EnsureOrg(t.Context(), org, string(org)))
	}
	return &keyBundle{s: s, clock: clk, keys: auth.NewAPIKeys(s, auth.WithClock(clk))}
}

// make stores a new key of org with role, expiring after life, and
// returns its text.
func (k *keyBundle) make(t *testing.T, org domain.OrgID, role app.Role, life time.Duration) (string, string) {
	t.Helper()
	key, err := apikey.New(org)
	require.NoError(t, err)
	now := k.clock.Now()
	require.NoError(t, k.s.CreateAPIKey(t.Context(), store.APIKey{Org: org, ID: key.ID, Name: "ci", Role: string(role),
		Hash: apikey.Hash(key.Text), CreatedAt: now, CreatedBy: "system:cli", ExpiresAt: now.Add(life)}))
	return key.Text, key.ID
}

func TestAPIKeysAuthenticate(t *testing.T) {
	t.Parallel()
	k := setupKeys(t)
	ctx := t.Context()
	valid, id := k.make(t, orgA, app.RoleOperator, time.Hour)

	p, err := k.keys.Authenticate(ctx, valid)
	require.NoError(t, err)
	require.Equal(t, app.Actor{Kind: app.ActorToken, ID: "apikey:" + id, Name: "ci"}, p.Actor)
	require.Equal(t, auth.MethodAPIKey, p.Method)
	require.Equal(t, map[domain.OrgID]app.Role{orgA: app.RoleOperator}, p.Roles, "its own organization only")
	require.Equal(t, "apikey:"+string(orgA)+"/"+id, p.RateKey)

	revoked, revokedID := k.make(t, orgA, app.RoleAdmin, time.Hour)
	require.NoError(t, k.s.RevokeAPIKey(ctx, store.RevokeAPIKeyParams{Org: orgA, ID: revokedID, At: k.clock.Now()}))
	expiring, _ := k.make(t, orgA, app.RoleViewer, time.Minute)
	otherOrgs, _ := k.make(t, orgB, app.RoleAdmin, time.Hour)
	secretOf := func(s string) string { return s[strings.LastIndexByte(s, '_')+1:] }
	movedToOtherOrg := apikey.Prefix + string(orgB) + "_" + id + "_" + secretOf(valid)
	tampered := []byte(valid)
	tampered[len(tampered)-1] = map[bool]byte{true: 'b', false: 'a'}[tampered[len(tampered)-1] == 'a']
	otherSecret := valid[:len(valid)-52] + secretOf(otherOrgs)

	k.clock.Advance(time.Minute) // expiring has just expired
	log := &syncBuffer{}
	mw := (&auth.Authenticator{APIKeys: k.keys, Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))}).Middleware(okHandler(t))
	for _, c := range []struct {
		name   string
		key    string
		reason auth.Reason
	}{
		{"Revoked", revoked, auth.ReasonRevoked},
		{"Expired", expiring, auth.ReasonExpired},
		{"ItsIDUnderAnotherOrg", movedToOtherOrg, auth.ReasonSignature},
		{"Tampered", string(tampered), auth.ReasonSignature},
		{"AnotherKeysSecret", otherSecret, auth.ReasonSignature},
		{"UnknownID", apikey.Prefix + string(orgA) + "_aaaaaaaaaaaaaaaa_" + secretOf(valid), auth.ReasonSignature},
		{"UnknownOrg", apikey.Prefix + "nosuchorg_" + id + "_" + secretOf(valid), auth.ReasonSignature},
		{"Malformed", apikey.Prefix + "x", auth.ReasonMalformed},
		{"Truncated", valid[:len(valid)-1], auth.ReasonMalformed},
	} {
		_, err := k.keys.Authenticate(ctx, c.key)
		requireRefused(t, err, c.reason, http.StatusUnauthorized, c.name)
		require.NotContains(t, err.Error(), secretOf(c.key), c.name)
		rec := serve(mw, c.key, "")
		require.Equal(t, http.StatusUnauthorized, rec.Code, c.name)
		require.True(t, strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), `Bearer realm="rotor", error="invalid_token"`), c.name)
		require.NotContains(t, rec.Body.String(), secretOf(c.key), c.name)
	}

	rec := serve(mw, valid, "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "token:apikey:"+id+" operator", rec.Body.String())
	rec = serve(mw, "", "?api_key="+valid)
	require.Equal(t, http.StatusBadRequest, rec.Code, "a key in the URL is refused, not used")
	rec = serve(mw, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "")
	require.Equal(t, http.StatusUnauthorized, rec.Code, "Entra tokens are refused where no validator is configured")

	for _, key := range []string{valid, revoked, expiring, otherOrgs} {
		require.NotContains(t, log.String(), secretOf(key), "no key in the log")
	}
	require.Contains(t, log.String(), "reason=revoked", "refusals are logged with their reason")
}

// failingLookup is a store that cannot answer.
type failingLookup struct{}

func (failingLookup) GetAPIKey(context.Context, domain.OrgID, string) (*store.APIKey, error) {
	return nil, context.DeadlineExceeded
}

func TestAPIKeysWhenTheStoreIsDown(t *testing.T) {
	t.Parallel()
	key, err := apikey.New(orgA)
	require.NoError(t, err)
	_, err = auth.NewAPIKeys(failingLookup{}).Authenticate(t.Context(), key.Text)
	requireRefused(t, err, auth.ReasonUnavailable, http.StatusServiceUnavailable)
}

func TestAPIKeysAreRateLimitedPerKey(t *testing.T) {
	t.Parallel()
	k := setupKeys(t)
	a, _ := k.make(t, orgA, app.RoleViewer, time.Hour)
	b, _ := k.make(t, orgA, app.RoleViewer, time.Hour)
	lim := auth.NewLimiter(1, 1, k.clock)
	h := (&auth.Authenticator{APIKeys: k.keys}).Middleware(lim.Middleware(okHandler(t)))
	require.Equal(t, http.StatusOK, serve(h, a, "").Code)
	rec := serve(h, a, "")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Equal(t, http.StatusOK, serve(h, b, "").Code)
	k.clock.Advance(time.Second)
	require.Equal(t, http.StatusOK, serve(h, a, "").Code)
}

func TestAuthorizerHoldsCallsToThePrincipalsRole(t *testing.T) {
	t.Parallel()
	k := setupKeys(t)
	ctx := t.Context()
	operatorKey, _ := k.make(t, orgA, app.RoleOperator, time.Hour)
	p, err := k.keys.Authenticate(ctx, operatorKey)
	require.NoError(t, err)
	authz := auth.Authorizer{}
	withP := auth.WithPrincipal(ctx, p)

	require.NoError(t, authz.Authorize(withP, p.Scope(orgA, "req-1"), app.ActionRotate, "application:x"))
	require.NoError(t, authz.Authorize(withP, p.Scope(orgA, ""), app.ActionRead, app.ObjectInventory))
	for name, c := range map[string]struct {
		ctx    context.Context
		scope  app.Scope
		action app.Action
	}{
		"AboveItsRole":          {withP, p.Scope(orgA, ""), app.ActionManageAPIKeys},
		"AnotherOrganization":   {withP, p.Scope(orgB, ""), app.ActionRead},
		"UnderAnotherName":      {withP, app.Scope{Org: orgA, Actor: app.Actor{Kind: app.ActorToken, ID: "apikey:someone-else"}}, app.ActionRead},
		"ClaimingToBeTheSystem": {withP, app.Scope{Org: orgA, Actor: app.CLI}, app.ActionRead},
		"TokenWithoutPrincipal": {ctx, p.Scope(orgA, ""), app.ActionRead},
		"UserWithoutPrincipal":  {ctx, app.Scope{Org: orgA, Actor: app.Actor{Kind: app.ActorUser, ID: "u"}}, app.ActionRead},
		"PrincipalWithoutARole": {auth.WithPrincipal(ctx, &auth.Principal{Actor: p.Actor}), p.Scope(orgA, ""), app.ActionRead},
	} {
		err := authz.Authorize(c.ctx, c.scope, c.action, "object")
		var denied *app.DeniedError
		require.ErrorAs(t, err, &denied, name)
		require.Equal(t, http.StatusForbidden, app.HTTPStatus(err), name)
	}
	require.NoError(t, authz.Authorize(ctx, app.Scope{Org: orgA, Actor: app.CLI}, app.ActionManageAPIKeys, "x"), "rotor's own actors, outside any request")
}
