package auth

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/rotor-dev/rotor/internal/apikey"
	"github.com/rotor-dev/rotor/internal/app"
)

// TokenValidator validates an Entra access token (Validator).
type TokenValidator interface {
	Validate(ctx context.Context, raw string) (*Principal, error)
}

// APIKeyAuthenticator authenticates an API key (APIKeys).
type APIKeyAuthenticator interface {
	Authenticate(ctx context.Context, text string) (*Principal, error)
}

var (
	_ TokenValidator      = (*Validator)(nil)
	_ APIKeyAuthenticator = (*APIKeys)(nil)
)

// Authenticator is the bearer middleware: "Authorization: Bearer X" where
// X is an API key (it starts with rtr_) or an Entra access token.
type Authenticator struct {
	// Entra validates access tokens; nil refuses them.
	Entra TokenValidator
	// APIKeys authenticates API keys; nil refuses them.
	APIKeys APIKeyAuthenticator
	// Logger receives one line per refusal: the reason, the method and
	// path, never the credential. Nil discards.
	Logger *slog.Logger
}

// Middleware authenticates every request before next sees it, putting
// the Principal in the request's context (FromContext). A request
// without a valid credential is answered 401 (400 for credentials in the
// URL, 403 for a genuine token without a rotor role) and never reaches
// next.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	log := cmp.Or(a.Logger, slog.New(slog.DiscardHandler))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err != nil {
			log.LogAttrs(r.Context(), slog.LevelInfo, "request refused: bearer credential",
				slog.String("reason", string(err.Reason)), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", err.HTTPStatus()))
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func (a *Authenticator) authenticate(r *http.Request) (*Principal, *Error) {
	q := r.URL.Query()
	if q.Has("access_token") || q.Has("api_key") || q.Has("apikey") || q.Has("key") {
		return nil, refuse(ReasonTokenInURL, nil)
	}
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 {
		return nil, refuse(ReasonMissing, nil)
	}
	if len(hs) > 1 {
		return nil, refuse(ReasonMalformed, nil)
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(hs[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, refuse(ReasonMissing, nil)
	}
	cred = strings.TrimSpace(cred)
	if cred == "" {
		return nil, refuse(ReasonMissing, nil)
	}
	var (
		p   *Principal
		err error
	)
	if strings.HasPrefix(cred, apikey.Prefix) {
		if a.APIKeys == nil {
			return nil, refuse(ReasonDisabled, nil)
		}
		p, err = a.APIKeys.Authenticate(r.Context(), cred)
	} else {
		if a.Entra == nil {
			return nil, refuse(ReasonDisabled, nil)
		}
		p, err = a.Entra.Validate(r.Context(), cred)
	}
	if err != nil {
		if ae := (*Error)(nil); errors.As(err, &ae) {
			return nil, ae
		}
		return nil, refuse(ReasonUnavailable, err)
	}
	return p, nil
}

// Authorizer is the app.Authorizer of API requests: rotor's own actors
// (the CLI, the planner) may do everything; anyone else only what the
// role of the request's principal (FromContext) in the scope's
// organization permits, and only under its own name: a scope whose actor
// is not the authenticated principal is refused.
type Authorizer struct{}

var _ app.Authorizer = Authorizer{}

// Authorize implements app.Authorizer.
func (Authorizer) Authorize(ctx context.Context, scope app.Scope, action app.Action, object string) error {
	deny := func(reason string) error {
		return &app.DeniedError{Actor: scope.Actor, Action: action, Object: object, Reason: reason}
	}
	p, ok := FromContext(ctx)
	if !ok {
		if scope.Actor.Kind == app.ActorSystem {
			return nil
		}
		return deny("the request has no authenticated principal")
	}
	if p.Actor != scope.Actor {
		return deny("the scope's actor is not the request's principal")
	}
	role, ok := p.Role(scope.Org)
	if !ok {
		return deny("no role in organization " + string(scope.Org))
	}
	if !role.Permits(action) {
		// The role that would: what to ask an admin for.
		for _, r := range []app.Role{app.RoleViewer, app.RoleOperator, app.RoleAdmin} {
			if r.Permits(action) {
				return deny("role " + string(role) + " does not permit it; it needs " + string(r))
			}
		}
		return deny("role " + string(role) + " does not permit it")
	}
	return nil
}
