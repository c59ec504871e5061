package adovariables

import (
	"testing"

	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// TestConformanceCertificates runs the sink suite with certificate
// credentials: the default certificate_format (pem) puts the private key
// and chain into the one value this kind writes.
func TestConformanceCertificates(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)}, sinktest.WithCertificates())
}
