package session

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// continuePage is a page that sends the browser on to a local URL by
// itself. Its navigation starts on rotor's own page, so it is same-site
// and carries the SameSite=Strict session cookie, which a redirect chain
// begun on another site (Entra's sign-in, a link in a mail) does not.
var continuePage = template.Must(template.New("continue").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.Target}}">
<title>rotor</title></head><body><p>{{.Message}} <a href="{{.Target}}">Continue</a></p></body></html>
`))

// WriteContinue answers with a page that moves on to target, a local path
// (LocalPath), at once.
func WriteContinue(w http.ResponseWriter, target, message string) {
	if p, ok := LocalPath(target); ok {
		target = p
	} else {
		target = "/"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(http.StatusOK)
	_ = continuePage.Execute(w, struct{ Target, Message string }{target, message})
}

// LocalPath accepts a path on rotor itself ("/apps?x=1") and refuses
// anything that would leave it: an absolute URL, a scheme-relative
// "//host", a backslash that browsers read as a slash, control
// characters. It is what a return_to parameter must be, so sign-in is
// never an open redirect.
func LocalPath(s string) (string, bool) {
	if s == "" || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n\t") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	return s, true
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
