package ui

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// RunPageSize is how many runs one page of the rotation history shows.
const RunPageSize = 50

// stateActive is the state filter's value for every run still holding its
// application (domain.ActiveStates).
const stateActive = "active"

// runRoutes registers the rotation pages: the history, one run, its live
// event stream, the page that waits for a queued rotation, and "Rotate
// now" on the application page.
func (u *UI) runRoutes() {
	u.mux.HandleFunc("GET "+u.base+"/runs", u.withScope(u.runs))
	u.mux.HandleFunc("GET "+u.base+"/runs/live", u.withScope(u.runLive))
	u.mux.HandleFunc("GET "+u.base+"/runs/{id}", u.withScope(u.run))
	u.mux.HandleFunc("GET "+u.base+"/runs/{id}/events", u.withScope(u.runEvents))
	u.mux.HandleFunc("POST "+u.base+"/applications/{ref}/rotate", u.withScope(u.rotateNow))
}

// runsQuery is the history's query string, parsed: what the form shows
// and what every link carries on.
type runsQuery struct {
	// State is "", stateActive or a domain.RunState.
	State   string
	App     string
	Trigger string
	Cursor  string
}

func parseRunsQuery(v url.Values) (runsQuery, error) {
	q := runsQuery{State: v.Get("state"), App: strings.TrimSpace(v.Get("app")), Trigger: v.Get("trigger"), Cursor: v.Get("cursor")}
	if q.State != "" && q.State != stateActive && !slices.Contains(app.RunStates(), domain.RunState(q.State)) {
		return q, &app.InvalidError{Field: "state", Message: "is not a run state"}
	}
	if q.Trigger != "" && !slices.Contains(app.RunTriggers, domain.Trigger(q.Trigger)) {
		return q, &app.InvalidError{Field: "trigger", Message: "is not a run trigger"}
	}
	return q, nil
}

func (q runsQuery) filter() app.RunFilter {
	f := app.RunFilter{App: q.App}
	switch q.State {
	case "":
	case stateActive:
		f.States = slices.Clone(domain.ActiveStates)
	default:
		f.States = []domain.RunState{domain.RunState(q.State)}
	}
	if q.Trigger != "" {
		f.Triggers = []domain.Trigger{domain.Trigger(q.Trigger)}
	}
	return f
}

func (q runsQuery) values(cursor string) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"state": q.State, "app": q.App, "trigger": q.Trigger, "cursor": cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

func (u *UI) runsURL(v url.Values) string {
	s := u.base + "/runs"
	if len(v) > 0 {
		s += "?" + v.Encode()
	}
	return s
}

func (u *UI) runURL(id string) string { return u.base + "/runs/" + url.PathEscape(id) }

type runsView struct {
	layout
	Query    runsQuery
	States   []string
	Triggers []domain.Trigger
	Rows     []runRowView
	NextURL  string
	FirstURL string
}

type runRowView struct {
	app.RunRow
	URL, AppURL string
	// Step is what an active run is doing now (its last journal line);
	// empty for any other.
	Step string
}

// runs is the organization's rotation history, newest first, one keyset
// page at a time, filtered by state, application and trigger.
func (u *UI) runs(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	q, err := parseRunsQuery(r.URL.Query())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	page, err := u.app.ListRunsPage(r.Context(), scope, q.filter(), app.RunPageRequest{Cursor: q.Cursor, Limit: RunPageSize})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := runsView{layout: u.frame(r, "runs", "Rotations"), Query: q, Triggers: app.RunTriggers, Rows: make([]runRowView, 0, len(page.Rows))}
	v.States = append(v.States, stateActive)
	for _, s := range app.RunStates() {
		v.States = append(v.States, string(s))
	}
	for _, row := range page.Rows {
		rv := runRowView{RunRow: row, URL: u.runURL(row.ID), AppURL: u.appURL(row.ObjectID)}
		// Only active runs are read whole (a retiring one is only waiting
		// for its overlap): at most one per application, so a page costs
		// few reads however long the history.
		if row.State.Active() {
			if run, err := u.app.GetRun(r.Context(), scope, row.ID); err == nil && len(run.Events) > 0 {
				rv.Step = stepLabel(run.Events[len(run.Events)-1].Step)
			}
		}
		v.Rows = append(v.Rows, rv)
	}
	if page.Next != "" {
		v.NextURL = u.runsURL(q.values(page.Next))
	}
	if q.Cursor != "" {
		v.FirstURL = u.runsURL(q.values(""))
	}
	u.render(w, r, http.StatusOK, "runs", "layout.html", v)
}

// runView is one run's page: its facts, its journal as a timeline and,
// when it is over (or waiting for its overlap), what it came to.
type runView struct {
	layout
	Run        *domain.Run
	AppURL     string
	RunsURL    string
	RefreshURL string
	// EventsURL is the live stream's address, with the number of steps
	// the page shows; empty once the run is final (nothing more to wait
	// for).
	EventsURL string
	Steps     []stepView
	Outcome   string
	// Failure explains the failure class to people.
	Failure string
}

// stepView is one timeline row.
type stepView struct {
	N             int
	Kind          string
	AtISO, AtText string
	// Since is the time since the previous step ("+2.1s"); empty for the
	// first.
	Since   string
	Label   string
	Message string
	Target  string
}

func stepViews(events []domain.RunEvent, from int) []stepView {
	out := make([]stepView, 0, max(0, len(events)-from))
	for i := from; i < len(events); i++ {
		out = append(out, stepViewOf(events, i))
	}
	return out
}

func stepViewOf(events []domain.RunEvent, i int) stepView {
	e := events[i]
	s := stepView{N: i + 1, Kind: string(e.Step.Kind), AtISO: e.At.UTC().Format(time.RFC3339Nano), AtText: e.At.UTC().Format("2006-01-02 15:04:05 UTC"),
		Label: stepLabel(e.Step), Message: e.Message, Target: e.Target}
	if i > 0 {
		s.Since = "+" + fmtDuration(e.At.Sub(events[i-1].At))
	}
	return s
}

// final reports whether a run will write no more journal lines worth
// waiting for on a page: it is over, or its new secret is in place and
// only the overlap is left (retirement comes hours later).
func final(s domain.RunState) bool { return s.Terminal() || s == domain.RunRetiring }

// outcome says what a final run came to, for people.
func outcome(r *domain.Run) string {
	switch r.State {
	case domain.RunRetiring:
		return "done: new secret in place, old one retires at " + fmtDate(r.RetireAt)
	case domain.RunDone:
		return "done: new secret in place, older credentials retired"
	case domain.RunFailed:
		return "failed: " + cmp.Or(r.Error, "no reason was recorded")
	case domain.RunAbandoned:
		return "abandoned: the rotor process running it stopped; a fresh run replaces it"
	}
	return ""
}

// failureText spells a failure class for people.
func failureText(c domain.FailureClass) string {
	switch c {
	case domain.FailureTransient:
		return "A passing problem (throttling, an Azure error, the network): rotor tries again soon by itself."
	case domain.FailurePermanent:
		return "A person must change something first (a permission, the policy, the application's owners or a sink's target); rotor does not retry until then."
	case domain.FailureRemoved:
		return "The secret this run delivered was removed from Entra before its time; rotor rotates again at once."
	}
	return ""
}

// stepLabel names a journal step for people.
func stepLabel(s domain.Step) string {
	switch s.Kind {
	case domain.StepPlanned:
		return "Planned"
	case domain.StepCreated:
		return "New secret created"
	case domain.StepReplicating:
		return "Waiting for Entra to replicate it"
	case domain.StepSink:
		return fmt.Sprintf("Sink %d: %s", s.Index+1, s.Phase)
	case domain.StepFinish:
		return fmt.Sprintf("Sink %d, after delivery: %s", s.Index+1, s.Phase)
	case domain.StepPropagated:
		return "Every sink holds it"
	case domain.StepVerifying:
		return "Verifying a sign-in with it"
	case domain.StepVerified:
		return "Verified"
	case domain.StepRetiring:
		return "Older credentials retire after the overlap"
	case domain.StepRetire:
		return "Older credential " + string(s.Phase)
	case domain.StepRetireScheduleFailed:
		return "Retirement not scheduled"
	case domain.StepCleanup:
		return "Unused new credential " + string(s.Phase)
	case domain.StepMakeRoom:
		return "Expired credential " + string(s.Phase) + " to make room"
	case domain.StepTakenOver:
		return "Taken over by another rotor process"
	case domain.StepTargetMoved:
		return fmt.Sprintf("Sink %d: target moved", s.Index+1)
	case domain.StepDone:
		return "Done"
	case domain.StepFailed:
		return "Failed"
	case domain.StepAbandoned:
		return "Abandoned"
	}
	return s.String()
}

// fmtDuration is a step's distance from the previous one, short.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// run is one run: its journal as a timeline. Another organization's run
// id is not found (GetRun reads within the scope's organization).
func (u *UI) run(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	run, err := u.app.GetRun(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := runView{layout: u.frame(r, "runs", "Rotation of "+run.AppName), Run: run, AppURL: u.appURL(run.AppObjectID),
		RunsURL: u.runsURL(nil), RefreshURL: u.runURL(run.ID), Steps: stepViews(run.Events, 0), Failure: failureText(run.Failure)}
	if final(run.State) {
		v.Outcome = outcome(run)
	} else {
		v.EventsURL = u.runURL(run.ID) + "/events?from=" + strconv.Itoa(len(run.Events))
	}
	u.render(w, r, http.StatusOK, "run", "layout.html", v)
}

// rotateNow is the application page's "Rotate now": it hands the rotation
// to the job system (any replica may carry it out) and sends the browser
// to the page that waits for its run. The Seq of the application's newest
// run, read first, is how that page tells the new run from older ones
// without trusting any host's clock.
func (u *UI) rotateNow(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	ref := r.PathValue("ref")
	after, err := u.app.LastRunSeq(r.Context(), scope, ref)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	// A rotation of the application already under way is the one the
	// person asked for: a job queued now would find it and start nothing,
	// leaving the waiting page to wait for a run that never comes.
	if after > 0 {
		recent, err := u.app.ListRuns(r.Context(), scope, app.RunFilter{App: ref, Limit: 5})
		if err != nil {
			u.fail(w, r, err)
			return
		}
		for _, run := range recent {
			if run.Seq == after && run.State.Active() {
				http.Redirect(w, r, u.runURL(run.ID), http.StatusSeeOther)
				return
			}
		}
	}
	res, err := u.app.Enqueue(r.Context(), scope, ref)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := url.Values{"app": {res.Application.ObjectID}, "after": {strconv.FormatInt(after, 10)}, "at": {strconv.FormatInt(u.clock.Now().Unix(), 10)}}
	http.Redirect(w, r, u.base+"/runs/live?"+v.Encode(), http.StatusSeeOther)
}

// LiveRefresh is how often the page waiting for a queued rotation reloads
// itself (a Refresh header: it works without JavaScript); LiveGiveUp is
// how long after the enqueue it stops and says no run has started.
const (
	LiveRefresh = 2 * time.Second
	LiveGiveUp  = 2 * time.Minute
)

type liveView struct {
	layout
	App        string
	AppURL     string
	QueuedAt   time.Time
	GaveUp     bool
	RefreshURL string
}

// runLive waits for the run a queued rotation starts: as soon as the
// store has a run of the application after the one numbered "after", it
// redirects there; until then it reloads itself.
func (u *UI) runLive(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	q := r.URL.Query()
	ref := q.Get("app")
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if ref == "" || err != nil {
		u.fail(w, r, &app.InvalidError{Field: "after", Message: "the page needs app and after (follow Rotate now)"})
		return
	}
	next, err := u.app.NextRun(r.Context(), scope, ref, after)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if next != nil {
		http.Redirect(w, r, u.runURL(next.ID), http.StatusSeeOther)
		return
	}
	v := liveView{layout: u.frame(r, "runs", "Rotation queued"), App: ref, AppURL: u.appURL(ref), RefreshURL: r.URL.RequestURI()}
	if at, err := strconv.ParseInt(q.Get("at"), 10, 64); err == nil {
		v.QueuedAt = time.Unix(at, 0)
		v.GaveUp = u.clock.Now().Sub(v.QueuedAt) > LiveGiveUp
	}
	if !v.GaveUp {
		w.Header().Set("Refresh", strconv.Itoa(int(LiveRefresh/time.Second)))
	}
	u.render(w, r, http.StatusOK, "live", "layout.html", v)
}

// liveTimings pace the event stream of a run page. They are transport
// timings (when to look again, when to send a keep-alive, when to stop),
// measured on the wall clock like the socket deadlines they sit beside,
// never decisions about a run.
type liveTimings struct {
	// poll is how often the stream reads the run from the store, the
	// source of truth whichever process runs it.
	poll time.Duration
	// heartbeat is how often a comment is sent when nothing else is, so
	// that proxies keep the connection open.
	heartbeat time.Duration
	// limit is how long one stream lasts at most.
	limit time.Duration
	// writeGrace is how long one write may take before the connection is
	// given up (it replaces the server's WriteTimeout for the stream).
	writeGrace time.Duration
}

var defaultLive = liveTimings{poll: time.Second, heartbeat: 15 * time.Second, limit: 10 * time.Minute, writeGrace: 30 * time.Second}

// runEvents streams a run's new journal steps as server-sent events, each
// the HTML of one timeline row, then a "done" event when the run is final
// (or "stopped" when the stream gives up). The store is the source of
// truth: the run is read again every poll, so a run carried out by
// another replica streams just the same; Observe, this process's journal
// relay, only wakes the stream sooner. Event ids count steps, so a
// reconnecting EventSource (Last-Event-ID) resumes where it was.
func (u *UI) runEvents(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	ctx := r.Context()
	id := r.PathValue("id")
	run, err := u.app.GetRun(ctx, scope, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	sent := 0
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("from")
	}
	if n, err := strconv.Atoi(from); err == nil && n > 0 {
		sent = min(n, len(run.Events))
	}

	// The server's WriteTimeout (60 s in serve) would cut the stream: each
	// write sets its own deadline instead (stream.write). Its ReadTimeout
	// does not matter here: net/http lifts the read deadline once the
	// request is read.
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	st := &stream{w: w, rc: rc, grace: u.live.writeGrace}
	wake := make(chan struct{}, 1)
	stop := u.app.Observe(func(rn domain.Run, _ domain.Step) {
		// Only a signal: nothing of what the relay carries reaches the
		// client, so another organization's run could not leak even if
		// the check below were wrong.
		if rn.Org == scope.Org && rn.ID == id {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	defer stop()
	poll := time.NewTicker(u.live.poll)
	defer poll.Stop()
	beat := time.NewTicker(u.live.heartbeat)
	defer beat.Stop()
	limit := time.NewTimer(u.live.limit)
	defer limit.Stop()

	state := domain.RunState("")
	for {
		for ; sent < len(run.Events); sent++ {
			var b strings.Builder
			if err := u.pages["run"].ExecuteTemplate(&b, "step", stepViewOf(run.Events, sent)); err != nil {
				u.log.ErrorContext(ctx, "ui: events: render", "err", err)
				return
			}
			st.event(strconv.Itoa(sent+1), "step", b.String())
		}
		if run.State != state {
			state = run.State
			st.event("", "state", string(state))
		}
		if final(run.State) {
			st.event("", "done", outcome(run))
			st.flush()
			return
		}
		if !st.flush() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-limit.C:
			st.event("", "stopped", "Live updates stop after "+u.live.limit.String()+"; refresh the page to see more.")
			st.flush()
			return
		case <-beat.C:
			st.comment("heartbeat")
			continue
		case <-wake:
		case <-poll.C:
		}
		// The scope was the session's when the stream began: a person who
		// has signed out since (or whose session expired or was ended)
		// stops receiving the run.
		if u.alive != nil && !u.alive(r) {
			st.event("", "stopped", "You are signed out; sign in again to follow this run.")
			st.flush()
			return
		}
		next, err := u.app.GetRun(ctx, scope, id)
		if err != nil {
			if ctx.Err() == nil {
				u.log.WarnContext(ctx, "ui: events: read run", "run", id, "err", err)
				st.event("", "stopped", "rotor could not read the run; refresh the page.")
				st.flush()
			}
			return
		}
		run = next
	}
}

// stream writes server-sent events, remembering the first write error
// (the client went away): after it, every write is skipped.
type stream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	grace time.Duration
	err   error
}

func (s *stream) write(p string) {
	if s.err != nil {
		return
	}
	// Wall time: a socket deadline is the network's clock.
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.grace)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
		return
	}
	_, s.err = fmt.Fprint(s.w, p)
}

// event writes one event; data may span lines (each is a data: line, the
// client joins them with newlines).
func (s *stream) event(id, name, data string) {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + name + "\n")
	for line := range strings.SplitSeq(strings.ReplaceAll(data, "\r", ""), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	s.write(b.String())
}

func (s *stream) comment(text string) {
	s.write(": " + text + "\n\n")
	s.flush()
}

// flush sends what was written; false once the client is gone.
func (s *stream) flush() bool {
	if s.err == nil {
		if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.err = err
		}
	}
	return s.err == nil
}
