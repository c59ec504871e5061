package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/api"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
)

// remoteFlag is --server and what goes with it: a command asks a running
// rotor's REST API instead of opening the store, as the organization
// --org names, with a bearer credential from the environment or from
// 'rotor login”s cache (never a flag: flags end up in shell history and
// ps).
type remoteFlag struct {
	server     string
	org        string
	tokenEnv   string
	tokenCache string
}

func (f *remoteFlag) register(c *cobra.Command) {
	c.Flags().StringVar(&f.server, "server", os.Getenv("ROTOR_SERVER"), "ask the rotor at this URL (its REST API) instead of the local store (env ROTOR_SERVER); signed in with 'rotor login', or with a token in $ROTOR_TOKEN")
	c.Flags().StringVar(&f.org, "org", "", "the organization (default: rotor.yaml's; with --server: "+string(domain.DefaultOrg)+")")
	c.Flags().StringVar(&f.tokenEnv, "token-env", "ROTOR_TOKEN", "with --server: the environment variable holding a bearer token or API key (it wins over 'rotor login''s)")
	registerTokenCache(c, &f.tokenCache, true)
}

// registerTokenCache adds --token-cache: where 'rotor login' keeps its
// tokens (a test's own file; people keep the default).
func registerTokenCache(c *cobra.Command, dst *string, hidden bool) {
	c.Flags().StringVar(dst, "token-cache", "", "the file 'rotor login' keeps tokens in (default: the user config dir's rotor/tokens.json)")
	if hidden {
		_ = c.Flags().MarkHidden("token-cache")
	}
}

func (f *remoteFlag) set() bool { return f.server != "" }

// localScope is the scope of the local mode: rotor.yaml's organization,
// or --org's.
func (f *remoteFlag) localScope(srv *server.Server) app.Scope {
	sc := scope(srv)
	if f.org != "" {
		sc.Org = domain.OrgID(f.org)
	}
	return sc
}

// remote is a client of one rotor's REST API, in one organization.
type remote struct {
	// server is the URL as the user gave it, for messages; base is the
	// API's root under it.
	server string
	base   string
	org    string
	token  string
	// tokenEnv is where the token came from ("" for the login cache),
	// for the 401 message.
	tokenEnv string
	http     *http.Client
}

// checkServer parses --server: https, or plain http to a loopback
// address only (a token must not cross a network in clear). It returns
// the URL without a trailing slash: the login cache's key.
func checkServer(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server %q must be a URL such as https://rotor.example.com", raw)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("--server %s: plain http is refused except to a loopback address (127.0.0.1, ::1, localhost): the token would cross the network in clear; use https", raw)
	}
	return strings.TrimRight(u.Scheme+"://"+strings.ToLower(u.Host)+u.Path, "/"), nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// client checks --server and finds the token: $ROTOR_TOKEN (or
// --token-env's variable) first, else the login cache's entry for the
// server, refreshed when it has expired.
func (f *remoteFlag) client(ctx context.Context) (*remote, error) {
	server, err := checkServer(f.server)
	if err != nil {
		return nil, err
	}
	r := &remote{server: server, base: server + api.Prefix, org: f.org, http: noRedirects(time.Minute)}
	if r.org == "" {
		r.org = string(domain.DefaultOrg)
	}
	if tok := strings.TrimSpace(os.Getenv(f.tokenEnv)); tok != "" {
		r.token, r.tokenEnv = tok, f.tokenEnv
		return r, nil
	}
	cache, err := openTokenCache(f.tokenCache)
	if err != nil {
		return nil, err
	}
	tok, err := cache.token(ctx, server, time.Now())
	if err != nil {
		return nil, err
	}
	if tok == "" {
		return nil, fmt.Errorf("not signed in to %s: run 'rotor login --server %s' or set $%s", server, server, f.tokenEnv)
	}
	r.token = tok
	return r, nil
}

// remoteError is a problem the API answered, said for the command line.
type remoteError struct {
	r          *remote
	status     int
	retryAfter string
	p          api.Problem
}

func (e *remoteError) Error() string {
	s, d := e.r.server, e.p.Detail
	switch e.status {
	case http.StatusUnauthorized:
		why := e.p.Reason
		if why == "" {
			why = e.p.Code
		}
		where := "run 'rotor login --server " + s + "'"
		if e.r.tokenEnv != "" {
			where = "the token in $" + e.r.tokenEnv + " was refused; set a valid one, or unset it and run 'rotor login --server " + s + "'"
		}
		return fmt.Sprintf("not signed in to %s (the server answered 401 %s: %s): %s or set $ROTOR_TOKEN", s, e.p.Code, why, where)
	case http.StatusForbidden:
		if e.p.Reason == "no_role" {
			return fmt.Sprintf("%s refused (403): you are signed in, but no rotor role is bound to your app roles; ask an Entra admin to assign you one of rotor's app roles (Rotor.Viewer, Rotor.Operator, Rotor.Admin)", s)
		}
		return fmt.Sprintf("%s refused (403): %s", s, d)
	case http.StatusNotFound:
		if strings.HasPrefix(d, "no organization") {
			return fmt.Sprintf("%s: %s, or you hold no role in it: name yours with --org", s, d)
		}
		return fmt.Sprintf("%s: %s (404)", s, d)
	case http.StatusTooManyRequests:
		wait := "a moment"
		if n, err := strconv.Atoi(e.retryAfter); err == nil {
			wait = fmt.Sprintf("%d s", n)
		}
		return fmt.Sprintf("%s is limiting your requests (429): try again in %s", s, wait)
	}
	return fmt.Sprintf("%s answered %d %s: %s", s, e.status, e.p.Code, d)
}

// do sends one request (a JSON body when in is not nil) and decodes the
// answer into out (when not nil). The token goes in the Authorization
// header only; no error says it.
func (r *remote) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := r.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Accept", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", r.server, redactURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", r.server, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc := resp.Header.Get("Location")
		if u, err := url.Parse(loc); err == nil {
			u.RawQuery, u.Fragment = "", "" // a redirect's query may carry anything
			loc = u.String()
		}
		return fmt.Errorf("%s answered %d, a redirect to %q: the CLI does not follow redirects with your token; if that is rotor, give its address as --server", r.server, resp.StatusCode, loc)
	}
	if resp.StatusCode >= 300 {
		e := &remoteError{r: r, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
		if json.Unmarshal(raw, &e.p) != nil || e.p.Detail == "" {
			e.p.Detail = http.StatusText(resp.StatusCode)
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s answered what is not rotor's API (%w): is --server rotor's URL?", r.server, err)
	}
	return nil
}

func (r *remote) get(ctx context.Context, path string, q url.Values, out any) error {
	return r.do(ctx, http.MethodGet, path, q, nil, out)
}

// orgPath is path under the organization's routes.
func (r *remote) orgPath(parts ...string) string {
	p := "/orgs/" + url.PathEscape(r.org)
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// redactURLError drops the URL from a transport error: it names no
// secret, but the message is clearer without the API path.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// isNotFound reports whether err is the API's 404 for the object asked
// about: not its 404 for the organization (a mistyped --org), whose own
// message (remoteError.Error) says so.
func isNotFound(err error) bool {
	var re *remoteError
	return errors.As(err, &re) && re.status == http.StatusNotFound && !strings.HasPrefix(re.p.Detail, "no organization")
}

// noRedirects is the HTTP client the CLI reaches rotor and Entra with: it
// follows no redirect, since Go would send the bearer token on to the
// redirect's target, an http:// one included, past the refusal of plain
// HTTP; a redirect is answered as the error it is.
func noRedirects(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
