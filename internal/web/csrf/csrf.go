// Package csrf protects rotor's forms from cross-site request forgery: a
// middleware that refuses every state-changing request (POST, PUT, PATCH,
// DELETE) that is cross-origin or lacks the right token, and the helpers
// templates put the token in forms with. The token is the HMAC of a
// random secret in an HttpOnly cookie and of the request's session
// binding (internal/web/session.Binding), so it is worthless without both
// cookies, and every token minted before a sign-in or after a sign-out
// stops working. Nothing is stored on the server (docs/adr/0023).
package csrf

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
)

// FieldName is the form field, and HeaderName the header (for scripts),
// a token is sent in.
const (
	FieldName  = "csrf_token"
	HeaderName = "X-CSRF-Token"
)

const (
	secureCookie   = "__Host-rotor_csrf"
	insecureCookie = "rotor_csrf"
	maxFormBytes   = 1 << 20
)

var secretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// Options configure a Protector.
type Options struct {
	// Binding returns a value only the request's session knows ("" when
	// it has none); session.Binding. Nil binds tokens to the cookie alone.
	Binding func(*http.Request) string
	// Insecure drops Secure and the __Host- prefix from the cookie (plain
	// HTTP on loopback only, as session.Config.Insecure).
	Insecure bool
	// Logger receives one line per refusal (never a token).
	Logger *slog.Logger
}

// Protector is the CSRF middleware.
type Protector struct {
	binding func(*http.Request) string
	secure  bool
	cop     *http.CrossOriginProtection
	log     *slog.Logger
}

// New returns a Protector.
func New(opts Options) *Protector {
	b := opts.Binding
	if b == nil {
		b = func(*http.Request) string { return "" }
	}
	return &Protector{binding: b, secure: !opts.Insecure, cop: http.NewCrossOriginProtection(),
		log: cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))}
}

func (p *Protector) cookieName() string {
	if p.secure {
		return secureCookie
	}
	return insecureCookie
}

type tokenKey struct{}

// Handler checks every state-changing request before next sees it: first
// that the browser did not send it from another origin (Sec-Fetch-Site,
// Origin: net/http's CrossOriginProtection), then that it carries the
// token of its CSRF cookie and session in the form field or the header.
// Either failure is 403. Every request gets a CSRF cookie if it has none,
// and the token for its forms in the context (Token, Field).
func (p *Protector) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, had := p.secret(r)
		if !had {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				http.Error(w, "rotor could not make a CSRF token.", http.StatusInternalServerError)
				return
			}
			secret = base64.RawURLEncoding.EncodeToString(b)
			http.SetCookie(w, &http.Cookie{Name: p.cookieName(), Value: secret, Path: "/",
				HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteStrictMode})
		}
		want := p.token(secret, r)
		if !safe(r.Method) {
			if err := p.cop.Check(r); err != nil {
				p.refuse(w, r, "cross-origin request")
				return
			}
			got := r.Header.Get(HeaderName)
			if got == "" {
				r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
				got = r.PostFormValue(FieldName)
			}
			if !had || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				p.refuse(w, r, "missing or wrong token")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, want)))
	})
}

func (p *Protector) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	p.log.Info("request refused: CSRF", "reason", reason, "method", r.Method, "path", r.URL.Path)
	http.Error(w, "Forbidden: this form has expired or did not come from rotor. Reload the page and try again.", http.StatusForbidden)
}

func (p *Protector) secret(r *http.Request) (string, bool) {
	c, err := r.Cookie(p.cookieName())
	if err != nil || !secretRE.MatchString(c.Value) {
		return "", false
	}
	return c.Value, true
}

// token is HMAC-SHA256(cookie secret, session binding).
func (p *Protector) token(secret string, r *http.Request) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("rotor csrf v1\x00"))
	mac.Write([]byte(p.binding(r)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func safe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// Token is the token a form served in response to r must carry (empty
// outside Handler).
func Token(r *http.Request) string {
	t, _ := r.Context().Value(tokenKey{}).(string)
	return t
}

// Field is the hidden form field carrying r's token, for templates:
// {{.CSRFField}} inside every <form method="post">.
func Field(r *http.Request) template.HTML {
	return template.HTML(`<input type="hidden" name="` + FieldName + `" value="` + template.HTMLEscapeString(Token(r)) + `">`) //nolint:gosec // the token is base64url
}
