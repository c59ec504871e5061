package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// canonicalTag starts every version 1 encoding.
const canonicalTag = "rotor-audit-v1"

// timeLayout is how At is encoded: UTC, microseconds, fixed width.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Canonical is the deterministic encoding of r that its hash covers (see
// the package documentation for the layout). r should be Normalized: the
// encoding takes its fields as they are, except that At is written in UTC
// at Precision.
func Canonical(r Record) []byte {
	fields := make([]string, 0, 16+len(r.Runs))
	fields = append(fields,
		string(r.Org),
		strconv.FormatInt(r.Seq, 10),
		r.At.UTC().Truncate(Precision).Format(timeLayout),
		r.Actor.Kind, r.Actor.ID, r.Actor.Name,
		r.Action, r.Object, r.Outcome, r.Error, r.RequestID,
		strconv.Itoa(len(r.Runs)),
	)
	fields = append(fields, r.Runs...)
	fields = append(fields, r.RunID, r.Step)

	n := len(canonicalTag)
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, canonicalTag...)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// Link is the hash of r chained to its predecessor's hash prev (the zero
// Hash for the first record): SHA-256(prev || Canonical(r)).
func Link(prev Hash, r Record) Hash {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(Canonical(r))
	var out Hash
	h.Sum(out[:0])
	return out
}
