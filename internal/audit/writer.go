package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
)

// Appender appends a record to its organization's trail, giving it its
// Seq and Hash in the same transaction (store.Store.AppendAudit).
type Appender interface {
	AppendAudit(ctx context.Context, r Record) (Record, error)
}

// writeTimeout bounds one append, so that a database that hangs cannot
// hold the call being audited for ever.
const writeTimeout = 15 * time.Second

// Writer writes records to the trail on behalf of callers that must not
// fail because auditing did: Write never returns an error. A record that
// cannot be written is lost, and says so: the first failure of a streak
// logs one ERROR ("audit trail write failed", the line to alert on), the
// rest of the streak only at debug level, and the first success after it
// an INFO line with how many records were lost. Every record is also
// logged at debug level. It is safe for concurrent use.
type Writer struct {
	app   Appender
	log   *slog.Logger
	clock clock.Clock

	mu      sync.Mutex
	failing bool
	lost    int64 // in the current streak
	total   int64 // since the Writer was made
}

// NewWriter returns a Writer appending to app. A nil clock is the wall
// clock; a nil logger discards.
func NewWriter(app Appender, log *slog.Logger, clk clock.Clock) *Writer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Writer{app: app, log: log, clock: clk}
}

// Write appends r (At defaults to now). It does not return before the
// record is committed or has failed; ctx's cancellation does not stop it
// (a call cancelled half-way is still audited), a timeout of 15 s does.
func (w *Writer) Write(ctx context.Context, r Record) {
	if r.At.IsZero() {
		r.At = w.clock.Now()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	stored, err := w.app.AppendAudit(ctx, r)
	if err != nil {
		w.failed(ctx, r, err)
		return
	}
	w.log.LogAttrs(ctx, slog.LevelDebug, "audit",
		slog.String("org", string(stored.Org)), slog.Int64("seq", stored.Seq), slog.String("actor", stored.Actor.String()),
		slog.String("action", stored.Action), slog.String("object", stored.Object), slog.String("outcome", stored.Outcome),
		slog.String("error", stored.Error), slog.String("request_id", stored.RequestID), slog.Any("runs", stored.Runs),
		slog.String("run", stored.RunID), slog.String("step", stored.Step))
	w.mu.Lock()
	recovered, lost := w.failing, w.lost
	w.failing, w.lost = false, 0
	w.mu.Unlock()
	if recovered {
		w.log.Info("audit trail writes again", "lost", lost)
	}
}

func (w *Writer) failed(ctx context.Context, r Record, err error) {
	w.mu.Lock()
	first := !w.failing
	w.failing = true
	w.lost++
	w.total++
	w.mu.Unlock()
	level := slog.LevelDebug
	msg := "audit trail write failed again"
	if first {
		level = slog.LevelError
		msg = "audit trail write failed"
	}
	// The record's fields are identifiers and fixed vocabulary: safe to
	// log. The error is the store's.
	w.log.LogAttrs(ctx, level, msg,
		slog.String("org", string(r.Org)), slog.String("actor", r.Actor.String()), slog.String("action", r.Action),
		slog.String("object", r.Object), slog.String("outcome", r.Outcome), slog.String("run", r.RunID), slog.String("step", r.Step),
		slog.String("error", err.Error()),
		slog.String("consequence", "this audit record is lost; until a write succeeds, further failures are logged at debug level only"))
}

// Lost counts the records this Writer could not write.
func (w *Writer) Lost() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}
