package session_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
	"github.com/rotor-dev/rotor/internal/web/session"
)

func TestLocalPathRefusesEverythingThatLeavesRotor(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"/", "/apps", "/apps?expiring=30d#x", "/a/b/../c"} {
		_, good := session.LocalPath(ok)
		require.True(t, good, ok)
	}
	for _, bad := range []string{"", "apps", "//evil.example.com", "/\\evil.example.com", "https://evil.example.com/",
		"/x\r\nSet-Cookie: a=b", "javascript:alert(1)", "\\\\evil", "/" + strings.Repeat("a", 3000)} {
		_, good := session.LocalPath(bad)
		require.False(t, good, bad)
	}
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "https://x/", "/a?b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := session.LocalPath(s)
		if !ok {
			return
		}
		u, err := url.Parse(p)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
			t.Fatalf("LocalPath accepted %q", s)
		}
	})
}

func newManager(t testing.TB) (*session.Manager, *clock.Fake) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.EnsureOrg(t.Context(), "default", "Default"))
	clk := clock.NewFake(time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC))
	m, err := session.New(session.Config{Store: st, Clock: clk})
	require.NoError(t, err)
	return m, clk
}

func TestStartLoadEnd(t *testing.T) {
	t.Parallel()
	m, clk := newManager(t)
	w := httptest.NewRecorder()
	planted := &http.Cookie{Name: m.CookieName(), Value: strings.Repeat("A", 43) + ".default"}
	r := httptest.NewRequest(http.MethodGet, "https://rotor.example.com/", nil)
	r.AddCookie(planted)
	s, err := m.Start(w, r, session.Identity{Org: "default", Method: session.MethodEntra, Subject: "u", Role: app.RoleViewer})
	require.NoError(t, err)
	require.Equal(t, clk.Now().Add(session.DefaultLifetime), s.ExpiresAt)
	c := w.Result().Cookies()[0]
	require.NotEqual(t, planted.Value, c.Value, "a fresh id, never the one the browser brought")

	r = httptest.NewRequest(http.MethodGet, "https://rotor.example.com/", nil)
	r.AddCookie(c)
	got, err := m.Load(r)
	require.NoError(t, err)
	require.Equal(t, app.RoleViewer, got.Role)
	require.Equal(t, "user:u", got.Actor().String())

	_, err = m.Start(w, r, session.Identity{Org: "default", Method: "password", Subject: "u", Role: app.RoleViewer})
	require.Error(t, err, "only entra and local")
	_, err = m.Start(w, r, session.Identity{Org: "default", Method: session.MethodLocal, Subject: "u", Role: "root"})
	require.Error(t, err)

	require.NoError(t, m.End(httptest.NewRecorder(), r))
	_, err = m.Load(r)
	require.ErrorIs(t, err, session.ErrNoSession)
}

func FuzzSessionCookie(f *testing.F) {
	m, _ := newManager(f)
	for _, s := range []string{"", ".", "a.b", strings.Repeat("A", 43) + ".default", strings.Repeat("A", 43) + ".", "x.default.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest(http.MethodGet, "https://rotor.example.com/", nil)
		r.Header.Set("Cookie", m.CookieName()+"="+v)
		if s, err := m.Load(r); err == nil || s != nil {
			t.Fatalf("a made-up cookie %q found a session", v)
		}
	})
}
