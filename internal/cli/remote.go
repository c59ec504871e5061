package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/api"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// remoteFlag is --server: a listing command asks a running rotor's REST
// API instead of opening the store, with a bearer credential from the
// environment (never a flag: flags end up in shell history and ps).
type remoteFlag struct {
	server   string
	org      string
	tokenEnv string
}

func (f *remoteFlag) register(c *cobra.Command) {
	c.Flags().StringVar(&f.server, "server", os.Getenv("ROTOR_SERVER"), "ask the rotor at this URL (its REST API) instead of the local store (env ROTOR_SERVER); the bearer token or API key comes from $ROTOR_TOKEN")
	c.Flags().StringVar(&f.org, "org", "", "with --server: the organization (default: the one the token holds a role in)")
	c.Flags().StringVar(&f.tokenEnv, "token-env", "ROTOR_TOKEN", "with --server: the environment variable holding the bearer token or API key")
}

func (f *remoteFlag) set() bool { return f.server != "" }

// remote is a client of rotor's REST API.
type remote struct {
	base  string
	org   string
	token string
	http  *http.Client
}

// client checks --server and the token, and finds the organization.
func (f *remoteFlag) client(ctx context.Context) (*remote, error) {
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--server %q must be a URL such as https://rotor.example.com", f.server)
	}
	token := strings.TrimSpace(os.Getenv(f.tokenEnv))
	if token == "" {
		return nil, fmt.Errorf("--server needs a bearer token or API key in $%s", f.tokenEnv)
	}
	r := &remote{base: strings.TrimRight(f.server, "/") + api.Prefix, org: f.org, token: token, http: &http.Client{Timeout: time.Minute}}
	if r.org == "" {
		var who api.Whoami
		if err := r.get(ctx, "/whoami", nil, &who); err != nil {
			return nil, err
		}
		orgs := make([]string, 0, len(who.Organizations))
		for o := range who.Organizations {
			orgs = append(orgs, o)
		}
		sort.Strings(orgs)
		if len(orgs) != 1 {
			return nil, fmt.Errorf("the token holds roles in %d organizations (%s): name one with --org", len(orgs), strings.Join(orgs, ", "))
		}
		r.org = orgs[0]
	}
	return r, nil
}

// remoteError is a problem the API answered.
type remoteError struct {
	status int
	p      api.Problem
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("the server answered %d %s: %s", e.status, e.p.Code, e.p.Detail)
}

func (r *remote) get(ctx context.Context, path string, q url.Values, out any) error {
	u := r.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Accept", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", r.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", r.base, err)
	}
	if resp.StatusCode >= 300 {
		e := &remoteError{status: resp.StatusCode}
		if json.Unmarshal(body, &e.p) != nil || e.p.Detail == "" {
			e.p.Detail = http.StatusText(resp.StatusCode)
		}
		return e
	}
	return json.Unmarshal(body, out)
}

// applications walks every page of the organization's applications,
// returning them as the local listing does.
func (r *remote) applications(ctx context.Context, f app.ApplicationFilter) ([]app.ApplicationRow, error) {
	q := url.Values{"limit": {fmt.Sprint(app.MaxPageSize)}}
	if f.Connection != "" {
		q.Set("connection", f.Connection)
	}
	if f.ManageableOnly {
		q.Set("manageable", "true")
	}
	if f.NamePrefix != "" {
		q.Set("name_prefix", f.NamePrefix)
	}
	if f.ExpiringWithin > 0 {
		q.Set("expiring_within", domain.FormatDuration(f.ExpiringWithin))
	}
	rows := []app.ApplicationRow{}
	for range 100000 {
		var page api.ApplicationList
		if err := r.get(ctx, "/orgs/"+url.PathEscape(r.org)+"/applications", q, &page); err != nil {
			return nil, err
		}
		for _, a := range page.Items {
			rows = append(rows, app.ApplicationRow{
				Name: a.Name, AppID: a.AppID, ObjectID: a.ObjectID, TenantID: a.TenantID, Connection: strings.Join(a.Connections, ","),
				Manageable: a.Manageable, Secrets: a.Secrets, Certs: a.Certs, NextExpiry: a.NextExpiry, EarliestEnd: a.EarliestEnd,
				Policy: a.Policy, Status: a.Status, Reason: a.Reason, Due: a.Due, DueAt: a.DueAt,
			})
		}
		if page.NextCursor == "" {
			return rows, nil
		}
		q.Set("cursor", page.NextCursor)
	}
	return nil, errors.New("the server's pages do not end")
}
