package api

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// Problem is every error the API answers: an RFC 9457 problem
// (application/problem+json) with rotor's machine-readable class in code.
// type is always about:blank: the status and code say what happened.
type Problem struct {
	Type   string `json:"type" doc:"Always about:blank: status and code say what happened." example:"about:blank"`
	Title  string `json:"title" doc:"The HTTP status text." example:"Not Found"`
	Status int    `json:"status" doc:"The HTTP status code." example:"404"`
	Detail string `json:"detail,omitempty" doc:"What went wrong, in rotor's words; never a secret." example:"no application \"web-storefront\""`
	// Code is the class of the problem: app.Classify's vocabulary
	// (not_found, denied, invalid, ambiguous, no_policy, not_manageable,
	// busy, too_early, unavailable, internal, …), RFC 6750's for refused
	// credentials (invalid_token, insufficient_scope, invalid_request), or
	// rate_limited.
	Code string `json:"code" doc:"rotor's class of the problem, stable for machines: not_found, denied, invalid, ambiguous, no_policy, not_manageable, busy, too_early, unavailable, internal; invalid_token, insufficient_scope, invalid_request, rate_limited for refused credentials." example:"not_found"`
	// Reason is why a credential was refused (internal/auth's Reason);
	// only on those answers.
	Reason string              `json:"reason,omitempty" doc:"Why a bearer credential was refused (expired, audience, signature, …); only on 401, 403 and 429 answers of the bearer check." example:"expired"`
	Errors []*huma.ErrorDetail `json:"errors,omitempty" doc:"Each invalid parameter or field, for validation errors."`
}

func (p *Problem) Error() string { return p.Detail }

// GetStatus implements huma.StatusError.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType implements huma.ContentTypeFilter: problems are
// application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

func newProblem(status int, code, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: statusText(status), Status: status, Detail: detail, Code: code}
}

func statusText(status int) string {
	if status == 499 {
		return "Client Closed Request"
	}
	return http.StatusText(status)
}

// codeOf is the code of a problem huma makes itself (a parameter it
// could not read, a body that does not validate).
func codeOf(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "invalid"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType, http.StatusNotAcceptable:
		return "unsupported_media_type"
	}
	if status >= 500 {
		return "internal"
	}
	return "invalid"
}

var problemsOnce sync.Once

// useProblems makes huma's own errors (validation, unreadable bodies)
// Problems too, so that the document describes one error shape and every
// answer has it. huma's error constructor is a package variable; rotor
// has one huma API per process, and sets it once.
func useProblems() {
	problemsOnce.Do(func() {
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			p := newProblem(status, codeOf(status), msg)
			for _, e := range errs {
				if e == nil {
					continue
				}
				if d, ok := e.(huma.ErrorDetailer); ok {
					p.Errors = append(p.Errors, d.ErrorDetail())
				} else {
					p.Errors = append(p.Errors, &huma.ErrorDetail{Message: e.Error()})
				}
			}
			return p
		}
	})
}

// writeProblem answers outside huma (routes the document does not have).
func writeProblem(w http.ResponseWriter, _ *http.Request, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(newProblem(status, code, detail))
}
