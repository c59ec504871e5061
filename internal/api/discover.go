package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/rotor-dev/rotor/internal/app"
)

// The sink pickers: what a sink setting could be (service connections of
// an Azure DevOps project, repositories, Kubernetes Deployments …).

func (a *API) discoverRoutes(tags []string) {
	huma.Register(a.huma, a.op(http.MethodPost, "/orgs/{org}/sinks/{type}/discover", "discoverSinkChoices", "List a sink setting's choices",
		"Lists what one setting of a sink type could be, given the settings chosen so far (a picker), as the organization's named connection or the sink's own "+
			"token reference ({env: NAME}, {file: PATH}). Without key it lists which settings can be listed. Reads only; never a secret value. Operator.",
		tags, http.StatusUnprocessableEntity), a.discoverSink)
}

type discoverInput struct {
	Org  string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Type string `path:"type" maxLength:"64" doc:"The sink type, e.g. adoconnection."`
	Body struct {
		Key        string         `json:"key,omitempty" maxLength:"64" doc:"The setting to list; empty lists which settings can be listed."`
		Connection string         `json:"connection,omitempty" maxLength:"128" doc:"The organization's connection the sink acts as, for sinks that act as one."`
		Settings   map[string]any `json:"settings,omitempty" doc:"The settings chosen so far, as in rotor.yaml; tokens only as references such as {env: NAME}."`
	}
}

// SinkChoice is one value a setting may take.
type SinkChoice struct {
	Value  string `json:"value"`
	Label  string `json:"label"`
	Detail string `json:"detail,omitempty"`
}

// SinkChoices is a setting's choices.
type SinkChoices struct {
	Type    string       `json:"type"`
	Keys    []string     `json:"keys" doc:"The settings this sink type can list choices for, in the order they are filled in."`
	Key     string       `json:"key,omitempty"`
	Choices []SinkChoice `json:"choices"`
}

type sinkChoicesOutput struct{ Body SinkChoices }

func (a *API) discoverSink(ctx context.Context, in *discoverInput) (*sinkChoicesOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	r, err := a.app.DiscoverSink(ctx, scope, app.DiscoverSinkRequest{Type: in.Type, Key: in.Body.Key, Connection: in.Body.Connection, Settings: in.Body.Settings})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &sinkChoicesOutput{Body: SinkChoices{Type: r.Type, Keys: r.Keys, Key: r.Key, Choices: make([]SinkChoice, 0, len(r.Choices))}}
	for _, c := range r.Choices {
		out.Body.Choices = append(out.Body.Choices, SinkChoice{Value: c.Value, Label: c.Label, Detail: c.Detail})
	}
	return out, nil
}
