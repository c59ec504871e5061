package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"sync"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// certRecorderType is the sink type of certRecorderKind.
const certRecorderType = "certrecorder"

// certRecorder is a test-only sink that keeps, per application, what a
// consumer of a certificate credential receives: the leaf certificate,
// whether a private key came with it (none when the key stays in Key
// Vault) and, when one did, the PEM a consumer would read (certificate,
// then the PKCS#8 key) with the delivery's key id.
type certRecorder struct {
	app  string
	held *certStore
}

type certStore struct {
	mu      sync.Mutex
	leafDER map[string][]byte // object id → the delivered leaf
	withKey map[string]bool
	pem     map[string]string
	keyID   map[string]string
}

func newCertStore() *certStore {
	return &certStore{leafDER: map[string][]byte{}, withKey: map[string]bool{}, pem: map[string]string{}, keyID: map[string]string{}}
}

type certRecorderKind struct{ held *certStore }

func (certRecorderKind) Type() string                                 { return certRecorderType }
func (certRecorderKind) CheckSpec(domain.SinkSpec) error              { return nil }
func (k certRecorderKind) NewBuilder(sink.Deps) (sink.Builder, error) { return k, nil }
func (k certRecorderKind) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	return sink.NewTargetID(certRecorderType, req.App.ObjectID)
}
func (k certRecorderKind) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	return &certRecorder{app: req.App.ObjectID, held: k.held}, nil
}

func (s *certRecorder) Describe() string { return "test certificate recorder for " + s.app }
func (s *certRecorder) Target() sink.TargetID {
	t, _ := sink.NewTargetID(certRecorderType, s.app)
	return t
}

func (s *certRecorder) Deliver(_ context.Context, d sink.Delivery) (sink.Result, error) {
	c := d.Material.Certificate
	if c == nil || c.Leaf() == nil {
		return sink.Result{}, sink.Permanent(os.ErrInvalid)
	}
	var keyPEM string
	if !c.Key.IsZero() {
		der, err := x509.MarshalPKCS8PrivateKey(c.Key.Signer())
		if err != nil {
			return sink.Result{}, err
		}
		keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	s.held.mu.Lock()
	defer s.held.mu.Unlock()
	s.held.leafDER[s.app] = c.Leaf().Raw
	s.held.withKey[s.app] = !c.Key.IsZero() || !c.PKCS12.IsZero()
	s.held.keyID[s.app] = d.KeyID
	if keyPEM != "" {
		s.held.pem[s.app] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf().Raw})) + keyPEM
	}
	return sink.Result{Changed: true, Location: s.app}, nil
}
