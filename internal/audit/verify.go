package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Source is one organization's trail as Verify reads it.
type Source interface {
	// Records returns up to limit records with Seq greater than after,
	// in Seq order.
	Records(ctx context.Context, after int64, limit int) ([]Record, error)
	// Head returns the organization's stored head; ok is false when it
	// has none.
	Head(ctx context.Context) (h Head, ok bool, err error)
}

// Kind says what Verify found wrong.
type Kind string

// Kinds of problem.
const (
	// Edited: a record does not match its hash, or the head, or an
	// anchor: its content (or hash) was changed.
	Edited Kind = "edited"
	// Missing: records were deleted: a gap in the sequence, a trail that
	// ends before its head, or records renumbered over a deleted one.
	Missing Kind = "missing"
	// Inserted: a record that the chain does not account for: one placed
	// between two others (the later ones renumbered), a sequence number
	// that appears twice, or records beyond the head.
	Inserted Kind = "inserted"
	// HeadMissing: records exist but the head that ends them is gone.
	HeadMissing Kind = "head-missing"
)

// Problem is the first thing wrong with a trail: the sequence number of
// the first record concerned, what is wrong, and why Verify thinks so.
type Problem struct {
	Seq    int64  `json:"seq"`
	Kind   Kind   `json:"kind"`
	Detail string `json:"detail"`
}

func (p *Problem) Error() string { return fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Detail) }

// Result is what Verify found.
type Result struct {
	Org domain.OrgID `json:"org"`
	// Intact is true when every record links to its predecessor, the
	// sequence has no gap, the newest record is the head and every
	// anchor matches.
	Intact bool `json:"intact"`
	// Records counts the records verified (before the problem, if any).
	Records int64 `json:"records"`
	// Head is the head the store holds (nil when none: an empty trail, or
	// a deleted head).
	Head *Head `json:"head,omitempty"`
	// Anchors counts the anchors checked.
	Anchors int `json:"anchors,omitempty"`
	// Problem is the first thing wrong; nil when Intact.
	Problem *Problem `json:"problem,omitempty"`
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Anchors are heads recorded earlier (SEQ:HASH), kept where rotor
	// cannot write: each record they name must still have their hash.
	// They catch what the chain alone cannot, a trail rewritten whole.
	Anchors []Head
	// PageSize is how many records are read at once (default 1000).
	PageSize int
}

// Verify walks an organization's trail from seq 1 and reports the first
// record that is not what the chain says it must be. It recomputes each
// record's hash from its content and its predecessor's stored hash, checks
// that the sequence has no gap or repeat, and that the trail ends at the
// stored head (so a deleted tail is seen). When a record does not match,
// it looks at its neighbours to say whether it was edited, or a record was
// inserted or deleted around it.
//
// Records appended while Verify runs are fine: the head is read after the
// records, and the records between what was read and that head are read
// then. An error is returned only when the source cannot be read.
func Verify(ctx context.Context, org domain.OrgID, src Source, opts VerifyOptions) (Result, error) {
	v := &verifier{ctx: ctx, src: src, size: opts.PageSize, expect: 1, anchors: map[int64]Hash{}}
	if v.size <= 0 {
		v.size = 1000
	}
	for _, a := range opts.Anchors {
		v.anchors[a.Seq] = a.Hash
	}
	res := Result{Org: org, Anchors: len(opts.Anchors)}
	finish := func(p *Problem) (Result, error) {
		res.Records, res.Problem, res.Intact = v.count, p, p == nil
		return res, nil
	}

	// Every record read now was committed before the head is read below,
	// so none can legitimately lie beyond it.
	if p, err := v.scan(0); err != nil || p != nil {
		return finishOrErr(finish, p, err)
	}
	head, ok, err := src.Head(ctx)
	if err != nil {
		return res, fmt.Errorf("read the audit head: %w", err)
	}
	if ok {
		res.Head = &head
	}
	if ok && head.Seq > v.last {
		// Appended since the scan ended (or deleted): read up to the head.
		v.eof = false
		if p, err := v.scan(head.Seq); err != nil || p != nil {
			return finishOrErr(finish, p, err)
		}
	}
	switch {
	case !ok && v.last > 0:
		return finish(&Problem{Seq: v.last, Kind: HeadMissing,
			Detail: fmt.Sprintf("the trail has records up to seq %d but no head: the head was deleted, so a deleted tail could not be seen", v.last)})
	case ok && head.Seq < v.last:
		return finish(&Problem{Seq: head.Seq + 1, Kind: Inserted,
			Detail: fmt.Sprintf("seq %d..%d lie beyond the head (seq %d): they were inserted, or the head was moved back", head.Seq+1, v.last, head.Seq)})
	case ok && head.Seq > v.last:
		return finish(&Problem{Seq: v.last + 1, Kind: Missing,
			Detail: fmt.Sprintf("the head is seq %d but the trail ends at seq %d: the newest %s deleted", head.Seq, v.last, plural(head.Seq-v.last, "record was", "records were"))})
	case ok && head.Seq > 0 && head.Hash != v.prev:
		return finish(&Problem{Seq: v.last, Kind: Edited,
			Detail: fmt.Sprintf("the newest record, seq %d, does not match the head: it was rewritten (with a recomputed hash), or the head was changed", v.last)})
	}
	for seq := range v.anchors {
		if seq > v.last {
			return finish(&Problem{Seq: seq, Kind: Missing,
				Detail: fmt.Sprintf("an anchor names seq %d but the trail ends at seq %d: records were deleted, the head with them", seq, v.last)})
		}
	}
	return finish(nil)
}

func finishOrErr(finish func(*Problem) (Result, error), p *Problem, err error) (Result, error) {
	if err != nil {
		r, _ := finish(nil)
		r.Intact = false
		return r, err
	}
	return finish(p)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// verifier walks the records in order with a little lookahead.
type verifier struct {
	ctx  context.Context
	src  Source
	size int
	// buf holds records read and not yet verified; fetched is the highest
	// Seq read, eof whether the source had no more.
	buf     []Record
	fetched int64
	eof     bool

	expect   int64 // the Seq the next record must have
	last     int64 // the Seq of the last record verified
	prev     Hash  // its stored hash
	prevprev Hash  // the stored hash of the one before
	count    int64
	anchors  map[int64]Hash
}

// peek returns the k-th record not yet verified (0: the next).
func (v *verifier) peek(k int) (Record, bool, error) {
	for len(v.buf) <= k && !v.eof {
		page, err := v.src.Records(v.ctx, v.fetched, v.size)
		if err != nil {
			return Record{}, false, fmt.Errorf("read the audit trail after seq %d: %w", v.fetched, err)
		}
		if len(page) == 0 {
			v.eof = true
			break
		}
		if page[len(page)-1].Seq <= v.fetched {
			return Record{}, false, errors.New("the audit source returned records out of order")
		}
		v.buf = append(v.buf, page...)
		v.fetched = page[len(page)-1].Seq
	}
	if len(v.buf) <= k {
		return Record{}, false, nil
	}
	return v.buf[k], true, nil
}

// scan verifies records until the source has no more, or (upTo > 0) the
// next one lies beyond upTo, or a problem is found.
func (v *verifier) scan(upTo int64) (*Problem, error) {
	for {
		r, ok, err := v.peek(0)
		if err != nil || !ok {
			return nil, err
		}
		if upTo > 0 && r.Seq > upTo {
			return nil, nil
		}
		if p, err := v.check(r); err != nil || p != nil {
			return p, err
		}
		v.buf = v.buf[1:]
		v.prevprev, v.prev, v.last = v.prev, r.Hash, r.Seq
		v.expect = r.Seq + 1
		v.count++
	}
}

// check verifies one record against its predecessor, and when it does not
// match, works out from its neighbours what happened.
func (v *verifier) check(r Record) (*Problem, error) {
	s := v.expect
	switch {
	case r.Seq < s:
		return &Problem{Seq: r.Seq, Kind: Inserted,
			Detail: fmt.Sprintf("seq %d appears again after seq %d: a record was inserted under a number already taken", r.Seq, v.last)}, nil
	case r.Seq > s && s == 1:
		return &Problem{Seq: 1, Kind: Missing,
			Detail: fmt.Sprintf("the trail starts at seq %d: seq 1..%d were deleted", r.Seq, r.Seq-1)}, nil
	case r.Seq > s:
		return &Problem{Seq: s, Kind: Missing,
			Detail: fmt.Sprintf("seq %s missing between seq %d and seq %d: deleted", seqRange(s, r.Seq-1), v.last, r.Seq)}, nil
	}
	if Link(v.prev, r) == r.Hash {
		if want, ok := v.anchors[r.Seq]; ok && want != r.Hash {
			return &Problem{Seq: r.Seq, Kind: Edited,
				Detail: fmt.Sprintf("seq %d links to the records before it but its hash is not the anchor's: the trail was rewritten, its hashes recomputed, at or before seq %d", r.Seq, r.Seq)}, nil
		}
		return nil, nil
	}

	next, hasNext, err := v.peek(1)
	if err != nil {
		return nil, err
	}
	hasNext = hasNext && next.Seq == s+1
	// The record after this one is the original seq s, renumbered: this
	// one was put in between.
	if hasNext && Link(v.prev, withSeq(next, s)) == next.Hash {
		return &Problem{Seq: s, Kind: Inserted,
			Detail: fmt.Sprintf("seq %d was inserted: the record after it is the original seq %d, renumbered to %d", s, s, s+1)}, nil
	}
	// This record is the original seq s-1, renumbered: the one before it
	// was put in between (with a hash computed to fit).
	if s >= 2 && Link(v.prevprev, withSeq(r, s-1)) == r.Hash {
		return &Problem{Seq: s - 1, Kind: Inserted,
			Detail: fmt.Sprintf("seq %d was inserted: the record after it is the original seq %d, renumbered to %d", s-1, s-1, s)}, nil
	}
	// This record is the original seq s+1 and the next the original s+2,
	// both renumbered down: the original seq s was deleted.
	if hasNext && Link(r.Hash, withSeq(next, s+2)) == next.Hash {
		return &Problem{Seq: s, Kind: Missing,
			Detail: fmt.Sprintf("the original seq %d was deleted and the records after it renumbered down by one", s)}, nil
	}
	detail := fmt.Sprintf("seq %d does not match its hash: its content (or its hash) was changed", s)
	if s > 1 {
		detail += fmt.Sprintf(", or seq %d before it was rewritten with a recomputed hash", s-1)
	}
	return &Problem{Seq: s, Kind: Edited, Detail: detail}, nil
}

func withSeq(r Record, seq int64) Record {
	r.Seq = seq
	return r
}

func seqRange(from, to int64) string {
	if from == to {
		return fmt.Sprintf("%d is", from)
	}
	return fmt.Sprintf("%d..%d are", from, to)
}
