// Package session owns the server-side sessions of people signed in to
// rotor's UI: the session cookie, the row the store keeps for it (the
// SHA-256 of the session's id, never the id), and the middleware that
// finds the session of a request and hands its principal to the
// application layer. How a person proves who they are (Entra, the
// break-glass admin) is internal/web/signin's; this package only starts,
// finds and ends sessions (docs/sign-in.md, docs/adr/0023).
package session

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Session lifetimes. A session ends at a fixed time after sign-in, not
// after idleness: rotor keeps no refresh token to learn that a user lost
// a role, so the lifetime bounds how long a removed role lingers.
const (
	DefaultLifetime = 8 * time.Hour
	MaxLifetime     = 24 * time.Hour
)

// Methods a person signs in with (store.Session.Method).
const (
	MethodEntra = "entra"
	MethodLocal = "local"
)

// Cookie names. With Secure, the __Host- prefix makes the browser refuse
// the cookie unless it is Secure, has Path=/ and no Domain: no other host
// (a sibling subdomain) can set or shadow it.
const (
	secureCookie   = "__Host-rotor_session"
	insecureCookie = "rotor_session"
	tokenBytes     = 32
)

// Store is the part of store.Store sessions need.
type Store interface {
	CreateSession(ctx context.Context, s store.Session) error
	GetSession(ctx context.Context, org domain.OrgID, idHash []byte) (*store.Session, error)
	DeleteSession(ctx context.Context, org domain.OrgID, idHash []byte) error
	DeleteExpiredSessions(ctx context.Context, org domain.OrgID, before time.Time) (int, error)
}

var _ Store = store.Store(nil)

// Identity is who signed in, and what they hold, as a session keeps it.
type Identity struct {
	Org domain.OrgID
	// Method is MethodEntra or MethodLocal.
	Method string
	// Subject is the Entra user's object id, or the local admin's name.
	Subject  string
	TenantID string
	Name     string
	Username string
	// Role is the rotor role held in Org.
	Role app.Role
	// OwnedOnly restricts the session to the applications with the
	// object ids OwnedApps: those the person owned in Entra at sign-in,
	// when their organization lets members see only those
	// (docs/adr/0030). They are read at sign-in only: a change of
	// ownership in Entra is seen at the next sign-in, at most the
	// session's lifetime later. False: unrestricted (OwnedApps nil).
	OwnedOnly bool
	OwnedApps []string
}

// OwnedSet is the restriction the session's use cases run under: nil
// (none) unless OwnedOnly.
func (id Identity) OwnedSet() *app.OwnedSet {
	if !id.OwnedOnly {
		return nil
	}
	return app.NewOwnedSet(id.OwnedApps)
}

// Session is a live session.
type Session struct {
	Identity
	CreatedAt time.Time
	ExpiresAt time.Time
	// token is the cookie's secret, kept only for the request's lifetime
	// (Binding).
	token string
}

// Actor is who the audit trail names: an Entra user by object id with
// the sign-in name, the local admin as "local:<name>".
func (s *Session) Actor() app.Actor {
	if s.Method == MethodLocal {
		return app.Actor{Kind: app.ActorUser, ID: "local:" + s.Subject, Name: "break-glass admin (local account " + s.Subject + ")"}
	}
	name := s.Username
	if s.Name != "" && s.Name != s.Username {
		name = s.Name + " <" + s.Username + ">"
	}
	return app.Actor{Kind: app.ActorUser, ID: s.Subject, Name: name}
}

// Principal is the session as internal/auth's Authorizer sees a caller:
// one role, in the session's organization.
func (s *Session) Principal() *auth.Principal {
	p := &auth.Principal{
		Actor:     s.Actor(),
		Method:    auth.MethodSession,
		TenantID:  s.TenantID,
		Roles:     map[domain.OrgID]app.Role{s.Org: s.Role},
		RateKey:   "session:" + string(s.Org) + "/" + s.Subject,
		ExpiresAt: s.ExpiresAt,
	}
	if s.Method == MethodEntra {
		p.ObjectID = s.Subject
	}
	p.Owned = s.OwnedSet()
	return p
}

// Config configures a Manager.
type Config struct {
	Store Store
	Clock clock.Clock
	// Lifetime is how long a session lasts after sign-in (default
	// DefaultLifetime, at most MaxLifetime).
	Lifetime time.Duration
	// Insecure drops the Secure attribute and the __Host- prefix: only
	// for rotor served over plain HTTP on a loopback address (the demo),
	// where browsers would otherwise refuse the cookie.
	Insecure bool
	// Logger receives one line per refused cookie (never its value).
	Logger *slog.Logger
}

// Manager starts, finds and ends sessions.
type Manager struct {
	store    Store
	clock    clock.Clock
	lifetime time.Duration
	secure   bool
	log      *slog.Logger
}

// New checks cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("session: a store is required")
	}
	switch {
	case cfg.Lifetime == 0:
		cfg.Lifetime = DefaultLifetime
	case cfg.Lifetime < time.Minute || cfg.Lifetime > MaxLifetime:
		return nil, fmt.Errorf("session: lifetime must be between 1m and %s", MaxLifetime)
	}
	return &Manager{
		store: cfg.Store, clock: cmp.Or[clock.Clock](cfg.Clock, clock.Real{}), lifetime: cfg.Lifetime,
		secure: !cfg.Insecure, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
	}, nil
}

// CookieName is the session cookie's name.
func (m *Manager) CookieName() string {
	if m.secure {
		return secureCookie
	}
	return insecureCookie
}

// Secure reports whether cookies are Secure (and __Host- prefixed).
func (m *Manager) Secure() bool { return m.secure }

// Lifetime is how long a session lasts.
func (m *Manager) Lifetime() time.Duration { return m.lifetime }

// ErrNoSession says a request carries no live session: no cookie, a
// malformed one, an unknown, ended or expired session.
var ErrNoSession = errors.New("session: no session")

var (
	orgRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

// hash is what the store keeps of a token.
func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Start begins a session for id: a new random id (never one the browser
// brought, so a planted cookie cannot become a signed-in session), its
// hash in the store, the cookie on w. A session the request already had
// is ended first.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, id Identity) (*Session, error) {
	if !orgRE.MatchString(string(id.Org)) || id.Subject == "" || (id.Method != MethodEntra && id.Method != MethodLocal) {
		return nil, errors.New("session: an organization, a subject and a method are required")
	}
	if _, err := app.ParseRole(string(id.Role)); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if !id.OwnedOnly && id.OwnedApps != nil {
		return nil, errors.New("session: owned applications are kept only for a session restricted to them")
	}
	if id.OwnedOnly && id.OwnedApps == nil {
		id.OwnedApps = []string{} // restricted to nothing, which is not unrestricted
	}
	if old, ok := m.cookie(r); ok {
		_ = m.store.DeleteSession(r.Context(), old.org, hash(old.token))
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("session: random id: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	now := m.clock.Now()
	s := &Session{Identity: id, CreatedAt: now, ExpiresAt: now.Add(m.lifetime), token: token}
	err := m.store.CreateSession(r.Context(), store.Session{
		Org: id.Org, IDHash: hash(token), Method: id.Method, Subject: id.Subject, TenantID: id.TenantID,
		Name: id.Name, Username: id.Username, Role: string(id.Role), CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt,
		OwnedOnly: id.OwnedOnly, OwnedObjectIDs: id.OwnedApps,
	})
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	http.SetCookie(w, m.newCookie(token+"."+string(id.Org), int(m.lifetime/time.Second)))
	return s, nil
}

// newCookie is the session cookie: HttpOnly (no script reads it),
// SameSite=Strict (no other site's page makes the browser send it),
// Secure and __Host- unless Insecure.
func (m *Manager) newCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: m.CookieName(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteStrictMode,
	}
}

type cookieValue struct {
	token string
	org   domain.OrgID
}

// cookie reads the request's session cookie: "<token>.<org>".
func (m *Manager) cookie(r *http.Request) (cookieValue, bool) {
	c, err := r.Cookie(m.CookieName())
	if err != nil {
		return cookieValue{}, false
	}
	token, org, ok := strings.Cut(c.Value, ".")
	if !ok || !tokenRE.MatchString(token) || !orgRE.MatchString(org) {
		return cookieValue{}, false
	}
	return cookieValue{token: token, org: domain.OrgID(org)}, true
}

// Load finds the request's live session. An expired one is deleted.
// Errors other than ErrNoSession mean the store could not answer.
func (m *Manager) Load(r *http.Request) (*Session, error) {
	cv, ok := m.cookie(r)
	if !ok {
		return nil, ErrNoSession
	}
	row, err := m.store.GetSession(r.Context(), cv.org, hash(cv.token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if !m.clock.Now().Before(row.ExpiresAt) {
		_ = m.store.DeleteSession(r.Context(), cv.org, row.IDHash)
		return nil, ErrNoSession
	}
	role, err := app.ParseRole(row.Role)
	if err != nil {
		return nil, ErrNoSession
	}
	return &Session{
		Identity: Identity{Org: row.Org, Method: row.Method, Subject: row.Subject, TenantID: row.TenantID,
			Name: row.Name, Username: row.Username, Role: role, OwnedOnly: row.OwnedOnly, OwnedApps: row.OwnedObjectIDs},
		CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt, token: cv.token,
	}, nil
}

// End ends the request's session (sign-out): its row is deleted, so the
// cookie is worthless even to someone who copied it, and the browser is
// told to forget the cookie.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, m.newCookie("", -1))
	cv, ok := m.cookie(r)
	if !ok {
		return nil
	}
	if err := m.store.DeleteSession(r.Context(), cv.org, hash(cv.token)); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	return nil
}

// Sweep deletes org's expired sessions (a periodic job's work).
func (m *Manager) Sweep(ctx context.Context, org domain.OrgID) (int, error) {
	return m.store.DeleteExpiredSessions(ctx, org, m.clock.Now())
}

type sessionKey struct{}

// FromContext returns the session Middleware found for the request.
func FromContext(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok && s != nil
}

// Binding is a value only the request's session knows (an HMAC of its
// secret id), for tokens that must not outlive or leave the session:
// internal/web/csrf binds form tokens to it. Empty without a session.
func Binding(r *http.Request) string {
	s, ok := FromContext(r.Context())
	if !ok {
		return ""
	}
	mac := hmac.New(sha256.New, []byte(s.token))
	mac.Write([]byte("rotor session binding v1"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Middleware finds the request's session, when it has one, and puts it in
// the context (FromContext) along with its principal
// (auth.FromContext), which auth.Authorizer holds use cases to. A request
// without a session goes on without one: Require decides what needs one.
// When the store cannot answer, the request is refused with 503.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Load(r)
		switch {
		case errors.Is(err, ErrNoSession):
			next.ServeHTTP(w, r)
		case err != nil:
			m.log.Error("session store unavailable", "err", err, "method", r.Method, "path", r.URL.Path)
			http.Error(w, "rotor cannot read sessions right now; try again shortly.", http.StatusServiceUnavailable)
		default:
			ctx := context.WithValue(r.Context(), sessionKey{}, s)
			ctx = auth.WithPrincipal(ctx, s.Principal())
			next.ServeHTTP(w, r.WithContext(ctx))
		}
	})
}

// Require lets only requests with a session through, and of those only
// ones whose role is at least min (403 otherwise). A page request (GET or
// HEAD) without a session is sent to loginURL with return_to; anything
// else gets 401. A page request that arrives from another site (a link in
// a mail) comes without the SameSite=Strict cookie even when the person
// is signed in: it is answered with a page that reloads itself, a
// same-site request that carries the cookie.
func Require(min app.Role, loginURL string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := FromContext(r.Context())
		page := r.Method == http.MethodGet || r.Method == http.MethodHead
		switch {
		case !ok && page && r.Header.Get("Sec-Fetch-Site") == "cross-site":
			WriteContinue(w, r.URL.RequestURI(), "Opening rotor…")
		case !ok && page:
			http.Redirect(w, r, loginURL+"?return_to="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		case !ok:
			http.Error(w, "Sign in first.", http.StatusUnauthorized)
		case !s.Role.AtLeast(min):
			http.Error(w, "Your role in "+string(s.Org)+" ("+string(s.Role)+") does not allow this.", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
