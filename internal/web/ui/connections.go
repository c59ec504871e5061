package ui

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/rotor-dev/rotor/internal/app"
)

type connectionsView struct {
	layout
	Rows []connectionRow
	// Test is the result of the Test button just pressed (nil: none).
	Test *connectionTest
}

type connectionRow struct {
	app.Connection
	// TestURL is where its Test button posts.
	TestURL string
}

// connectionTest is what signing a connection in just now showed.
type connectionTest struct {
	app.SignIn
	OK bool
	// Error is Entra's refusal (the AADSTS code and message; never a
	// secret: the identity's errors carry none).
	Error string
}

func (u *UI) testURL(name string) string {
	return u.base + "/connections/" + url.PathEscape(name) + "/test"
}

// connections lists the organization's connections with their health as
// recorded, each with a Test button.
func (u *UI) connections(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	u.renderConnections(w, r, scope, nil)
}

func (u *UI) renderConnections(w http.ResponseWriter, r *http.Request, scope app.Scope, test *connectionTest) {
	conns, err := u.app.ListConnections(r.Context(), scope)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := connectionsView{layout: u.frame(r, "connections", "Connections"), Test: test, Rows: make([]connectionRow, 0, len(conns))}
	for _, c := range conns {
		v.Rows = append(v.Rows, connectionRow{Connection: c, TestURL: u.testURL(c.Name)})
	}
	u.render(w, r, http.StatusOK, "connections", "layout.html", v)
}

// testConnection signs the named connection in now (app.TestConnection,
// whose role check is the application layer's) and shows what happened.
// The result is the POST's answer itself, not a redirect: it is an answer
// to a question (what does Entra say now?), not a state to come back to,
// and the health it recorded shows in the table on the next visit anyway.
// htmx asks for the result alone.
func (u *UI) testConnection(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	name := r.PathValue("name")
	in, err := u.app.TestConnection(r.Context(), scope, name)
	var (
		denied  *app.DeniedError
		nf      *app.NotFoundError
		unavail *app.UnavailableError
	)
	if errors.As(err, &denied) || errors.As(err, &nf) || errors.As(err, &unavail) {
		u.fail(w, r, err)
		return
	}
	t := &connectionTest{SignIn: in, OK: err == nil}
	t.Connection = name
	if err != nil {
		t.Error = err.Error()
	}
	if fragment(r) {
		u.render(w, r, http.StatusOK, "connections", "connection-test", t)
		return
	}
	u.renderConnections(w, r, scope, t)
}
