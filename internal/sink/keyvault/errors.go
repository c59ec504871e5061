package keyvault

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/sink"
)

// NotOwnedError is returned when the target secret exists but rotor may not
// overwrite it: it lacks the managed-by=rotor tag and the sink does not
// adopt, or rotor manages it for a different application. Nothing was
// written. It is permanent: retrying cannot help, a person must decide.
type NotOwnedError struct {
	Vault  string
	Secret string
	// Object is "certificate" for an as: certificate sink ("" = secret);
	// Secret is then the certificate's name. Likewise in the other errors.
	Object string
	// OwnerAppID is the rotor-app-id tag of a secret rotor manages for
	// another application; empty for a secret rotor does not manage.
	OwnerAppID string
	// AppID is the application this sink delivers for.
	AppID string
}

// Error explains what to do.
func (e *NotOwnedError) Error() string {
	if e.OwnerAppID != "" {
		return fmt.Sprintf("Key Vault %s %q in %s is managed by rotor for application %s, not %s; "+
			"two sinks render the same %s name — make the template unique (e.g. include {{ .App.AppID }})",
			objectWord(e.Object), e.Secret, e.Vault, e.OwnerAppID, e.AppID, objectWord(e.Object))
	}
	return fmt.Sprintf("Key Vault %s %q exists and is not managed by rotor (no %s=%s tag); "+
		"set adopt: true on the sink to take it over", objectWord(e.Object), e.Secret, TagManagedBy, ManagedByRotor)
}

// DisabledError is returned when the secret's latest version is disabled.
// Someone turned it off; a new enabled version would silently undo that, so
// rotor writes nothing. It is permanent: a person must enable the version or
// delete the secret.
type DisabledError struct {
	Vault  string
	Secret string
	Object string
	// ID is the disabled version's id.
	ID string
}

// Error explains what to do.
func (e *DisabledError) Error() string {
	return fmt.Sprintf("key vault %s: %s %q: the latest version is disabled (%s), so rotor will not write over it; "+
		"enable it or delete the %s", e.Vault, objectWord(e.Object), e.Secret, e.ID, objectWord(e.Object))
}

// DeletedError is returned when the target name is held by a soft-deleted
// secret that rotor may not recover: it lacks the managed-by=rotor tag
// (adopt or not), rotor managed it for another application, or its latest
// version was disabled. Key Vault refuses a new version under the name
// until the deleted secret is recovered or purged, and rotor will not undo
// a deletion of what is not its own, so a person decides. Nothing was
// written. It is permanent.
type DeletedError struct {
	Vault  string
	Secret string
	Object string
	// AppID is the application this sink delivers for.
	AppID string
	// OwnerAppID is the rotor-app-id tag when rotor managed the secret for
	// another application.
	OwnerAppID string
	// Disabled is true when the secret is rotor's but its latest version
	// was disabled before it was deleted.
	Disabled bool
	// Adopt is true when the sink adopts: said, because adopt does not
	// cover recovering.
	Adopt bool
	// Purge is when Key Vault purges the secret by itself; zero if unknown.
	Purge time.Time
}

// Error names the secret, the vault and the fix.
func (e *DeletedError) Error() string {
	var b strings.Builder
	obj := objectWord(e.Object)
	switch {
	case e.OwnerAppID != "":
		fmt.Fprintf(&b, "the %s %s in %s is soft-deleted and was rotor's for application %s, not %s: "+
			"purge it, or make the %s name unique (e.g. include {{ .App.AppID }})", obj, e.Secret, e.Vault, e.OwnerAppID, e.AppID, obj)
	case e.Disabled:
		fmt.Fprintf(&b, "the %s %s in %s is soft-deleted and its latest version was disabled: "+
			"recover it and enable that version, or purge it, or point the policy at another name", obj, e.Secret, e.Vault)
	default:
		fmt.Fprintf(&b, "the %s %s in %s is soft-deleted and was not made by rotor: "+
			"recover or purge it, or point the policy at another name", obj, e.Secret, e.Vault)
		if e.Adopt {
			b.WriteString(" (adopt takes over a live secret once it is recovered; rotor does not undo someone's deletion)")
		}
	}
	if !e.Purge.IsZero() {
		fmt.Fprintf(&b, "; Key Vault keeps the name reserved until it purges the %s on %s", obj, e.Purge.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// PermissionError is a request Key Vault refused for the identity itself
// (HTTP 401 or 403), or Entra refused the connection's credential (token
// response 400, 401 or 403). It is permanent until someone grants access or
// fixes the credential.
type PermissionError struct {
	// Op is the operation: "list" (the secret's versions), "list deleted"
	// (the vault's deleted secrets), "recover" (rotor's own soft-deleted
	// secret) or "set".
	Op         string
	Vault      string
	Secret     string
	Object     string
	Connection string
	// StatusCode is the HTTP status: 401 or 403 from Key Vault, 400, 401
	// or 403 from Entra.
	StatusCode int
	// Code is Key Vault's error code, e.g. "Forbidden".
	Code string
	// Message is the service's message (never holds a secret value).
	Message string
	// TokenFailed is true when Entra refused the connection's own
	// credential, so no request reached the vault.
	TokenFailed bool
	Err         error
}

// Error names the identity's connection and what it needs.
func (e *PermissionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "key vault %s: %s %s %q: ", e.Vault, e.Op, objectWord(e.Object), e.Secret)
	if e.TokenFailed {
		fmt.Fprintf(&b, "no token for connection %q", e.Connection)
		if e.StatusCode != 0 {
			fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
		}
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		} else if e.StatusCode == 0 && e.Err != nil {
			fmt.Fprintf(&b, ": %v", e.Err)
		}
		b.WriteString("; check the connection's credential")
		return b.String()
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	} else if e.Err != nil {
		fmt.Fprintf(&b, "%v", e.Err)
	}
	if e.Object == AsCertificate {
		fmt.Fprintf(&b, "; the identity of connection %q needs to get, list, import and recover certificates on the vault "+
			"(it never reads the private key): the Key Vault Certificates Officer role, or get, list, import and recover "+
			"certificate permissions in its access policy", e.Connection)
		return b.String()
	}
	if e.Op == opRecover {
		fmt.Fprintf(&b, "; the secret is rotor's own and was soft-deleted, and bringing it back before the new version is written "+
			"needs the recover permission: give the identity of connection %q the Key Vault Secrets Officer role, "+
			"a custom role with the secrets/recover data action, or the recover secret permission in its access policy "+
			"(or purge the deleted secret, and rotor writes a new one)", e.Connection)
		return b.String()
	}
	fmt.Fprintf(&b, "; the identity of connection %q needs to list, set and recover secrets on the vault (it never gets a value): "+
		"the Key Vault Secrets Officer role, a custom role with the secrets/readMetadata, secrets/setSecret and secrets/recover data actions, "+
		"or list, set and recover secret permissions in its access policy", e.Connection)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *PermissionError) Unwrap() error { return e.Err }

// RequestError is any other failed Key Vault request.
type RequestError struct {
	Op     string
	Vault  string
	Secret string
	Object string
	// StatusCode is the HTTP status, 0 when there was no response (network
	// error, cancelled context).
	StatusCode int
	Code       string
	Message    string
	// Hint says what to do, when rotor knows.
	Hint string
	Err  error
}

// Error describes the failure.
func (e *RequestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "key vault %s: %s %s %q: ", e.Vault, e.Op, objectWord(e.Object), e.Secret)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	} else if e.Err != nil {
		fmt.Fprintf(&b, "%v", e.Err)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *RequestError) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same request cannot succeed: a
// client error other than 408 Request Timeout, 409 Conflict (Key Vault
// uses it for a secret that is being deleted or recovered) and 429.
// 5xx and 429 are retried by azcore already, and may pass later.
func (e *RequestError) Permanent() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return false
	}
	return e.StatusCode >= 400 && e.StatusCode < 500
}

// Every error the sink returns says whether it is permanent: the rotation
// asks sink.IsPermanent, and stops retrying to tell a person.
var (
	_ sink.Classified = (*NotOwnedError)(nil)
	_ sink.Classified = (*DisabledError)(nil)
	_ sink.Classified = (*DeletedError)(nil)
	_ sink.Classified = (*PermissionError)(nil)
	_ sink.Classified = (*RequestError)(nil)
)

// Permanent is true: a person must decide (adopt, or make the name unique).
func (e *NotOwnedError) Permanent() bool { return true }

// Permanent is true: a person must enable the version or delete the secret.
func (e *DisabledError) Permanent() bool { return true }

// Permanent is true: a person must recover, purge or rename.
func (e *DeletedError) Permanent() bool { return true }

// Permanent is true until someone grants access or fixes the credential.
func (e *PermissionError) Permanent() bool { return true }

// objectTag is the Object field of the sink's errors: "" for a secret.
func (s *Sink) objectTag() string {
	if s.as == AsCertificate {
		return AsCertificate
	}
	return ""
}

// objectWord is "secret" or "certificate".
func objectWord(object string) string {
	if object == "" {
		return AsSecret
	}
	return object
}

// redacted replaces a secret value found in an error message.
const redacted = "[REDACTED]"

// scrubbedError stands in for an error whose message contained the secret
// value. It deliberately has no Unwrap: the original must not be reachable.
type scrubbedError struct{ msg string }

func (e *scrubbedError) Error() string { return e.msg }

// serviceError is what Key Vault's error body says.
type serviceError struct {
	status  int
	code    string
	message string
	inner   string
}

// classify turns an azsecrets error into a *PermissionError or
// *RequestError. value is the secret being written ("" for reads); if any
// part of err mentions it — a proxy or a service echoing the request — that
// part is replaced, so no error rotor returns holds the value.
//
// A failed token request (*azidentity.AuthenticationFailedError) is a
// PermissionError only when Entra answered 400, 401 or 403, i.e. refused
// the credential itself. azidentity uses the same type for a token request
// that got no answer (network error: status 0) or a 429 or 5xx after its
// retries; those become a RequestError with that status, which is not
// permanent.
func (s *Sink) classify(op string, err error, value string) error {
	var se serviceError
	var re *azcore.ResponseError
	var afe *azidentity.AuthenticationFailedError
	auth := false
	switch {
	case errors.As(err, &re):
		se = readServiceError(re)
	case errors.As(err, &afe):
		auth = true
		te := azure.ParseTokenError(afe)
		se = serviceError{status: te.Status, code: te.OAuthError, message: te.Description}
	}
	if value != "" {
		if strings.Contains(err.Error(), value) {
			err = &scrubbedError{msg: strings.ReplaceAll(err.Error(), value, redacted)}
		}
		se.message = strings.ReplaceAll(se.message, value, redacted)
	}
	if auth {
		switch se.status {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			// Entra refused the connection's own credential: no token, no request.
			return &PermissionError{Op: op, Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), Connection: s.connection,
				StatusCode: se.status, Code: se.code, Message: se.message, TokenFailed: true, Err: err}
		}
		// No token, but not a refusal: Entra unreachable, throttling or failing.
		return &RequestError{Op: op, Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), StatusCode: se.status, Code: se.code,
			Message: se.message, Err: err,
			Hint: fmt.Sprintf("no token for connection %q: the token request failed; it may pass later", s.connection)}
	}
	if se.status == http.StatusUnauthorized || se.status == http.StatusForbidden {
		if se.inner == "SecretDisabled" {
			return &RequestError{Op: op, Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), StatusCode: se.status, Code: se.code,
				Message: se.message, Err: err,
				Hint: "the secret version is disabled; enable it or delete the secret"}
		}
		return &PermissionError{Op: op, Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), Connection: s.connection,
			StatusCode: se.status, Code: se.code, Message: se.message, Err: err}
	}
	out := &RequestError{Op: op, Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), StatusCode: se.status, Code: se.code, Message: se.message, Err: err}
	if se.status == http.StatusConflict && s.as != AsCertificate {
		out.Hint = "Key Vault is deleting or recovering a secret of this name, or one is waiting in soft delete; " +
			"rotor recovers its own at the next attempt, anything else must be recovered or purged"
	}
	return out
}

// readServiceError reads Key Vault's {"error":{"code","message","innererror":{"code"}}}.
func readServiceError(re *azcore.ResponseError) serviceError {
	se := serviceError{status: re.StatusCode, code: re.ErrorCode}
	if re.RawResponse == nil {
		return se
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil || len(body) == 0 {
		return se
	}
	var e struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return se
	}
	if se.code == "" {
		se.code = e.Error.Code
	}
	se.message = firstLine(e.Error.Message)
	if e.Error.InnerError != nil {
		se.inner = e.Error.InnerError.Code
	}
	return se
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
