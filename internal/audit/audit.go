// Package audit owns rotor's audit trail: the record of who did what, on
// which object, how it ended and when — every mutating call of the
// application layer and every step of every rotation run — kept
// append-only and hash-chained per organization, so that an edited,
// inserted or deleted record is found (Verify) and named.
//
// # The chain
//
// Each organization's records are numbered from 1 without gaps (Seq), and
// each carries
//
//	Hash_n = SHA-256(Hash_{n-1} || Canonical(record_n)),   Hash_0 = 32 zero bytes
//
// so a record's hash covers its own content and, through its predecessor's
// hash, every record before it. The store assigns Seq and computes Hash in
// the transaction that inserts the record, under a lock per organization
// (SQLite's one writer; a PostgreSQL advisory lock), from the
// organization's head: the Seq and Hash of its newest record, kept in a row
// of its own beside the records. The head is what makes a deleted tail
// visible: without it, dropping the newest records leaves a shorter chain
// that is still perfectly linked. See docs/adr/0020-hash-chained-audit.md
// for what the chain proves and what it cannot.
//
// # Canonical encoding (version 1)
//
// Canonical(r) is the bytes hashed for a record: the ASCII tag
// "rotor-audit-v1", then each field below in this order, each as a 4-byte
// big-endian length followed by that many bytes:
//
//	org, seq (decimal), at (UTC, "2006-01-02T15:04:05.000000Z", microseconds),
//	actor kind, actor id, actor name, action, object, outcome, error class,
//	request id, the number of runs (decimal), each run id, run id, step
//
// Strings are their UTF-8 bytes as stored (Normalize makes them valid
// UTF-8 without NUL, and bounds their length, before anything is hashed).
// The length prefixes make the encoding unambiguous: no two different
// records encode to the same bytes. Times are kept to the microsecond
// (PostgreSQL's precision) so a record hashes the same in either store.
// The Hash field itself is not part of the encoding. A change to this
// encoding is a new version tag; records never change version.
//
// No secret value reaches a record: its fields are identifiers and fixed
// vocabulary (an error's class, never its text; a journal step's kind,
// never its message).
package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Actor kinds, as the application layer spells them.
const (
	ActorUser   = "user"
	ActorToken  = "token"
	ActorSystem = "system"
)

// Outcomes, as the application layer spells them.
const (
	OutcomeOK     = "ok"
	OutcomeDenied = "denied"
	OutcomeFailed = "failed"
)

// Actor is who acted: a person (user), a client application or API key
// (token), or rotor itself (system).
type Actor struct {
	Kind string `json:"kind"`
	// ID is stable for the principal: a user's object id, a token's id,
	// "cli", "rotor".
	ID string `json:"id"`
	// Name is for people reading the trail (a user's UPN).
	Name string `json:"name,omitempty"`
}

// String is "kind:id".
func (a Actor) String() string { return a.Kind + ":" + a.ID }

// Record is one audit event of an organization, as kept in the trail.
type Record struct {
	Org domain.OrgID `json:"org"`
	// Seq is the record's place in its organization's trail: 1, 2, …,
	// without gaps. The store assigns it.
	Seq int64 `json:"seq"`
	// At is when it happened, in UTC, to the microsecond.
	At    time.Time `json:"at"`
	Actor Actor     `json:"actor"`
	// Action is what was done: an application layer action ("rotate",
	// "sync", …) or ActionRotationStep.
	Action string `json:"action"`
	// Object is what it was done to: "application:REF", "run:ID",
	// "inventory", ….
	Object string `json:"object"`
	// Outcome is ok, denied or failed.
	Outcome string `json:"outcome"`
	// Error is the class of the failure (fixed vocabulary), never its text.
	Error string `json:"error,omitempty"`
	// RequestID ties the record to an API request.
	RequestID string `json:"request_id,omitempty"`
	// Runs are the rotation runs the call started or acted on.
	Runs []string `json:"runs,omitempty"`
	// RunID and Step say which journal step of which run a
	// rotation.step record is.
	RunID string `json:"run_id,omitempty"`
	Step  string `json:"step,omitempty"`
	// Hash chains the record to its predecessor (see the package
	// documentation). The store computes it.
	Hash Hash `json:"hash"`
}

// Hash is a SHA-256 digest, written as 64 lowercase hex digits.
type Hash [32]byte

// String is the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros (the chain's start).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText writes hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash reads 64 hex digits (either case).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("a hash is %d hex digits, not %d", 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, errors.New("a hash is hex digits only")
	}
	return h, nil
}

// HashFromBytes is a stored hash; an error when it is not 32 bytes.
func HashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return h, fmt.Errorf("stored hash has %d bytes, not %d", len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// Head is an organization's newest record: its Seq and Hash, and when it
// was appended. The store keeps it apart from the records; `rotor audit
// verify` prints it as SEQ:HASH so that it can be kept somewhere rotor
// cannot write, and given back later as an anchor.
type Head struct {
	Seq  int64     `json:"seq"`
	Hash Hash      `json:"hash"`
	At   time.Time `json:"at,omitzero"`
}

// String is "SEQ:HASH".
func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash.String() }

// ParseHead reads "SEQ:HASH" as Head.String writes it (an anchor given
// back to verify).
func ParseHead(s string) (Head, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Head{}, fmt.Errorf("%q is not SEQ:HASH", s)
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < 1 {
		return Head{}, fmt.Errorf("%q: the sequence number must be a positive integer", s)
	}
	h, err := ParseHash(hash)
	if err != nil {
		return Head{}, fmt.Errorf("%q: %w", s, err)
	}
	return Head{Seq: n, Hash: h}, nil
}

// Bounds of a record's text fields, in bytes: longer values are cut (at a
// character boundary) and end in "…", so that a caller's reference of any
// length can be audited.
const (
	maxField = 1024
	maxRuns  = 10000
)

// Precision is the finest step of time a record keeps.
const Precision = time.Microsecond

// Normalize is r as the store keeps and hashes it: At in UTC truncated to
// Precision, every string valid UTF-8 without NUL and at most 1 KiB, an
// empty Runs nil. It fails when a field the trail needs is missing (org,
// time, actor kind and id, action, object, outcome) or there are more
// than 10,000 runs. Seq and Hash are left as they are.
func Normalize(r Record) (Record, error) {
	if r.At.IsZero() {
		return r, errors.New("audit record: at must be set")
	}
	if y := r.At.UTC().Year(); y < 1 || y > 9999 {
		return r, fmt.Errorf("audit record: at %s is outside years 0001-9999", r.At)
	}
	r.At = r.At.UTC().Round(0).Truncate(Precision)
	r.Org = domain.OrgID(clean(string(r.Org)))
	for _, f := range []*string{&r.Actor.Kind, &r.Actor.ID, &r.Actor.Name, &r.Action, &r.Object, &r.Outcome,
		&r.Error, &r.RequestID, &r.RunID, &r.Step} {
		*f = clean(*f)
	}
	switch {
	case r.Org == "":
		return r, errors.New("audit record: org must be set")
	case r.Actor.Kind == "" || r.Actor.ID == "":
		return r, errors.New("audit record: actor kind and id must be set")
	case r.Action == "" || r.Object == "" || r.Outcome == "":
		return r, errors.New("audit record: action, object and outcome must be set")
	case len(r.Runs) > maxRuns:
		return r, fmt.Errorf("audit record: %d runs, at most %d", len(r.Runs), maxRuns)
	}
	if len(r.Runs) == 0 {
		r.Runs = nil
	} else {
		runs := make([]string, len(r.Runs))
		for i, id := range r.Runs {
			runs[i] = clean(id)
		}
		r.Runs = runs
	}
	return r, nil
}

// clean makes s valid UTF-8 without NUL (PostgreSQL's text refuses both)
// and at most maxField bytes.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) <= maxField {
		return s
	}
	const ellipsis = "…"
	cut := maxField - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
