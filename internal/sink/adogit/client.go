package adogit

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
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// APIVersion is the Azure DevOps REST version the sink speaks.
const APIVersion = "7.1"

// Scope is Azure DevOps' Entra scope: its application id's .default.
const Scope = "499b84ac-1321-427f-aa17-267ca6975798/.default"

// typeKeyStale is the typeKey of the 409 a push with a stale oldObjectId
// gets (TF401028: the branch moved since it was read).
const typeKeyStale = "GitReferenceStaleException"

// APIError is an Azure DevOps answer other than success. It never holds a
// value: rotor sends only encrypted values and metadata, and the message
// is Azure DevOps' own.
type APIError struct {
	Op     string
	Status int
	// TypeKey and Message are from Azure DevOps' error body, when it sent
	// one.
	TypeKey, Message string
	// RetryAfter is the Retry-After Azure DevOps asked for, if any.
	RetryAfter time.Duration
	// Hint says what a person should do.
	Hint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "adogit: %s: HTTP %d", e.Op, e.Status)
	if e.TypeKey != "" {
		fmt.Fprintf(&b, " %s", e.TypeKey)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; Azure DevOps asks to retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Permanent is true for refusals (203 sign-in page, 400, 401, 403, 404, a
// conflict other than a moved branch); throttling, timeouts and 5xx may
// pass.
func (e *APIError) Permanent() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return false
	case e.Status == http.StatusConflict && e.TypeKey == typeKeyStale:
		return false
	}
	return true
}

// stale reports whether err is the push conflict of a moved branch.
func stale(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusConflict && ae.TypeKey == typeKeyStale
}

func notFound(err error) (*APIError, bool) {
	var ae *APIError
	return ae, errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// doer sends requests: *http.Client or the connection's SDK transport.
type doer interface {
	Do(*http.Request) (*http.Response, error)
}

// client speaks to one repository.
type client struct {
	hc   doer
	auth func(ctx context.Context) (string, error)
	// base is {org}/{project}/_apis/git/repositories/{repo}.
	base    string
	project string
}

func (c *client) do(ctx context.Context, op, method, rawURL string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("adogit: %s: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	authz, err := c.auth(ctx)
	if err != nil {
		return fmt.Errorf("adogit: %s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return sink.Permanent(fmt.Errorf("adogit: %s: %w", op, err))
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// url.Error names the URL, which holds no credential.
		return sink.Transient(fmt.Errorf("adogit: %s: %w", op, err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode == http.StatusNonAuthoritativeInfo {
		return &APIError{Op: op, Status: resp.StatusCode,
			Hint: "Azure DevOps answered with its sign-in page: the PAT is wrong, expired or revoked"}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{Op: op, Status: resp.StatusCode}
		var eb struct{ Message, TypeKey string }
		if json.Unmarshal(data, &eb) == nil {
			ae.Message, ae.TypeKey = eb.Message, eb.TypeKey
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			ae.RetryAfter = time.Duration(s) * time.Second
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			ae.Hint = "the identity may not use this repository: it needs Code (read & write) — Contribute on the repository"
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return sink.Transient(fmt.Errorf("adogit: %s: the answer is not the JSON expected: %w", op, err))
		}
	}
	return nil
}

func (c *client) url(sub string, q url.Values) string {
	q.Set("api-version", APIVersion)
	return c.base + sub + "?" + q.Encode()
}

// tip is the branch's commit id; "" when the branch does not exist.
func (c *client) tip(ctx context.Context, branch string) (string, error) {
	var out struct {
		Value []struct{ Name, ObjectID string }
	}
	if err := c.do(ctx, "list refs", http.MethodGet, c.url("/refs", url.Values{"filter": {"heads/" + branch}}), nil, &out); err != nil {
		return "", err
	}
	// The filter is a prefix: heads/main also lists heads/main-old.
	for _, r := range out.Value {
		if r.Name == "refs/heads/"+branch {
			return r.ObjectID, nil
		}
	}
	return "", nil
}

// item is a file at a commit.
type item struct {
	ObjectID string `json:"objectId"`
	CommitID string `json:"commitId"`
	Content  string `json:"content"`
}

// file reads path at commit; found false when there is no such file.
func (c *client) file(ctx context.Context, path, commit string) (item, bool, error) {
	var it item
	err := c.do(ctx, "read "+path, http.MethodGet, c.url("/items", url.Values{
		"path": {path}, "includeContent": {"true"}, "$format": {"json"},
		"versionDescriptor.version": {commit}, "versionDescriptor.versionType": {"commit"},
	}), nil, &it)
	if ae, ok := notFound(err); ok && ae.TypeKey == "GitItemNotFoundException" {
		return item{}, false, nil
	}
	return it, err == nil, err
}

type pushChange struct {
	ChangeType string `json:"changeType"`
	Item       struct {
		Path string `json:"path"`
	} `json:"item"`
	NewContent struct {
		Content     string `json:"content"`
		ContentType string `json:"contentType"`
	} `json:"newContent"`
}

// push commits content as path's new content on branch, if the branch is
// still at oldCommit.
func (c *client) push(ctx context.Context, branch, oldCommit, path, comment string, content []byte) error {
	ch := pushChange{ChangeType: "edit"}
	ch.Item.Path = path
	ch.NewContent.Content, ch.NewContent.ContentType = string(content), "rawtext"
	body := map[string]any{
		"refUpdates": []map[string]string{{"name": "refs/heads/" + branch, "oldObjectId": oldCommit}},
		"commits":    []map[string]any{{"comment": comment, "changes": []pushChange{ch}}},
	}
	return c.do(ctx, "push to "+branch, http.MethodPost, c.url("/pushes", url.Values{}), body, nil)
}

// newClient makes the client of one target, authenticating with the spec's
// PAT or as the connection.
func newClient(deps sink.Deps, st settings, org domain.OrgID, conn string, base string) (*client, error) {
	c := &client{base: base, project: st.project}
	switch {
	case st.pat != nil:
		if deps.Secrets == nil || deps.HTTPClient == nil {
			return nil, errors.New("adogit sink: a pat needs rotor's secret resolver and HTTP client")
		}
		ref, secrets := *st.pat, deps.Secrets
		c.hc = deps.HTTPClient
		c.auth = func(ctx context.Context) (string, error) {
			v, err := secrets.Resolve(ctx, ref)
			if err != nil {
				return "", fmt.Errorf("the PAT from %s: %w", ref, err)
			}
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+v.Reveal())), nil
		}
	default:
		if deps.Credentials == nil {
			return nil, errors.New("adogit sink: without a pat it acts as a connection, and rotor has no token credentials")
		}
		if st.connection != "" {
			conn = st.connection
		}
		id, err := deps.Credentials.TokenCredential(org, conn)
		if err != nil {
			return nil, sink.Permanent(fmt.Errorf("adogit sink: connection %q: %w", conn, err))
		}
		if t, ok := id.ClientOptions.Transport.(doer); ok && t != nil {
			c.hc = t
		} else if deps.HTTPClient != nil {
			c.hc = deps.HTTPClient
		} else {
			c.hc = http.DefaultClient
		}
		cred := id.Credential
		c.auth = func(ctx context.Context) (string, error) {
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{Scope}})
			if err != nil {
				var afe *azidentity.AuthenticationFailedError
				if errors.As(err, &afe) && afe.RawResponse != nil {
					switch afe.RawResponse.StatusCode {
					case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
						return "", sink.Permanent(fmt.Errorf("no Azure DevOps token for connection %q: Entra refused its credential: %w", conn, err))
					}
				}
				return "", sink.Transient(fmt.Errorf("no Azure DevOps token for connection %q: %w", conn, err))
			}
			return "Bearer " + tok.Token, nil
		}
	}
	return c, nil
}
