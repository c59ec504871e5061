// Package ado is what the two Azure DevOps sinks (adoconnection,
// adovariables) share: the spec keys that say which organization and
// project and how to sign in (a PAT or an Entra token for Azure DevOps),
// and a small REST client for api-version 7.1 that classifies Azure
// DevOps' answers (203 sign-in page, 401/403, 429 with Retry-After, 5xx)
// as sink errors that never hold a secret value.
package ado

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Resource is Azure DevOps' Entra application id; Scope is what a token
// for it is asked with.
const (
	Resource   = "499b84ac-1321-427f-aa17-267ca6975798"
	Scope      = Resource + "/.default"
	APIVersion = "7.1"
)

// Spec keys both sinks share.
const (
	KeyOrganizationURL = "organization_url"
	KeyProject         = "project"
	KeyPAT             = "pat"
	KeyEntra           = "entra"
	KeyConnection      = "connection"
	KeyAdopt           = sink.KeyAdopt
)

// CommonKeys are the shared keys, for a kind's list of known keys.
var CommonKeys = []string{KeyAdopt, KeyConnection, KeyEntra, KeyOrganizationURL, KeyPAT, KeyProject}

// Common is the checked shared part of a spec.
type Common struct {
	// OrgURL is the organization's URL without a trailing slash, e.g.
	// https://dev.azure.com/contoso.
	OrgURL  string
	Project string
	// PAT, when set, is the personal access token's reference; else the
	// sink signs in with an Entra token of Connection ("" = the policy's).
	PAT        *sink.SecretRef
	Connection string
	Adopt      bool
}

// SpecError is a problem with one setting of an Azure DevOps sink spec.
type SpecError struct {
	Kind, Key, Msg string
}

func (e *SpecError) Error() string {
	if e.Key == "" {
		return e.Kind + " sink: " + e.Msg
	}
	return fmt.Sprintf("%s sink: %s: %s", e.Kind, e.Key, e.Msg)
}

// Spec helps a kind check its settings and collect every problem at once.
type Spec struct {
	Kind     string
	Settings map[string]any
	Errs     []error
}

// Bad records a problem with key.
func (p *Spec) Bad(key, format string, args ...any) {
	p.Errs = append(p.Errs, &SpecError{Kind: p.Kind, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Unknown records every setting not in known.
func (p *Spec) Unknown(known []string) {
	var unknown []string
	for k := range p.Settings {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		k := slices.Clone(known)
		sort.Strings(k)
		p.Bad("", "unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(k, ", "))
	}
}

// String returns a string setting; a missing required one is a problem.
func (p *Spec) String(key string, required bool) (string, bool) {
	v, ok := p.Settings[key]
	if !ok || v == nil {
		if required {
			p.Bad(key, "is required")
		}
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		// An id written without quotes in YAML arrives as a number.
		switch n := v.(type) {
		case int:
			return strconv.Itoa(n), true
		case int64:
			return strconv.FormatInt(n, 10), true
		case uint64:
			return strconv.FormatUint(n, 10), true
		case float64:
			if n == float64(int64(n)) {
				return strconv.FormatInt(int64(n), 10), true
			}
		}
		p.Bad(key, "must be a string, got %T", v)
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		p.Bad(key, "must not be empty")
		return "", false
	}
	return strings.TrimSpace(s), true
}

// Bool returns a boolean setting, false when absent.
func (p *Spec) Bool(key string) bool {
	v, ok := p.Settings[key]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		p.Bad(key, "must be true or false, got %T %v", v, v)
	}
	return b
}

// Err is every problem found, joined; nil when there is none.
func (p *Spec) Err() error { return errors.Join(p.Errs...) }

// Common checks the shared keys.
func (p *Spec) Common() Common {
	var c Common
	if v, ok := p.String(KeyOrganizationURL, true); ok {
		u, err := CheckOrgURL(v)
		if err != nil {
			p.Bad(KeyOrganizationURL, "%v", err)
		}
		c.OrgURL = u
	}
	if v, ok := p.String(KeyProject, true); ok {
		if strings.ContainsAny(v, "/\\?#") {
			p.Bad(KeyProject, "%q is not a project name or id", v)
		}
		c.Project = v
	}
	entra := p.Bool(KeyEntra)
	conn, hasConn := p.String(KeyConnection, false)
	if v, ok := p.Settings[KeyPAT]; ok {
		ref, err := sink.ParseSecretRef(v)
		if err != nil {
			p.Bad(KeyPAT, "%v", err)
		} else {
			c.PAT = &ref
		}
		if entra || hasConn {
			p.Bad(KeyPAT, "give either pat (a personal access token) or entra/connection (an Entra token), not both")
		}
	} else if !entra && !hasConn {
		p.Bad("", "say how to sign in to Azure DevOps: pat: {env: NAME} (a personal access token), or entra: true (the policy's connection) or connection: NAME")
	}
	c.Connection = conn
	c.Adopt = p.Bool(KeyAdopt)
	return c
}

// CheckOrgURL accepts https://dev.azure.com/ORG (or any https base with
// one path segment, such as the simulator's) and the legacy
// https://ORG.visualstudio.com, without a trailing slash.
func CheckOrgURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "https" || u.Host == "":
		return "", fmt.Errorf("%q must be an https URL such as https://dev.azure.com/contoso", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must be the organization's URL, without credentials, query or fragment", raw)
	}
	path := strings.Trim(u.Path, "/")
	switch {
	case path == "" && strings.HasSuffix(strings.ToLower(u.Hostname()), ".visualstudio.com"):
	case path == "" || strings.Contains(path, "/"):
		return "", fmt.Errorf("%q must name one organization, e.g. https://dev.azure.com/contoso", raw)
	}
	out := "https://" + strings.ToLower(u.Host)
	if path != "" {
		out += "/" + path
	}
	return out, nil
}

// Client calls one organization's REST API as one identity.
type Client struct {
	base string
	http *http.Client
	auth func(ctx context.Context) (string, error)
	// who says how the client signs in, for error messages.
	who string
}

// NewClient makes the client of c for org. It does no I/O: the PAT is
// resolved and tokens are fetched at each call, so a rotated PAT is picked
// up without a restart.
func NewClient(deps sink.Deps, org domain.OrgID, defaultConnection string, c Common) (*Client, error) {
	hc := deps.HTTPClient
	cl := &Client{base: c.OrgURL}
	if c.PAT != nil {
		if deps.Secrets == nil {
			return nil, errors.New("azure devops sinks need a secret resolver for pat")
		}
		ref := *c.PAT
		cl.who = "the personal access token from " + ref.String()
		cl.auth = func(ctx context.Context) (string, error) {
			v, err := deps.Secrets.Resolve(ctx, ref)
			if err != nil {
				return "", sink.Permanent(fmt.Errorf("resolve the personal access token (%s): %w", ref, err))
			}
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+v.Reveal())), nil
		}
	} else {
		conn := c.Connection
		if conn == "" {
			conn = defaultConnection
		}
		if deps.Credentials == nil {
			return nil, errors.New("azure devops sinks need token credentials for entra")
		}
		id, err := deps.Credentials.TokenCredential(org, conn)
		if err != nil {
			return nil, fmt.Errorf("connection %q: %w", conn, err)
		}
		if hc == nil {
			if tr := id.ClientOptions.Transport; tr != nil {
				if h, ok := tr.(*http.Client); ok {
					hc = h
				}
			}
		}
		cl.who = fmt.Sprintf("the Entra identity of connection %q", conn)
		cl.auth = func(ctx context.Context) (string, error) {
			tok, err := id.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{Scope}})
			if err != nil {
				return "", tokenError(conn, err)
			}
			return "Bearer " + tok.Token, nil
		}
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	cl.http = hc
	return cl, nil
}

// Who says how the client signs in.
func (c *Client) Who() string { return c.who }

// URL is the organization's URL.
func (c *Client) URL() string { return c.base }

// Error is a refused or failed Azure DevOps call. It never holds a secret
// value: the message is Azure DevOps' own, scrubbed of the value being
// written.
type Error struct {
	Op     string
	Status int
	// TypeKey and Message are from Azure DevOps' error body.
	TypeKey, Message string
	// SignIn is true for a 203 sign-in page: the PAT is not accepted.
	SignIn bool
	// RetryAfter is what the service asked to wait, when it said.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	switch {
	case e.SignIn:
		return e.Op + ": Azure DevOps answered with its sign-in page (203): the personal access token is not valid (expired, revoked or mistyped)"
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
	msg := fmt.Sprintf("%s: Azure DevOps answered %d", e.Op, e.Status)
	if e.TypeKey != "" {
		msg += " " + e.TypeKey
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent: a refusal no retry mends (sign-in page, 4xx but 408 and 429).
func (e *Error) Permanent() bool {
	if e.SignIn {
		return true
	}
	if e.Status == 0 {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// Denied reports whether the identity was refused (sign-in page, 401, 403).
func (e *Error) Denied() bool {
	return e.SignIn || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// IsDenied reports whether err is an Azure DevOps or Entra refusal of the
// identity.
func IsDenied(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Denied()
}

func tokenError(conn string, err error) error {
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		te := azure.ParseTokenError(afe)
		switch te.Status {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			return &Error{Op: fmt.Sprintf("get an Entra token for Azure DevOps as connection %q", conn), Status: http.StatusUnauthorized,
				TypeKey: te.OAuthError, Message: te.Description}
		}
		return &Error{Op: fmt.Sprintf("get an Entra token for Azure DevOps as connection %q", conn), Status: te.Status, Message: te.Description}
	}
	return &Error{Op: fmt.Sprintf("get an Entra token for Azure DevOps as connection %q", conn), Err: err}
}

// Call is one request.
type Call struct {
	Op     string
	Method string
	// Path is below the organization URL, e.g. "/payments/_apis/…".
	Path  string
	Query url.Values
	In    any
	Out   any
	// Secret is the value the request carries, if any: it is scrubbed
	// from every error.
	Secret string
}

const maxResponse = 4 << 20

// Do sends call. Out is decoded from a 200 answer; a null body leaves it
// untouched and returns found false (Azure DevOps answers an unknown id
// with 200 and no object).
func (c *Client) Do(ctx context.Context, call Call) (found bool, err error) {
	defer func() {
		if err != nil && call.Secret != "" {
			err = scrub(err, call.Secret)
		}
	}()
	q := url.Values{}
	for k, v := range call.Query {
		q[k] = v
	}
	q.Set("api-version", APIVersion)
	u := c.base + call.Path + "?" + q.Encode()
	var body io.Reader
	if call.In != nil {
		b, err := json.Marshal(call.In)
		if err != nil {
			return false, fmt.Errorf("%s: encode request: %w", call.Op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, u, body)
	if err != nil {
		return false, sink.Permanent(fmt.Errorf("%s: %w", call.Op, err))
	}
	auth, err := c.auth(ctx)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries nothing secret, but it is noise
		}
		return false, &Error{Op: call.Op, Err: fmt.Errorf("reach %s: %w", c.base, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return false, &Error{Op: call.Op, Err: fmt.Errorf("read the answer: %w", err)}
	}
	switch {
	case resp.StatusCode == http.StatusNonAuthoritativeInfo:
		return false, &Error{Op: call.Op, Status: resp.StatusCode, SignIn: true}
	case resp.StatusCode >= 300:
		e := &Error{Op: call.Op, Status: resp.StatusCode}
		var eb struct {
			Message string `json:"message"`
			TypeKey string `json:"typeKey"`
		}
		if json.Unmarshal(b, &eb) == nil {
			e.Message, e.TypeKey = truncate(sink.RedactPrivateKeys(eb.Message)), eb.TypeKey
		}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if n, err := strconv.Atoi(s); err == nil && n >= 0 {
				e.RetryAfter = time.Duration(n) * time.Second
			}
		}
		return false, e
	}
	if t := strings.TrimSpace(string(b)); t == "" || t == "null" {
		return false, nil
	}
	if call.Out != nil {
		if err := json.Unmarshal(b, call.Out); err != nil {
			return false, &Error{Op: call.Op, Status: resp.StatusCode, Err: fmt.Errorf("decode the answer: %s", errors.Unwrap(err))}
		}
	}
	return true, nil
}

func truncate(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

// scrub replaces value wherever err's message shows it. The result keeps
// err's classification.
func scrub(err error, value string) error {
	if !strings.Contains(fmt.Sprintf("%+v %#v", err, err), value) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), value, "[REDACTED]")
	if sink.IsPermanent(err) {
		return sink.Permanent(errors.New(msg))
	}
	return sink.Transient(errors.New(msg))
}
