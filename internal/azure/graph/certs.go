package graph

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prover is a certificate of an application together with its private
// key: what signs the proof of possession addKey and removeKey demand.
type Prover struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// ErrKeysChanged says the application's keyCredentials kept changing
// under a read-modify-write (PATCH): another writer is at work on the
// application. It is transient: retrying later reads the new state.
var ErrKeysChanged = errors.New("graph: the application's keyCredentials changed while rotor updated them; another writer is changing the application")

// patchAttempts bounds the read-check-write rounds of one PATCH.
const patchAttempts = 3

// readKeys reads the application's certificates with their key data
// ($select=keyCredentials is what makes Graph include "key").
func (c *Client) readKeys(ctx context.Context, objectID string) ([]KeyCredential, error) {
	app, err := c.GetApplication(ctx, objectID, []string{"id", "keyCredentials"})
	if err != nil {
		return nil, err
	}
	return app.KeyCredentials, nil
}

// validProof returns the proof the prover can sign for the application
// now, or "" when the prover is nil or its certificate is not a currently
// valid key credential of the application (then only PATCH can change
// keyCredentials).
func validProof(objectID string, keys []KeyCredential, p *Prover, now time.Time) (string, error) {
	if p == nil || p.Cert == nil || p.Key == nil {
		return "", nil
	}
	for _, k := range keys {
		if !bytes.Equal(k.Key, p.Cert.Raw) {
			continue
		}
		if now.Before(k.StartDateTime) || !now.Before(k.EndDateTime) || !now.Before(p.Cert.NotAfter) {
			return "", nil
		}
		return ProofOfPossession(objectID, p.Key, p.Cert, now)
	}
	return "", nil
}

// AddCertificate registers kc (whose Key is the DER certificate) on the
// application and returns it as Graph holds it.
//
// With a prover whose certificate is a currently valid credential of the
// application it uses addKey, which Graph applies atomically. Without one
// (an application with no certificate rotor holds the key of) it PATCHes
// keyCredentials with every existing key plus the new one (see patchKeys).
// A certificate already on the application (a retry after a lost answer)
// is returned as it is, so the call is idempotent.
func (c *Client) AddCertificate(ctx context.Context, objectID string, kc KeyCredential, p *Prover, now time.Time) (*KeyCredential, error) {
	if len(kc.Key) == 0 {
		return nil, errors.New("graph: AddCertificate needs the certificate (key)")
	}
	kc.Type, kc.Usage = cmpOr(kc.Type, "AsymmetricX509Cert"), cmpOr(kc.Usage, "Verify")
	keys, err := c.readKeys(ctx, objectID)
	if err != nil {
		return nil, err
	}
	if k := findKey(keys, kc.Key); k != nil {
		return k, nil
	}
	proof, err := validProof(objectID, keys, p, now)
	if err != nil {
		return nil, err
	}
	if proof != "" {
		return c.AddKey(ctx, objectID, kc, proof)
	}
	kc.KeyID = "" // Graph assigns it
	after, err := c.patchKeys(ctx, objectID, keys, func(cur []KeyCredential) []KeyCredential { return append(cur, kc) })
	if err != nil {
		return nil, err
	}
	if k := findKey(after, kc.Key); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: the new certificate is not on the application after the PATCH", ErrKeysChanged)
}

// RemoveCertificate removes the certificate keyID. With a prover whose
// certificate is a currently valid credential of the application it uses
// removeKey (atomic); otherwise it PATCHes keyCredentials with every other
// key kept. A certificate already gone is success.
func (c *Client) RemoveCertificate(ctx context.Context, objectID, keyID string, p *Prover, now time.Time) error {
	if err := requireID("key id", keyID); err != nil {
		return err
	}
	keys, err := c.readKeys(ctx, objectID)
	if err != nil {
		if IsNotFound(err) {
			return nil
		}
		return err
	}
	if !hasKeyID(keys, keyID) {
		return nil
	}
	proof, err := validProof(objectID, keys, p, now)
	if err != nil {
		return err
	}
	if proof != "" {
		return c.RemoveKey(ctx, objectID, keyID, proof)
	}
	after, err := c.patchKeys(ctx, objectID, keys, func(cur []KeyCredential) []KeyCredential {
		out := cur[:0:0]
		for _, k := range cur {
			if !strings.EqualFold(k.KeyID, keyID) {
				out = append(out, k)
			}
		}
		return out
	})
	if err != nil {
		return err
	}
	if hasKeyID(after, keyID) {
		return fmt.Errorf("%w: certificate %s is still on the application after the PATCH", ErrKeysChanged, keyID)
	}
	return nil
}

// patchKeys is the read-modify-write of keyCredentials. Graph documents no
// ETag or If-Match for applications, so it cannot be a compare-and-set;
// instead, starting from keys (just read), it reads the collection again
// right before writing and starts over if it changed (a key another writer
// added in the meantime must not be dropped by rotor's PATCH), writes
// change(current), and reads once more to return what Graph now holds and
// to check that every key rotor meant to keep is still there. What is left
// is the moment between the last read and the write landing: see
// docs/adr/0033.
func (c *Client) patchKeys(ctx context.Context, objectID string, keys []KeyCredential, change func([]KeyCredential) []KeyCredential) ([]KeyCredential, error) {
	for range patchAttempts {
		again, err := c.readKeys(ctx, objectID)
		if err != nil {
			return nil, err
		}
		if !sameKeys(keys, again) {
			keys = again
			continue
		}
		want := change(append([]KeyCredential(nil), keys...))
		for _, k := range want {
			if k.KeyID != "" && len(k.Key) == 0 {
				return nil, fmt.Errorf("graph: certificate %s came without its key data, so a PATCH would drop it", k.KeyID)
			}
		}
		if err := c.UpdateKeyCredentials(ctx, objectID, want); err != nil {
			return nil, err
		}
		after, err := c.readKeys(ctx, objectID)
		if err != nil {
			return nil, err
		}
		for _, k := range want {
			if k.KeyID != "" && !hasKeyID(after, k.KeyID) {
				return nil, fmt.Errorf("%w: certificate %s, which rotor kept, is gone after the PATCH", ErrKeysChanged, k.KeyID)
			}
		}
		return after, nil
	}
	return nil, ErrKeysChanged
}

func findKey(keys []KeyCredential, der []byte) *KeyCredential {
	for i := range keys {
		if bytes.Equal(keys[i].Key, der) {
			k := keys[i]
			return &k
		}
	}
	return nil
}

func hasKeyID(keys []KeyCredential, id string) bool {
	for _, k := range keys {
		if strings.EqualFold(k.KeyID, id) {
			return true
		}
	}
	return false
}

// sameKeys compares two reads of keyCredentials by key id.
func sameKeys(a, b []KeyCredential) bool {
	if len(a) != len(b) {
		return false
	}
	for _, k := range a {
		if !hasKeyID(b, k.KeyID) {
			return false
		}
	}
	return true
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
