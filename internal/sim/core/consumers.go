package core

import (
	"sort"
	"sync"
	"time"
)

// Every simulated service that receives a credential from rotor (a Key
// Vault secret, an Azure DevOps service connection, a GitHub secret, a
// Kubernetes Secret, a webhook …) reports what it now holds with
// RecordConsumer, and GET /_sim/consumers lists it: which credential each
// consumer holds (matched by the value's hash against the passwords Entra
// issued), since when, and whether Entra would accept it now. A test, and a
// user of the demo, watch every consumer switch there.
//
// Only the SHA-256 of a value is kept, as the directory keeps passwords.

// Consumer is one place a credential was written to, as a service reports
// it, with what the directory knows of that credential now.
type Consumer struct {
	// Service is the simulated service ("keyvault", "ado", "github", …).
	Service string `json:"service"`
	// Target names the place in the service's own terms (a secret URL, a
	// service connection id, owner/repo/name …).
	Target string `json:"target"`
	// Field is what inside the target holds the credential, when a target
	// holds several (a variable's name, a Secret's key); empty otherwise.
	Field string `json:"field,omitempty"`
	// WrittenAt is the simulated time of the last write.
	WrittenAt time.Time `json:"written_at"`
	// Sealed is true when the service received the value encrypted to a
	// key the simulator does not hold, so it cannot tell which credential
	// it is (KeyID stays empty).
	Sealed bool `json:"sealed,omitempty"`
	// TenantID, AppID and KeyID name the credential the value is, when the
	// directory issued it; empty for a value Entra never issued (a
	// foreign or hand-typed one).
	TenantID string `json:"tenant_id,omitempty"`
	AppID    string `json:"app_id,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
	// Valid is true when that credential exists now and is within its
	// validity: a client using the consumer's value gets a token (once
	// the tenant's replication delay has passed since it was added).
	Valid bool `json:"valid"`
}

type consumerKey struct{ service, target, field string }

type consumerRecord struct {
	hash   [32]byte
	at     time.Time
	sealed bool
}

// consumerLog is what services reported, by place. It has its own lock so
// that a service may record while it holds the world's.
type consumerLog struct {
	mu   sync.Mutex
	byAt map[consumerKey]consumerRecord
}

// RecordConsumer notes that service's target (field) now holds value. It
// keeps the value's hash only. Services call it on every write, holding
// the world's lock or not.
func (c *Core) RecordConsumer(service, target, field, value string) {
	c.recordConsumer(consumerKey{service, target, field}, consumerRecord{hash: HashSecret(value), at: c.clock.Now().UTC()})
}

// RecordSealedConsumer notes that service's target (field) received a
// value encrypted to a key the simulator does not hold.
func (c *Core) RecordSealedConsumer(service, target, field string) {
	c.recordConsumer(consumerKey{service, target, field}, consumerRecord{sealed: true, at: c.clock.Now().UTC()})
}

// ForgetConsumer notes that service's target (field) holds no credential
// any more (deleted).
func (c *Core) ForgetConsumer(service, target, field string) {
	c.consumers.mu.Lock()
	defer c.consumers.mu.Unlock()
	delete(c.consumers.byAt, consumerKey{service, target, field})
}

func (c *Core) recordConsumer(k consumerKey, r consumerRecord) {
	c.consumers.mu.Lock()
	defer c.consumers.mu.Unlock()
	if c.consumers.byAt == nil {
		c.consumers.byAt = map[consumerKey]consumerRecord{}
	}
	c.consumers.byAt[k] = r
}

// Consumers lists every place a service reported, by service, target and
// field, with the credential each holds as the directory knows it now.
// Callers hold no lock.
func (c *Core) Consumers() []Consumer {
	c.consumers.mu.Lock()
	recs := make(map[consumerKey]consumerRecord, len(c.consumers.byAt))
	for k, r := range c.consumers.byAt {
		recs[k] = r
	}
	c.consumers.mu.Unlock()

	type cred struct {
		tenant, app, key string
		start, end       time.Time
	}
	byHash := map[[32]byte]cred{}
	now := c.clock.Now()
	c.world.RLock()
	for _, t := range c.world.TenantsLocked() {
		for _, a := range t.Apps {
			for _, p := range a.Passwords {
				byHash[p.SecretHash] = cred{t.ID, a.AppID, p.KeyID, p.Start, p.End}
			}
		}
	}
	c.world.RUnlock()

	out := make([]Consumer, 0, len(recs))
	for k, r := range recs {
		cons := Consumer{Service: k.service, Target: k.target, Field: k.field, WrittenAt: r.at, Sealed: r.sealed}
		if cr, ok := byHash[r.hash]; ok && !r.sealed {
			cons.TenantID, cons.AppID, cons.KeyID = cr.tenant, cr.app, cr.key
			cons.Valid = !now.Before(cr.start) && now.Before(cr.end)
		}
		out = append(out, cons)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Field < b.Field
	})
	return out
}
