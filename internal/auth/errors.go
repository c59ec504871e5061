package auth

import (
	"encoding/json"
	"net/http"
)

// Reason says why a bearer credential was refused, in a fixed vocabulary:
// what a log line and a response say, never the credential.
type Reason string

// Reasons.
const (
	ReasonMissing     Reason = "missing"
	ReasonTokenInURL  Reason = "token_in_url"
	ReasonMalformed   Reason = "malformed"
	ReasonAlgorithm   Reason = "algorithm"
	ReasonUnknownKey  Reason = "unknown_key"
	ReasonSignature   Reason = "signature"
	ReasonIssuer      Reason = "issuer"
	ReasonAudience    Reason = "audience"
	ReasonExpired     Reason = "expired"
	ReasonNotYetValid Reason = "not_yet_valid"
	ReasonClaims      Reason = "claims"
	ReasonRevoked     Reason = "revoked"
	ReasonNoRole      Reason = "no_role"
	ReasonUnavailable Reason = "unavailable"
	ReasonDisabled    Reason = "disabled"
	ReasonRateLimited Reason = "rate_limited"
)

// descriptions are what a client is told: nothing it sent, nothing about
// rotor's configuration it could not learn from Entra's documents.
var descriptions = map[Reason]string{
	ReasonMissing:     "a bearer token or API key is required",
	ReasonTokenInURL:  "credentials are not accepted in the URL; send them in the Authorization header",
	ReasonMalformed:   "the token is malformed",
	ReasonAlgorithm:   "the token's signing algorithm is not accepted (RS256 only)",
	ReasonUnknownKey:  "the token is signed with an unknown key",
	ReasonSignature:   "the token's signature is invalid",
	ReasonIssuer:      "the token's issuer is not accepted",
	ReasonAudience:    "the token is not for this API",
	ReasonExpired:     "the token is expired",
	ReasonNotYetValid: "the token is not valid yet",
	ReasonClaims:      "the token lacks required claims or is of a kind not accepted",
	ReasonRevoked:     "the key is revoked",
	ReasonNoRole:      "the caller holds no role in rotor",
	ReasonUnavailable: "credentials cannot be checked right now",
	ReasonDisabled:    "this kind of credential is not accepted here",
	ReasonRateLimited: "too many requests from this caller",
}

// Error is a refused credential. Its message is the Reason's description;
// the cause (Unwrap) is for errors.Is and never carries the credential
// either, but is not shown to clients.
type Error struct {
	Reason Reason
	// Err is what went wrong underneath, if anything.
	Err error
}

func (e *Error) Error() string { return "auth: " + descriptions[e.Reason] }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is 401 for a credential that does not prove who the caller
// is, 403 for a genuine one that grants no role, 400 for a credential in
// the URL, 503 when it cannot be checked now and 429 for a caller over
// its rate.
func (e *Error) HTTPStatus() int {
	switch e.Reason {
	case ReasonNoRole:
		return http.StatusForbidden
	case ReasonTokenInURL:
		return http.StatusBadRequest
	case ReasonUnavailable:
		return http.StatusServiceUnavailable
	case ReasonRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusUnauthorized
}

// oauthError is RFC 6750's error code for the reason ("" for a request
// without credentials, which gets none).
func (e *Error) oauthError() string {
	switch e.Reason {
	case ReasonMissing:
		return ""
	case ReasonNoRole:
		return "insufficient_scope"
	case ReasonTokenInURL:
		return "invalid_request"
	}
	return "invalid_token"
}

func refuse(r Reason, err error) *Error { return &Error{Reason: r, Err: err} }

// Realm is the realm rotor names in WWW-Authenticate.
const Realm = "rotor"

// WriteError answers a refused request: the status the error carries, a
// WWW-Authenticate challenge (RFC 6750) on 401, 403 and 400, and an RFC
// 9457 problem (application/problem+json) in the shape of every other
// answer of rotor's API: type, title, status, detail, and code, rotor's
// machine-readable class (the RFC 6750 error code, or the reason where
// RFC 6750 has none), with the reason beside it. None of it says
// anything the client sent.
func WriteError(w http.ResponseWriter, err *Error) {
	status := err.HTTPStatus()
	if status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusBadRequest {
		ch := `Bearer realm="` + Realm + `"`
		if code := err.oauthError(); code != "" {
			ch += `, error="` + code + `", error_description="` + descriptions[err.Reason] + `"`
		}
		w.Header().Set("WWW-Authenticate", ch)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	code := err.oauthError()
	if code == "" || status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		code = string(err.Reason)
	}
	_ = json.NewEncoder(w).Encode(problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: descriptions[err.Reason],
		Code: code, Reason: string(err.Reason),
	})
}

// problem is an RFC 9457 problem with rotor's code and the refusal's
// reason.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}
