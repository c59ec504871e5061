package signin_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store"
)

// graphTap wraps rotor's HTTP client to Entra and Graph: it records the
// path and the bearer token's claims of every Graph request to /me/…,
// and answers ownedObjects with fail's status instead when fail is set
// (Graph's outage, without breaking the sign-in before it).
type graphTap struct {
	mu    sync.Mutex
	calls []graphCall
	fail  int
}

type graphCall struct {
	path     string
	claims   map[string]any
	rawToken string
}

func (g *graphTap) client(base *http.Client) *http.Client {
	c := *base
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = roundTrip(func(req *http.Request) (*http.Response, error) {
		if !strings.Contains(req.URL.Path, "/me/") {
			return next.RoundTrip(req)
		}
		g.mu.Lock()
		auth := req.Header.Get("Authorization")
		g.calls = append(g.calls, graphCall{path: req.URL.Path + "?" + req.URL.RawQuery, claims: jwtClaims(auth), rawToken: strings.TrimPrefix(auth, "Bearer ")})
		fail := g.fail
		g.mu.Unlock()
		if fail != 0 && strings.Contains(req.URL.Path, "/ownedObjects") {
			return &http.Response{StatusCode: fail, Status: http.StatusText(fail), Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"error":{"code":"serviceUnavailable"}}`)), Request: req}, nil
		}
		return next.RoundTrip(req)
	})
	return &c
}

func (g *graphTap) take() []graphCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.calls
	g.calls = nil
	return c
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// jwtClaims reads a bearer token's payload (unverified: the simulator
// issued it; the test only reads who it is for).
func jwtClaims(auth string) map[string]any {
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// own makes user an owner of the named applications of the simulator's
// tenant, and returns their object ids (sorted).
func (r *rotor) own(t *testing.T, user string, apps ...string) []string {
	t.Helper()
	u, ok := r.tn.User(user)
	require.True(t, ok)
	world := r.sim.Server.World()
	var ids []string
	world.Update(func() {
		for _, a := range world.TenantLocked(r.tn.ID).Apps {
			if slices.Contains(apps, a.DisplayName) {
				if !a.OwnedBy(u.ObjectID) {
					a.Owners = append(a.Owners, u.ObjectID)
				}
				ids = append(ids, strings.ToLower(a.ObjectID))
			}
		}
	})
	require.Len(t, ids, len(apps))
	slices.Sort(ids)
	return ids
}

// storedSession is the session row of the browser's cookie.
func (b *browser) storedSession() *store.Session {
	b.t.Helper()
	c := b.cookie("__Host-rotor_session")
	require.NotNil(b.t, c)
	token, o, ok := strings.Cut(c.Value, ".")
	require.True(b.t, ok)
	h := sha256.Sum256([]byte(token))
	s, err := b.r.store.GetSession(b.t.Context(), org, h[:])
	require.NoError(b.t, err)
	require.Equal(b.t, string(org), o)
	return s
}

// TestSignInKeepsTheApplicationsTheUserOwns: with the organization's
// owned_apps_only on, a member's sign-in reads /me/ownedObjects with the
// member's own delegated token and the session keeps exactly the ids it
// listed; an Admin's sign-in does not ask, and nor does anyone's with the
// setting off. A Graph failure fails the sign-in with a page that says
// why, logged at WARN with Graph's status and no token.
func TestSignInKeepsTheApplicationsTheUserOwns(t *testing.T) {
	r := setup(t)
	owned := r.own(t, "oscar", "web-checkout", "web-customer-portal")
	r.ownedOnly.Store(true)
	oscar, _ := r.tn.User("oscar")

	t.Run("MemberIsRestrictedToWhatGraphSaysTheyOwn", func(t *testing.T) {
		b := r.browser(t)
		r.graph.take()
		resp, page := b.signIn("oscar", "?return_to=/whoami")
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		s := b.storedSession()
		require.True(t, s.OwnedOnly)
		got := slices.Clone(s.OwnedObjectIDs)
		slices.Sort(got)
		require.Equal(t, owned, got)

		calls := r.graph.take()
		i := slices.IndexFunc(calls, func(c graphCall) bool { return strings.Contains(c.path, "/me/ownedObjects") })
		require.GreaterOrEqual(t, i, 0, "rotor asked Graph: %+v", calls)
		c := calls[i]
		require.Contains(t, c.path, "/me/ownedObjects/microsoft.graph.application?")
		require.Contains(t, c.path, "$select=id,appId")
		require.Equal(t, oscar.ObjectID, c.claims["oid"], "the person's own delegated token, not rotor's identity")
		require.Contains(t, c.claims["scp"], "User.Read")
		require.Nil(t, c.claims["roles"], "no application permission: a delegated token")

		resp, who := b.get(r.srv.URL + "/whoami")
		require.Equal(t, http.StatusOK, resp.StatusCode, who)
		require.Contains(t, who, "operator")
	})

	t.Run("OwnsNothingIsRestrictedToNothing", func(t *testing.T) {
		b := r.browser(t)
		resp, page := b.signIn("gus", "?return_to=/whoami") // an Operator by group, owning nothing
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		s := b.storedSession()
		require.True(t, s.OwnedOnly)
		require.NotNil(t, s.OwnedObjectIDs)
		require.Empty(t, s.OwnedObjectIDs)
	})

	t.Run("AdminIsNeverRestricted", func(t *testing.T) {
		r.own(t, "ada", "api-orders")
		b := r.browser(t)
		r.graph.take()
		resp, page := b.signIn("ada", "?return_to=/whoami")
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		s := b.storedSession()
		require.False(t, s.OwnedOnly)
		require.Nil(t, s.OwnedObjectIDs)
		require.Empty(t, r.graph.take(), "no Graph call for an Admin")
	})

	t.Run("GraphFailureFailsTheSignIn", func(t *testing.T) {
		r2 := setup(t)
		r2.ownedOnly.Store(true)
		r2.graph.mu.Lock()
		r2.graph.fail = http.StatusServiceUnavailable
		r2.graph.mu.Unlock()
		b := r2.browser(t)
		resp, page := b.signIn("oscar", "?return_to=/whoami")
		require.Equal(t, http.StatusBadGateway, resp.StatusCode, page)
		require.Contains(t, page, "only the applications you own")
		require.Nil(t, b.cookie("__Host-rotor_session"), "no session: not silently 'owns nothing'")
		logs := r2.logs.String()
		require.Contains(t, logs, "level=WARN msg=\"sign-in refused\" reason=owned_applications")
		require.Contains(t, logs, "graph_status=503")
		for _, c := range r2.graph.take() {
			tok := strings.Split(c.rawToken, ".")
			require.NotContains(t, logs, tok[len(tok)-1], "no token in the log")
		}
	})

	t.Run("SettingOffIsUnrestricted", func(t *testing.T) {
		r.ownedOnly.Store(false)
		defer r.ownedOnly.Store(true)
		b := r.browser(t)
		r.graph.take()
		resp, page := b.signIn("oscar", "?return_to=/whoami")
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		require.False(t, b.storedSession().OwnedOnly)
		for _, c := range r.graph.take() {
			require.NotContains(t, c.path, "ownedObjects")
		}
	})
}

// lockedBuffer is a log sink the handler's goroutines write to while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
