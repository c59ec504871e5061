// Package arm is the simulated Azure Resource Manager. For now it is a
// stub that checks the bearer token as ARM does and answers every call with
// ARM's 404: the place where ARM surfaces (VMs, Automation, …) will be
// simulated, each as its routes here or a package of its own.
package arm

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// Service is the ARM stub.
type Service struct {
	*core.Core
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// Register serves ARM under /arm/ on the main listener.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	r.Handle("/arm/", s.WithFaults(nil, http.HandlerFunc(s.serveARM)))
	return nil
}

// Started publishes ARM's base URL and audience.
func (s *Service) Started(info *simfile.Info) error {
	info.ARMURL = info.AuthorityHost + "arm/"
	info.ARMAudience = core.ARMResource
	return nil
}

// serveARM answers every Resource Manager call with ARM's 404 shape until
// the ARM surfaces are simulated. The bearer token is checked first, as
// ARM does, so a client's ARM credential is exercised even against the
// stub and a bad token is never mistaken for a missing resource.
func (s *Service) serveARM(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		armUnauthorized(w, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return
	}
	if _, err := s.Authenticate(r, core.ARMResource); err != nil {
		msg := "The access token is invalid."
		var ae *core.AuthError
		if errors.As(err, &ae) && ae.Message != "" {
			msg = ae.Message
		}
		armUnauthorized(w, "InvalidAuthenticationToken", msg)
		return
	}
	core.WriteJSON(w, http.StatusNotFound, core.PlainJSON, map[string]any{"error": map[string]any{
		"code":    "NotFound",
		"message": fmt.Sprintf("The simulator does not implement %s %s.", r.Method, r.URL.Path),
	}})
}

// armUnauthorized is ARM's 401: the error body and the bearer challenge
// naming the authority, as management.azure.com sends them.
func armUnauthorized(w http.ResponseWriter, code, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="`+strings.ReplaceAll(msg, `"`, `'`)+`"`)
	core.WriteJSON(w, http.StatusUnauthorized, core.PlainJSON, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}
