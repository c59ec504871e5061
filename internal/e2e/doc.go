// Package e2e holds rotor's end-to-end tests: the real rotor binary, the
// real simulator over HTTPS, real SQLite, and Microsoft's own SDK clients
// checking the outcome. The crash-safety test lives here.
package e2e
