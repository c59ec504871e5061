package sim

import "net/http"

// keyVaultHandler is a temporary stub until keyvault.go lands. DELETE ME.
func (s *Server) keyVaultHandler() http.Handler { return http.NotFoundHandler() }
