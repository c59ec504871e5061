package adogit

import (
	"testing"

	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

// TestConformanceCertificates runs the sink suite with certificate
// credentials: the default certificate_format (pem) puts the private key
// and chain into the one value this kind writes.
func TestConformanceCertificates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.put(t, conformanceFile, "# conformance targets, one key per application\nplaceholder: true\n")
	sinktest.Run(t, &harness{b: b}, sinktest.WithCertificates())
}
