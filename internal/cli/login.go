package cli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/rotor-dev/rotor/internal/api"
)

func newLoginCmd() *cobra.Command {
	var (
		server, caFile, cache string
		timeout               time.Duration
		noBrowser             bool
	)
	c := &cobra.Command{
		Use:   "login --server URL",
		Short: "Sign in to a rotor server through your browser, for the commands' --server",
		Long: `Login signs you in to the rotor at URL with Entra ID, as the Azure CLI does:
it reads the server's sign-in settings (GET /api/v1/login-config), opens
your browser on Entra's sign-in page (or prints the URL to open), and
waits for Entra to send the browser back to a port on 127.0.0.1 that only
this command listens on. The code it brings is exchanged for an access
token for rotor's API and a refresh token (the authorization code flow
with PKCE, as a public client: no secret is involved).

The tokens are kept in the user config directory (rotor/tokens.json,
readable by you only), per server, and renewed with the refresh token
when they expire. Every command that takes --server then uses them;
$ROTOR_TOKEN, when set, wins. What you may do is what the app roles an
Entra admin assigned you on rotor's API grant (docs/api-auth.md).
'rotor logout --server URL' forgets them.

Plain http is accepted for a server on a loopback address only (rotor
demo). --ca-file trusts a private certificate authority for the sign-in
endpoints (the simulator's, with rotor demo).`,
		Example: `  rotor login --server https://rotor.example.com
  rotor login --server http://127.0.0.1:8080 --ca-file /tmp/rotor-demo-…/sim/ca.pem
  rotor login --server https://rotor.example.com --no-browser   # over SSH: open the URL elsewhere
  rotor apps list --server https://rotor.example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--server URL is required: the rotor to sign in to")}
			}
			if timeout <= 0 {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--timeout must be positive")}
			}
			return login(cmd.Context(), loginOptions{server: server, caFile: caFile, cache: cache, timeout: timeout, browser: !noBrowser,
				out: cmd.OutOrStdout(), msg: cmd.ErrOrStderr()})
		},
	}
	c.Flags().StringVar(&server, "server", os.Getenv("ROTOR_SERVER"), "the rotor to sign in to (env ROTOR_SERVER)")
	c.Flags().StringVar(&caFile, "ca-file", "", "a PEM file of certificate authorities to trust for the sign-in endpoints, besides the system's")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the browser to come back")
	c.Flags().BoolVar(&noBrowser, "no-browser", false, "only print the sign-in URL; do not try to open a browser")
	registerTokenCache(c, &cache, false)
	return c
}

func newLogoutCmd() *cobra.Command {
	var server, cache string
	c := &cobra.Command{
		Use:   "logout --server URL",
		Short: "Forget the tokens 'rotor login' keeps for a server",
		Long: `Logout removes the server's access and refresh tokens from rotor login's
cache. The tokens themselves stay valid until they expire (an access token
within the hour); to end every session at once, an Entra admin revokes
your sessions (Revoke-MgUserSignInSession).`,
		Example: `  rotor logout --server https://rotor.example.com`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--server URL is required")}
			}
			key, err := checkServer(server)
			if err != nil {
				return err
			}
			c, err := openTokenCache(cache)
			if err != nil {
				return err
			}
			if c.file.Servers[key] == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "Not signed in to %s: nothing to forget.\n", key)
				return nil
			}
			delete(c.file.Servers, key)
			if err := c.save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Signed out of %s: its tokens are removed from %s.\n", key, c.path)
			return nil
		},
	}
	c.Flags().StringVar(&server, "server", os.Getenv("ROTOR_SERVER"), "the rotor to sign out of (env ROTOR_SERVER)")
	registerTokenCache(c, &cache, false)
	return c
}

type loginOptions struct {
	server, caFile, cache string
	timeout               time.Duration
	browser               bool
	// out gets the result, msg the instructions (the URL to open).
	out, msg io.Writer
}

// login runs the authorization code flow with PKCE against the server's
// Entra, with a loopback redirect, and keeps the tokens.
func login(ctx context.Context, o loginOptions) error {
	server, err := checkServer(o.server)
	if err != nil {
		return err
	}
	cache, err := openTokenCache(o.cache)
	if err != nil {
		return err
	}
	lc, err := readLoginConfig(ctx, server)
	if err != nil {
		return err
	}
	hc, err := httpClientWithCA(o.caFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// The loopback listener: 127.0.0.1 on a port the system picks, as
	// RFC 8252 §7.3 says (the registration's http://localhost matches any
	// port).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback for the browser's return: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/"
	state, err := randomURLSafe(32)
	if err != nil {
		return err
	}
	verifier := oauth2.GenerateVerifier()
	cfg := oauth2.Config{ClientID: lc.ClientID, Scopes: lc.Scopes, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: lc.AuthorizationEndpoint, TokenURL: lc.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams}}
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "select_account"))

	codes := make(chan callback, 1)
	srv := &http.Server{Handler: callbackHandler(state, codes), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	fmt.Fprintf(o.msg, "To sign in to %s, open this URL in your browser:\n\n  %s\n\nWaiting for the browser to come back to %s (%s at most; Ctrl-C to stop)…\n",
		server, authURL, redirect, o.timeout)
	if o.browser {
		if err := openBrowser(authURL); err == nil {
			fmt.Fprintln(o.msg, "(Your browser was asked to open it.)")
		}
	}

	var cb callback
	select {
	case cb = <-codes:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no sign-in came back within %s: run rotor login again (--timeout to wait longer)", o.timeout)
		}
		return ctx.Err()
	}
	if cb.err != "" {
		return fmt.Errorf("Entra refused the sign-in: %s", cb.err)
	}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, hc), cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return fmt.Errorf("exchange the sign-in's code at %s: %s", lc.TokenEndpoint, oauthReason(err))
	}
	// Ask the server who that is: it proves the token works there before
	// it is kept.
	r := &remote{server: server, base: server + api.Prefix, token: tok.AccessToken, http: noRedirects(time.Minute)}
	var who api.Whoami
	if err := r.get(ctx, "/whoami", nil, &who); err != nil {
		return fmt.Errorf("signed in to Entra, but %w", err)
	}
	cache.put(server, &cacheEntry{TokenEndpoint: lc.TokenEndpoint, ClientID: lc.ClientID, Scopes: lc.Scopes, CAFile: absOrEmpty(o.caFile),
		User: who.Actor.Name}, tok)
	if err := cache.save(); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "Signed in to %s as %s (%s).\n", server, who.Actor.Name, describeRoles(who.Organizations))
	return nil
}

// readLoginConfig asks the server how to sign in; it needs no token.
func readLoginConfig(ctx context.Context, server string) (*api.LoginConfig, error) {
	r := &remote{server: server, base: server + api.Prefix, http: noRedirects(time.Minute)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/login-config", nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s how to sign in: %w", server, redactURLError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var p api.Problem
		if json.Unmarshal(body, &p) == nil && p.Detail != "" {
			return nil, fmt.Errorf("%s: %s", server, p.Detail)
		}
		return nil, fmt.Errorf("%s answered %s to GET %s: is it rotor, and new enough to sign the CLI in?", server, resp.Status, api.LoginConfigPath)
	}
	var lc api.LoginConfig
	if err := json.Unmarshal(body, &lc); err != nil {
		return nil, fmt.Errorf("%s's sign-in settings are not rotor's: %w", server, err)
	}
	for _, e := range []string{lc.AuthorizationEndpoint, lc.TokenEndpoint} {
		if u, err := url.Parse(e); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("%s names a sign-in endpoint that is not https (%q): refused", server, e)
		}
	}
	if lc.ClientID == "" || len(lc.Scopes) == 0 {
		return nil, fmt.Errorf("%s's sign-in settings name no client or scope", server)
	}
	return &lc, nil
}

// callback is what the browser brought back: a code, or Entra's refusal.
type callback struct{ code, err string }

// callbackHandler answers the browser's return on the loopback listener.
// Only a request carrying the state this login sent is believed: another
// page (or program) that sends the browser here with a code of its own
// is refused, and the login keeps waiting.
func callbackHandler(state string, out chan<- callback) http.Handler {
	var (
		mu   sync.Mutex
		done bool
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		q := r.URL.Query()
		if r.Method != http.MethodGet || r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, page("This is not the sign-in rotor login started (its state does not match). Nothing was done."))
			return
		}
		mu.Lock()
		already := done
		done = true
		mu.Unlock()
		if already {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, page("rotor login has already received a sign-in."))
			return
		}
		if e := q.Get("error"); e != "" {
			desc := q.Get("error_description")
			if i := indexLineBreak(desc); i >= 0 {
				desc = desc[:i]
			}
			out <- callback{err: strings.TrimSpace(e + ": " + desc)}
			fmt.Fprint(w, page("Entra refused the sign-in: "+e+". See the terminal."))
			return
		}
		if q.Get("code") == "" {
			out <- callback{err: "the browser came back without a code"}
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, page("No code came back. See the terminal."))
			return
		}
		out <- callback{code: q.Get("code")}
		fmt.Fprint(w, page("You are signed in to rotor's CLI. You can close this tab."))
	})
}

func page(msg string) string {
	return "<!doctype html><meta charset=utf-8><title>rotor login</title><p>" + html.EscapeString(msg) + "</p>\n"
}

// openBrowser asks the desktop to open u; failing is fine (the URL is
// printed).
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

func randomURLSafe(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func absOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// describeRoles says the roles whoami lists: "admin in default".
func describeRoles(orgs map[string]string) string {
	if len(orgs) == 0 {
		return "no role in any organization"
	}
	parts := make([]string, 0, len(orgs))
	for o, r := range orgs {
		parts = append(parts, r+" in "+o)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
