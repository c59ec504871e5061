// Package armrest is the Resource Manager client of the sinks that write
// ARM resources with raw JSON (automation, logicapp): azcore's ARM pipeline
// (bearer token for the connection's cloud, x-ms-authorization-auxiliary
// for the connection's other tenants, retries of 429 and 5xx with
// Retry-After). Microsoft ships no Go client for Microsoft.Web/connections,
// and the module proxy serves none for Automation.
package armrest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/rotor-dev/rotor/internal/sink"
)

// moduleVersion goes into the telemetry User-Agent.
const moduleVersion = "v1.0.0"

// Client sends ARM requests through azcore's ARM pipeline.
type Client struct {
	pl       runtime.Pipeline
	endpoint string
}

// NewClient makes the client of a connection's identity; its
// AuxiliaryTenants become arm.ClientOptions.AuxiliaryTenants, for which
// azcore's ARM bearer policy adds x-ms-authorization-auxiliary tokens.
func NewClient(kind string, id sink.AzureIdentity) (*Client, error) {
	c, err := arm.NewClient("rotor/sink/"+kind, moduleVersion, id.Credential, &arm.ClientOptions{
		ClientOptions: id.ClientOptions, AuxiliaryTenants: id.AuxiliaryTenants,
	})
	if err != nil {
		return nil, err
	}
	return &Client{pl: c.Pipeline(), endpoint: c.Endpoint()}, nil
}

// APIError is a Resource Manager error answer, in ARM's shape
// ({"error":{"code","message"}}). Its message is ARM's, which never holds
// the value the sink sent.
type APIError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
}

func (e *APIError) Error() string {
	msg := e.Message
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, msg)
}

// Permanent: ARM's 4xx but throttling and timeouts need a person (a role
// assignment, a missing resource, a bad request); 429 and 5xx may pass.
func (e *APIError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests && e.Status != http.StatusRequestTimeout
}

// do sends method path?api-version=apiVersion with body as JSON (nil for
// none) and decodes a 2xx answer into out (nil to drop it). An error
// answer is *APIError; a transport failure (after azcore's retries) is
// retryable.
func (c *Client) Do(ctx context.Context, method, path, apiVersion string, body, out any) (int, error) {
	req, err := runtime.NewRequest(ctx, method, runtime.JoinPaths(c.endpoint, path))
	if err != nil {
		return 0, sink.Permanent(fmt.Errorf("%s %s: %w", method, path, err))
	}
	q := req.Raw().URL.Query()
	q.Set("api-version", apiVersion)
	req.Raw().URL.RawQuery = q.Encode()
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return 0, sink.Permanent(fmt.Errorf("%s %s: encoding the request failed", method, path))
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		var nte interface{ NonRetriable() }
		if errors.As(err, &nte) && ctx.Err() == nil {
			// azcore says no retry helps: a credential that cannot get a
			// token (refused client, unknown tenant).
			return 0, sink.Permanent(fmt.Errorf("%s %s: %w", method, path, err))
		}
		return 0, sink.Transient(fmt.Errorf("%s %s: %w", method, path, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, sink.Transient(fmt.Errorf("%s %s: reading the answer: %w", method, path, err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		}
		if e.Code == "" {
			e.Code = http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, sink.Transient(fmt.Errorf("%s %s: the answer is not the JSON expected: %v", method, path, err))
		}
	}
	return resp.StatusCode, nil
}

// StatusOf is the HTTP status of an *APIError in err's chain, 0 otherwise.
func StatusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Redact replaces every occurrence of value in text (an answer's message,
// a job's exception) so that nothing a remote system echoes carries it.
func Redact(text, value string) string {
	if value == "" {
		return text
	}
	return strings.ReplaceAll(text, value, "[redacted]")
}

// Endpoint is the Resource Manager endpoint the client calls.
func (c *Client) Endpoint() string { return c.endpoint }
