package app

import (
	"context"
	"fmt"
)

// runWindow is how many of an application's newest runs LastRunSeq and
// NextRun read. Runs are listed by creation time, which hosts' clocks
// write; Seq is what orders them truly. A window of several runs absorbs
// clocks a few seconds apart, and an application never has more than one
// active run, so the run a job starts is always among its newest.
const runWindow = 20

// LastRunSeq is the Seq of the application's newest run (0: it has none).
// "Rotate now" reads it before it enqueues the rotation, so that the page
// it leads to can tell the run the job starts — on whichever replica —
// from the runs that were there before (NextRun).
func (s *Service) LastRunSeq(ctx context.Context, scope Scope, ref string) (int64, error) {
	rows, err := s.ListRuns(ctx, scope, RunFilter{App: ref, Limit: runWindow})
	if err != nil {
		return 0, err
	}
	var last int64
	for _, r := range rows {
		last = max(last, r.Seq)
	}
	return last, nil
}

// NextRun is the first run of the application after the run numbered
// afterSeq (LastRunSeq), or nil while no such run has started. It reads
// the store, so it finds a run whichever process carries it out.
func (s *Service) NextRun(ctx context.Context, scope Scope, ref string, afterSeq int64) (*RunRow, error) {
	if afterSeq < 0 {
		return nil, &InvalidError{Field: "after", Message: "must not be negative"}
	}
	rows, err := s.ListRuns(ctx, scope, RunFilter{App: ref, Limit: runWindow})
	if err != nil {
		return nil, fmt.Errorf("runs after %d: %w", afterSeq, err)
	}
	var next *RunRow
	for i, r := range rows {
		if r.Seq > afterSeq && (next == nil || r.Seq < next.Seq) {
			next = &rows[i]
		}
	}
	return next, nil
}
