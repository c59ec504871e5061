package auth_test

import (
	"net/http"
	"testing"

	"github.com/rotor-dev/rotor/internal/auth"
)

// FuzzValidate feeds the Validator arbitrary bearer tokens: it never
// panics, refuses with a typed *auth.Error, and accepts nothing but a
// token the simulator signed for the API.
func FuzzValidate(f *testing.F) {
	b := setupFuzz(f)
	genuine := b.genuine
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := b.v.Validate(t.Context(), tok)
		if err == nil {
			if p == nil || tok != genuine {
				t.Fatalf("accepted a token that is not the genuine one")
			}
			return
		}
		ae, ok := err.(*auth.Error)
		if !ok {
			t.Fatalf("refusal is %T, not *auth.Error", err)
		}
		if s := ae.HTTPStatus(); s != http.StatusUnauthorized && s != http.StatusForbidden && s != http.StatusServiceUnavailable {
			t.Fatalf("refusal status %d", s)
		}
	})
}

// fuzzBundle is a simulator with rotor's API and a Validator for it, and
// one genuine token.
type fuzzBundle struct {
	v       *auth.Validator
	genuine string
}

func setupFuzz(f *testing.F) *fuzzBundle {
	f.Helper()
	b := setup(f)
	return &fuzzBundle{v: b.v, genuine: b.adminToken(f)}
}
