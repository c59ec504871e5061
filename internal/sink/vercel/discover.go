package vercel

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// DiscoverKeys are the settings a picker can list: the token's teams,
// then the team's projects. Both need token (and api_url, when not
// Vercel's).
func (b *Builder) DiscoverKeys() []string { return []string{KeyTeamID, KeyProject} }

// Discover lists the teams the token may act for (GET /v2/teams) or the
// projects of the chosen team, or of the personal account (GET
// /v9/projects). It reads no value.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	if !slices.Contains(b.DiscoverKeys(), q.Key) {
		return nil, fmt.Errorf("vercel sink: cannot list %q (can list: %v)", q.Key, b.DiscoverKeys())
	}
	c, err := b.discoveryClient(q.Spec)
	if err != nil {
		return nil, err
	}
	var out []sink.Choice
	switch q.Key {
	case KeyTeamID:
		c.teamID = ""
		var resp struct {
			Teams []struct {
				ID   string `json:"id"`
				Slug string `json:"slug"`
				Name string `json:"name"`
			} `json:"teams"`
		}
		if err := c.call(ctx, "list teams", http.MethodGet, "/v2/teams", url.Values{"limit": {"100"}}, nil, &resp, ""); err != nil {
			return nil, err
		}
		for _, t := range resp.Teams {
			out = append(out, sink.Choice{Value: t.ID, Label: t.Name, Detail: t.Slug})
		}
	case KeyProject:
		var resp struct {
			Projects []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"projects"`
		}
		if err := c.call(ctx, "list projects", http.MethodGet, "/v9/projects", url.Values{"limit": {"100"}}, nil, &resp, ""); err != nil {
			return nil, err
		}
		for _, p := range resp.Projects {
			out = append(out, sink.Choice{Value: p.Name, Label: p.Name, Detail: p.ID})
		}
	}
	return out, nil
}

// discoveryClient reads only what listing needs from a spec that need not
// be complete: token, api_url, team_id.
func (b *Builder) discoveryClient(spec domain.SinkSpec) (*client, error) {
	v, ok := spec.Settings[KeyToken]
	if !ok {
		return nil, &SpecError{Key: KeyToken, Msg: "is needed to list choices: a reference such as {env: VERCEL_TOKEN}"}
	}
	ref, err := sink.ParseSecretRef(v)
	if err != nil {
		return nil, &SpecError{Key: KeyToken, Msg: err.Error()}
	}
	base := DefaultAPIURL
	if s, ok := spec.Settings[KeyAPIURL].(string); ok && s != "" {
		if base, err = checkAPIURL(s); err != nil {
			return nil, &SpecError{Key: KeyAPIURL, Msg: err.Error()}
		}
	}
	team, _ := spec.Settings[KeyTeamID].(string)
	return &client{http: b.http, secrets: b.secrets, base: base, token: ref, teamID: team}, nil
}
