package automation

import (
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/armrest"
)

// The sink's Resource Manager client is internal/sink/armrest's.
type (
	restClient = armrest.Client
	// APIError is Resource Manager's answer to a failed request.
	APIError = armrest.APIError
)

func newRESTClient(id sink.AzureIdentity) (*restClient, error) { return armrest.NewClient(Type, id) }

func statusOf(err error) int { return armrest.StatusOf(err) }

func redact(text, value string) string { return armrest.Redact(text, value) }
