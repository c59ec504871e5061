package cli_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
)

const bulkSeed = "apps=40,tenants=2,expiring=2h,replication=0s"

// appRow is the subset of `apps list -o json` the tests read.
type appRow struct {
	Name       string    `json:"name"`
	AppID      string    `json:"app_id"`
	ObjectID   string    `json:"object_id"`
	Connection string    `json:"connection"`
	Manageable bool      `json:"manageable"`
	Secrets    int       `json:"secrets"`
	Certs      int       `json:"certificates"`
	NextExpiry time.Time `json:"next_expiry"`
	Policy     string    `json:"policy"`
	Status     string    `json:"status"`
	DueAt      time.Time `json:"due_at"`
}

func TestSyncDemo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	want := len(e.apps())
	require.Greater(t, want, 80, "the demo seeds ~40 applications in each of two tenants")

	out, errOut := e.mustRun("sync")
	require.Equal(t, fmt.Sprintf("inventory holds %d applications\n", want), out)
	for _, tn := range e.info.Tenants {
		n := 0
		for _, a := range e.apps() {
			if a.tenant == tn.Name {
				n++
			}
		}
		require.Contains(t, errOut, fmt.Sprintf("%s: %d applications seen, %d changed", tn.Name, n, n), "progress per connection")
	}

	// A second sync reads only what changed (nothing) and still counts
	// everything.
	out, errOut = e.mustRun("sync")
	require.Equal(t, fmt.Sprintf("inventory holds %d applications\n", want), out)
	require.Contains(t, errOut, "0 changes since the last sync, 0 written")
	require.NotContains(t, errOut, "level=WARN")
}

func TestSyncAndListBulk(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bulkSeed, 0)
	out, errOut := e.mustRun("sync")
	// 40 applications and rotor's own rotation identity in each of 2 tenants.
	require.Equal(t, "inventory holds 82 applications\n", out)
	require.Contains(t, errOut, "tenant1: 41 applications seen")
	require.Contains(t, errOut, "tenant2: 41 applications seen")

	var rows []appRow
	e.mustJSON(&rows, "apps", "list")
	require.Len(t, rows, 82)
	manageable := 0
	for _, r := range rows {
		if r.Manageable {
			manageable++
			require.Equal(t, r.Connection+"-owned", r.Policy, r.Name)
			require.Equal(t, "due now (adoption)", r.Status, r.Name)
		} else {
			require.Equal(t, "rotor-rotation", r.Name, "only rotor's own identity is not owned by itself")
		}
	}
	require.Equal(t, 80, manageable)

	// Every bulk secret ends within 2h, spread evenly: half within 1h.
	e.mustJSON(&rows, "apps", "list", "--expiring", "1h")
	require.Len(t, rows, 40)
	for _, r := range rows {
		require.True(t, r.NextExpiry.Before(time.Now().Add(time.Hour)), "%s ends %s", r.Name, r.NextExpiry)
	}
	e.mustJSON(&rows, "apps", "list", "--expiring", "3h")
	require.Len(t, rows, 80)
	e.mustJSON(&rows, "apps", "list", "--expiring", "3h", "--connection", "tenant2")
	require.Len(t, rows, 40)
	for _, r := range rows {
		require.Equal(t, "tenant2", r.Connection)
	}
	e.mustJSON(&rows, "apps", "list", "--connection", "nosuch")
	require.Empty(t, rows)

	code, _, errOut := e.run("apps", "list", "--expiring", "soon")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "--expiring")
	require.Contains(t, errOut, "Run 'rotor apps list --help' for usage.")
}

func TestAppsListDemo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	simApps := e.apps()

	// Before a sync the list is empty, and says how to fill it.
	out, errOut := e.mustRun("apps", "list")
	require.Equal(t, 1, countLines(out), "only the header: %q", out)
	require.Contains(t, errOut, "run 'rotor sync'")

	e.mustRun("sync")
	var rows []appRow
	e.mustJSON(&rows, "apps", "list")
	require.Len(t, rows, len(simApps))
	owned := 0
	for _, a := range simApps {
		if a.owned {
			owned++
		}
	}
	byKey := map[string]appRow{}
	manageable := 0
	for _, r := range rows {
		require.NotEmpty(t, r.Name)
		require.NotEmpty(t, r.AppID, r.Name)
		require.NotEmpty(t, r.ObjectID, r.Name)
		require.NotEmpty(t, r.Status, r.Name)
		require.Contains(t, []string{"contoso", "fabrikam"}, r.Connection)
		if r.Manageable {
			manageable++
		}
		byKey[r.Connection+"/"+r.Name] = r
	}
	require.Equal(t, owned, manageable, "manageable = owned by the rotation identity")
	require.Less(t, manageable, len(rows), "the demo has applications rotor does not own")

	// The raw JSON carries the documented field names.
	out, _ = e.mustRun("apps", "list", "-o", "json", "--prefix", "web-storefront")
	for _, k := range []string{`"name": "web-storefront"`, `"app_id": "`, `"object_id": "`, `"connection": "`, `"manageable": true`, `"status": "due now (adoption)"`, `"policy": "contoso-web"`, `"secrets": `, `"next_expiry": "`} {
		require.Contains(t, out, k)
	}

	sf := byKey["contoso/web-storefront"]
	require.Equal(t, e.app("contoso", "web-storefront").appID, sf.AppID)
	require.True(t, sf.Manageable)
	require.Equal(t, "contoso-web", sf.Policy)
	require.Equal(t, "due now (adoption)", sf.Status)

	pp := byKey["contoso/web-partner-portal"] // nobody owns it
	require.False(t, pp.Manageable)
	require.Equal(t, "contoso-web", pp.Policy)
	require.Equal(t, "not manageable", pp.Status)

	ao := byKey["contoso/api-orders"] // owned by another principal, and no "web-" prefix
	require.False(t, ao.Manageable)
	require.Empty(t, ao.Policy)
	require.Equal(t, "no policy", ao.Status)

	fb := byKey["contoso/func-billing"] // owned, with a rotor secret ending in 40 minutes
	require.True(t, fb.Manageable)
	require.Equal(t, "contoso-owned", fb.Policy)
	require.Equal(t, "due now (renewal)", fb.Status)

	// --manageable
	var only []appRow
	e.mustJSON(&only, "apps", "list", "--manageable")
	require.Len(t, only, owned)
	for _, r := range only {
		require.True(t, r.Manageable, r.Name)
	}

	// --connection
	e.mustJSON(&only, "apps", "list", "--connection", "fabrikam")
	n := 0
	for _, a := range simApps {
		if a.tenant == "fabrikam" {
			n++
		}
	}
	require.Len(t, only, n)
	for _, r := range only {
		require.Equal(t, "fabrikam", r.Connection)
	}

	// --expiring 1h: every application with any credential (secret or
	// certificate, expired included) ending within the hour.
	limit := time.Now().Add(time.Hour)
	want := 0
	for _, a := range simApps {
		if !a.minEnd.IsZero() && a.minEnd.Before(limit) {
			want++
		}
	}
	require.Positive(t, want)
	e.mustJSON(&only, "apps", "list", "--expiring", "1h")
	require.Len(t, only, want)
	require.Less(t, want, len(rows))

	// The table has a header row and one row per application.
	out, _ = e.mustRun("apps", "list")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, len(rows)+1)
	require.Regexp(t, `^NAME\s+CONNECTION\s+MANAGEABLE\s+SECRETS\s+CERTS\s+NEXT EXPIRY\s+POLICY\s+STATUS$`, lines[0])
	require.Regexp(t, `(?m)^web-partner-portal\s+contoso\s+no\s+.*contoso-web\s+not manageable$`, out)
	require.Regexp(t, `(?m)^web-storefront\s+contoso\s+yes\s+.*due now \(adoption\)$`, out)
}

func TestExplain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)

	// Before any sync: the application is unknown, and the message says
	// what to do.
	code, out, errOut := e.run("explain", "web-storefront")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, "rotor: no application \"web-storefront\" in the inventory: check the name, or run 'rotor sync' first\n", errOut)

	// One application whose name no other shares.
	contoso := e.sim.World().Tenant("contoso")
	e.sim.World().Update(func() {
		contoso.AddApp(&sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "solo-app",
			SignInAudience: "AzureADMyOrg", CreatedDateTime: time.Now(), Owners: []string{e.rotationSP("contoso")}})
	})
	e.mustRun("sync")

	out, _ = e.mustRun("explain", "solo-app")
	require.Contains(t, out, "Due now (adoption): the planner will rotate it within a minute, or run 'rotor rotate solo-app'.")

	code, _, errOut = e.run("explain", "no-such-app")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no application "no-such-app" in the inventory`)
	noStack(t, errOut)

	// Both demo tenants have a web-storefront: the name is ambiguous, and
	// the message lists what to use instead.
	storefront := e.app("contoso", "web-storefront")
	code, _, errOut = e.run("explain", "web-storefront")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `2 applications have display name "web-storefront"`)
	require.Contains(t, errOut, storefront.objectID)
	require.Contains(t, errOut, "use an object id")

	// Not owned by rotor: says so, and how to fix it.
	portal := e.app("contoso", "web-partner-portal")
	for _, ref := range []string{portal.objectID, portal.appID} {
		out, _ := e.mustRun("explain", ref)
		require.Contains(t, out, "web-partner-portal (app id "+portal.appID+", object id "+portal.objectID+", seen by contoso)")
		require.Contains(t, out, `✓ PolicyMatched`)
		require.Contains(t, out, `policy "contoso-web" selects it`)
		require.Contains(t, out, "→ NotManageable")
		require.Contains(t, out, "not an owner")
		require.Contains(t, out, "add it as an owner")
		require.Contains(t, out, "rotor will not rotate it:")
	}
	// snake_case keys like every other JSON rotor prints (encoding/json
	// would decode "Reason" into `json:"reason"` too, so look at the text).
	out, _ = e.mustRun("explain", portal.objectID, "-o", "json")
	for _, k := range []string{`"application": {`, `"decision": {`, `"due": false`, `"reason": "NotManageable"`, `"message": "`, `"checks": [`, `"name": "PolicyMatched"`, `"result": "pass"`, `"result": "stop"`} {
		require.Contains(t, out, k)
	}
	for _, k := range []string{`"Due"`, `"DueAt"`, `"due_at"`, `"Reason"`, `"Message"`, `"Checks"`, "0001-01-01"} {
		require.NotContains(t, out, k)
	}
	var ex explainJSON
	e.mustJSON(&ex, "explain", portal.objectID)
	require.Equal(t, "web-partner-portal", ex.Application.Name)
	require.False(t, ex.Application.Manageable)
	require.False(t, ex.Decision.Due)
	require.Nil(t, ex.Decision.DueAt, "no due_at when rotor will never rotate it")
	require.Equal(t, "NotManageable", ex.Decision.Reason)
	require.Contains(t, ex.Decision.Message, "add it as an owner")
	require.Equal(t, []string{"PolicyMatched", "NotManageable"}, checkNames(ex))

	// No policy selects it.
	orders := e.app("contoso", "api-orders")
	out, _ = e.mustRun("explain", orders.objectID)
	require.Contains(t, out, "→ NoPolicy")
	require.Contains(t, out, "rotor will not rotate it: no policy selects this application")

	// Owned, with a rotor secret past its renewal time.
	billing := e.app("contoso", "func-billing")
	out, _ = e.mustRun("explain", billing.objectID)
	require.Contains(t, out, "✓ RotorCredential")
	require.Contains(t, out, "→ RenewalTimeReached")
	require.Contains(t, out, "Due now (renewal)")

	// Owned, never rotated by rotor: adoption, due now.
	out, _ = e.mustRun("explain", storefront.objectID)
	require.Contains(t, out, "✓ Manageable")
	require.Contains(t, out, "· ForeignCredential", "the credentials rotor did not make are listed")
	require.Contains(t, out, "rotor leaves it alone")
	require.Contains(t, out, "→ Adoption")
	require.Contains(t, out, "Due now (adoption): the planner will rotate it within a minute, or run 'rotor rotate "+storefront.objectID+"'.",
		"web-storefront is ambiguous, so the hint names the object id")
	e.mustJSON(&ex, "explain", storefront.objectID)
	require.True(t, ex.Decision.Due)
	require.Equal(t, "adoption", ex.Decision.Trigger)
	require.Equal(t, "Adoption", ex.Decision.Reason)
	require.NotNil(t, ex.Decision.DueAt)
	require.WithinDuration(t, time.Now(), *ex.Decision.DueAt, time.Minute)
	require.Equal(t, storefront.appID, ex.Application.AppID)
	require.NotEmpty(t, ex.Application.Credentials)
	for _, c := range ex.Application.Credentials {
		require.NotEmpty(t, c["key_id"])
		require.Equal(t, false, c["created_by_rotor"])
	}
}

type explainJSON struct {
	Application struct {
		Name        string           `json:"name"`
		AppID       string           `json:"app_id"`
		ObjectID    string           `json:"object_id"`
		Connection  string           `json:"connection"`
		Manageable  bool             `json:"manageable"`
		Credentials []map[string]any `json:"credentials"`
	} `json:"application"`
	Decision struct {
		Due     bool       `json:"due"`
		DueAt   *time.Time `json:"due_at"`
		Trigger string     `json:"trigger"`
		Reason  string     `json:"reason"`
		Message string     `json:"message"`
		Checks  []struct {
			Name    string `json:"name"`
			Result  string `json:"result"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"checks"`
	} `json:"decision"`
}

func checkNames(ex explainJSON) []string {
	var out []string
	for _, c := range ex.Decision.Checks {
		out = append(out, c.Name)
	}
	return out
}

type runRow struct {
	ID       string    `json:"id"`
	App      string    `json:"application"`
	AppID    string    `json:"app_id"`
	Policy   string    `json:"policy"`
	Trigger  string    `json:"trigger"`
	State    string    `json:"state"`
	NewKeyID string    `json:"new_key_id"`
	Error    string    `json:"error"`
	Created  time.Time `json:"created_at"`
	RetireAt time.Time `json:"retire_at"`
}

var runIDLine = regexp.MustCompile(`(?m)^\S+: run (\S+) is retiring; older rotor credentials retire at .+\.$`)

func TestRotateAndRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	e.mustRun("sync")
	storefront := e.app("contoso", "web-storefront")

	// Nothing has run yet.
	var runs []runRow
	e.mustJSON(&runs, "runs", "list")
	require.Empty(t, runs)

	// Refusals change nothing.
	portal := e.app("contoso", "web-partner-portal")
	code, out, errOut := e.run("rotate", portal.objectID)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, "rotor: web-partner-portal cannot be changed through connection \"contoso\" (policy \"contoso-web\"): its identity is not an owner, so Application.ReadWrite.OwnedBy cannot change it; add the identity as an owner and sync\n", errOut)
	code, _, errOut = e.run("rotate", e.app("contoso", "api-orders").objectID)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no policy selects api-orders: add one to the configuration")
	code, _, errOut = e.run("rotate", "no-such-app")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no application "no-such-app"`)
	code, _, errOut = e.run("rotate", "web-storefront")
	require.Equal(t, 1, code, "ambiguous names are refused")
	require.Contains(t, errOut, "use an object id")
	require.Zero(t, e.issuedCount(), "a refused rotation must not create a secret")
	e.mustJSON(&runs, "runs", "list")
	require.Empty(t, runs)

	// A rotation, narrated step by step.
	start := time.Now()
	out, _ = e.mustRun("rotate", storefront.objectID)
	require.Equal(t, 1, e.issuedCount(), "one rotation creates one secret")
	require.True(t, strings.HasPrefix(out, `Rotating web-storefront under policy "contoso-web"`+"\n"), out)
	steps := []string{
		`planned\s+journaled the intent; nothing touched yet`,
		`created\s+created secret [0-9a-f-]{8} in Entra \(ends \d{4}-\d\d-\d\d\)`,
		`delivering the new secret to sink #1`,
		`sink #1 holds the new secret`,
		`every sink holds the new secret`,
		`getting a token with the new secret`,
		`verified\s+Entra accepts the new secret`,
		`retiring\s+older rotor secrets retire at \d\d:\d\d:\d\d`,
	}
	pos := 0
	for _, s := range steps {
		loc := regexp.MustCompile(`(?m)^  \d\d:\d\d:\d\d  ` + ".*" + s).FindStringIndex(out[pos:])
		require.NotNil(t, loc, "narration must say %q after offset %d:\n%s", s, pos, out)
		pos += loc[1]
	}
	m := runIDLine.FindStringSubmatch(out)
	require.NotNil(t, m, "the run id is printed:\n%s", out)
	runID := m[1]

	// runs list shows it, retiring.
	e.mustJSON(&runs, "runs", "list")
	require.Len(t, runs, 1)
	r := runs[0]
	require.Equal(t, runID, r.ID)
	require.Equal(t, "retiring", r.State)
	require.Equal(t, "web-storefront", r.App)
	require.Equal(t, storefront.appID, r.AppID)
	require.Equal(t, "contoso-web", r.Policy)
	require.Equal(t, "manual", r.Trigger)
	require.NotEmpty(t, r.NewKeyID)
	require.Empty(t, r.Error)
	require.WithinDuration(t, start.Add(time.Hour), r.RetireAt, time.Minute, "retire after the policy's 1h overlap")
	e.mustJSON(&runs, "runs", "list", "--app", storefront.objectID)
	require.Len(t, runs, 1)
	e.mustJSON(&runs, "runs", "list", "--app", portal.objectID)
	require.Empty(t, runs)
	e.mustJSON(&runs, "runs", "list", "--state", "failed,done")
	require.Empty(t, runs)
	e.mustJSON(&runs, "runs", "list", "--state", "retiring")
	require.Len(t, runs, 1)
	out, _ = e.mustRun("runs", "list")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^RUN\s+APPLICATION\s+TRIGGER\s+STATE\s+NEW KEY\s+STARTED\s+RETIRE AT$`, lines[0])
	require.Regexp(t, `^`+regexp.QuoteMeta(runID)+`\s+web-storefront\s+manual\s+retiring\s+`+regexp.QuoteMeta(r.NewKeyID[:8]), lines[1])

	// runs show prints the journal.
	out, _ = e.mustRun("runs", "show", runID)
	require.Contains(t, out, "Run "+runID+" — web-storefront ("+storefront.appID+")")
	require.Contains(t, out, "policy contoso-web, trigger manual, state retiring")
	require.Contains(t, out, "new secret "+r.NewKeyID+" ends ")
	require.Regexp(t, `(?m)^TIME\s+STATE\s+STEP\s+MESSAGE$`, out)
	for _, step := range []string{"planned", "created", "verified", "retiring"} {
		require.Regexp(t, `(?m)^\d\d:\d\d:\d\d\.\d{3}\s+\S+\s+`+step+`\b`, out, "the journal has step %s", step)
	}
	out, _ = e.mustRun("runs", "show", runID, "-o", "json")
	for _, k := range []string{`"id": "` + runID + `"`, `"app_name": "web-storefront"`, `"state": "retiring"`, `"new_key_id": "` + r.NewKeyID + `"`, `"events": [`, `"step": "planned"`, `"step": "verified"`} {
		require.Contains(t, out, k)
	}

	code, out, errOut = e.run("runs", "show", "nosuchid")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, "rotor: no run \"nosuchid\": list them with 'rotor runs list'\n", errOut)

	// explain now says when the next rotation is due: end − renew_before
	// (30d − 10d), and that a retirement is scheduled.
	out, _ = e.mustRun("explain", storefront.objectID)
	require.Contains(t, out, "✓ RotorCredential")
	require.Contains(t, out, "→ NotYetDue")
	require.Contains(t, out, "· Retirement")
	require.Contains(t, out, "run "+runID+" retires older rotor credentials at")
	require.Contains(t, out, "Not due: next rotation at ")
	// ... and lists the credentials, the run's new one included at once
	// (the inventory follows the run; no sync happened since).
	require.Regexp(t, `(?m)^Credentials \(inventory synced .+\):$`, out)
	require.Regexp(t, `(?m)^\s+KIND\s+KEY\s+DISPLAY NAME\s+HINT\s+ENDS\s+MADE BY ROTOR$`, out)
	require.Regexp(t, `(?m)^\s+secret\s+`+regexp.QuoteMeta(r.NewKeyID[:8])+`\s+rotor:`+regexp.QuoteMeta(runID)+`\s+\S+\s+.+\s+yes$`, out)
	var ex explainJSON
	e.mustJSON(&ex, "explain", storefront.objectID)
	require.False(t, ex.Decision.Due)
	require.Equal(t, "NotYetDue", ex.Decision.Reason)
	require.NotNil(t, ex.Decision.DueAt)
	require.WithinDuration(t, start.Add(20*24*time.Hour), *ex.Decision.DueAt, time.Hour)

	// apps list agrees.
	var rows []appRow
	e.mustJSON(&rows, "apps", "list", "--connection", "contoso", "--prefix", "web-storefront")
	require.Len(t, rows, 1)
	require.Regexp(t, `^due in 19d( \d+h)?$`, rows[0].Status, "due 20 days after the rotation (30d lifetime − 10d renew_before)")
}

var servingLine = regexp.MustCompile(`rotor: serving on http://(127\.0\.0\.1:\d+) \(data in (.+)\)\n`)

func TestServeStopsCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "apps=5,tenants=1,expiring=1h,replication=0s", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := e.newBuffer(), e.newBuffer()
	done := make(chan int, 1)
	go func() { done <- runExecute(ctx, []string{"serve", "--config", e.cfg}, out, errOut) }()

	var addr string
	require.Eventually(t, func() bool {
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d:\n%s\n%s", code, out.String(), errOut.String())
		default:
		}
		if m := servingLine.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			require.Equal(t, e.dataDir, m[2])
			return true
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "serve must print where it listens")

	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// serve syncs and adopts every owned application on its own.
	require.Eventually(t, func() bool { return e.issuedCount() >= 5 }, 30*time.Second, 50*time.Millisecond,
		"serve must rotate the 5 due applications; log:\n%s", errOut.String())

	// The status page lists the runs, and each run's page shows its journal.
	page := httpGetBody(t, "http://"+addr+"/")
	require.Contains(t, page, "How a rotation goes")
	link := regexp.MustCompile(`href="/runs/([0-9a-f-]+)"`).FindStringSubmatch(page)
	require.NotNil(t, link, "the status page links to its runs:\n%s", page)
	runPage := httpGetBody(t, "http://"+addr+"/runs/"+link[1])
	require.Contains(t, runPage, "Run "+link[1])
	require.Contains(t, runPage, "planned", "the journal starts with the intent")
	e.mu.Lock()
	issued := append([]string(nil), e.issued...)
	e.mu.Unlock()
	for _, v := range issued {
		require.NotContains(t, page+runPage, v, "no secret value on the status pages")
	}
	resp, err = http.Get("http://" + addr + "/runs/nosuchrun")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, "serve must exit 0 when its context is cancelled:\n%s", errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of cancellation")
	}
	require.Contains(t, errOut.String(), "shutting down")
	_, err = http.Get("http://" + addr + "/healthz")
	require.Error(t, err, "the listener is closed after serve returns")

	// What serve did is in the store.
	var runs []runRow
	e.mustJSON(&runs, "runs", "list")
	require.GreaterOrEqual(t, len(runs), 5)
	for _, r := range runs {
		require.Empty(t, r.Error, r.App)
	}
}

var (
	// demoStatusLine is the line that says where the demo serves: its UI.
	demoStatusLine  = regexp.MustCompile(`Sign in: +http://(127\.0\.0\.1:\d+)/ui/ `)
	demoExplainLine = regexp.MustCompile(`go run \./cmd/rotor explain (\S+) --config (\S+)\n`)
	demoSignInLine  = regexp.MustCompile(`Sign in: +http://(127\.0\.0\.1:\d+)/ui/ `)
	demoAppsLine    = regexp.MustCompile(`go run \./cmd/rotor apps list --config (\S+)\n`)
	demoCLILine     = regexp.MustCompile(`CLI: +go run ./cmd/rotor login --server (http://127\.0\.0\.1:\d+) --ca-file (\S+) `)
)

// TestDemoSuggestionsWork runs `rotor demo` and, while it serves, the
// commands it tells the user to try.
func TestDemoSuggestionsWork(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- runExecute(ctx, []string{"demo", "--addr", "127.0.0.1:0"}, out, errOut) }()
	require.Eventually(t, func() bool {
		select {
		case code := <-done:
			t.Fatalf("demo exited early with %d:\n%s\n%s", code, out.String(), errOut.String())
		default:
		}
		return demoStatusLine.MatchString(out.String())
	}, 60*time.Second, 20*time.Millisecond, "the demo must print where it serves")
	s := out.String()
	require.Contains(t, s, "Starting the Azure simulator")
	require.Regexp(t, `\d+ applications\. Owned by rotor's rotation identity: \d+ never rotated by rotor`, s)

	resp, err := http.Get("http://" + demoStatusLine.FindStringSubmatch(s)[1] + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Sign-in is wired: /ui/ sends a stranger to /login, which sends them
	// to the simulator's Entra with rotor's callback on the demo's port.
	addr := demoStatusLine.FindStringSubmatch(s)[1]
	sm := demoSignInLine.FindStringSubmatch(s)
	require.NotNil(t, sm, s)
	require.Equal(t, addr, sm[1])
	require.Contains(t, s, "as ada (admin)")
	require.Contains(t, s, "break-glass admin")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get("http://" + addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "the demo opens on the UI")
	require.Equal(t, "/ui/", resp.Header.Get("Location"))
	resp, err = noFollow.Get("http://" + addr + "/ui/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/login?return_to=%2Fui%2F", resp.Header.Get("Location"))
	resp, err = noFollow.Get("http://" + addr + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	authorize, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(authorize.Path, "/oauth2/v2.0/authorize"), authorize.String())
	require.Equal(t, "http://"+addr+"/auth/callback", authorize.Query().Get("redirect_uri"))

	// The CLI signs the demo's people in: vera logs in through the
	// simulator's page and lists the applications as a viewer.
	cm := demoCLILine.FindStringSubmatch(s)
	require.NotNil(t, cm, s)
	require.Equal(t, "http://"+addr, cm[1])
	cache := filepath.Join(t.TempDir(), "tokens.json")
	env := &env{t: t}
	authorizeURL, loggedIn, loginOut, loginErr := startLogin(t, env, "--server", cm[1], "--ca-file", cm[2], "--token-cache", cache, "--timeout", "1m")
	b := browser(t, cm[2])
	back := signIn(t, b, authorizeURL, "Vera Viewer")
	resp, err = b.Get(back.String())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 0, <-loggedIn, loginErr.String())
	require.Contains(t, loginOut.String(), "as Vera Viewer <vera@")
	require.Contains(t, loginOut.String(), "(viewer in default)")
	code, remoteApps, remoteErr := execute("apps", "list", "--server", cm[1], "--token-cache", cache, "--token-env", "ROTOR_TEST_DEMO_NO_TOKEN")
	require.Equal(t, 0, code, remoteErr)
	require.Contains(t, remoteApps, "web-storefront")
	code, _, remoteErr = execute("apikey", "list", "--server", cm[1], "--token-cache", cache, "--token-env", "ROTOR_TEST_DEMO_NO_TOKEN")
	require.NotZero(t, code)
	require.Contains(t, remoteErr, "it needs admin")

	m := demoAppsLine.FindStringSubmatch(s)
	require.NotNil(t, m, s)
	cfgYAML, err := os.ReadFile(m[1])
	require.NoError(t, err)
	require.Contains(t, string(cfgYAML), "sign_in:\n  entra:\n    cloud: sim\n")
	code, appsOut, appsErr := execute("apps", "list", "--config", m[1])
	require.Equal(t, 0, code, appsErr)
	require.Contains(t, appsOut, "web-storefront")

	m = demoExplainLine.FindStringSubmatch(s)
	require.NotNil(t, m, s)
	code, exOut, exErr := execute("explain", m[1], "--config", m[2])
	require.Equal(t, 0, code, "the demo's suggested explain command must work: %s", exErr)
	require.Contains(t, exOut, "web-storefront (app id ")

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of cancellation")
	}
	_, err = os.Stat(m[2])
	require.True(t, os.IsNotExist(err), "the demo removes its temporary directory unless --keep")
}

func httpGetBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestServeStoppedWhileStartingExitsCleanly: a SIGTERM (a cancelled
// context) that reaches serve while it is still opening its store and
// connections is the stop the operator asked for: exit 0 and say so, not
// "context canceled" and exit 1.
func TestServeStoppedWhileStartingExitsCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "apps=1,tenants=1,expiring=1h,replication=0s", 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, errOut := e.newBuffer(), e.newBuffer()
	code := runExecute(ctx, []string{"serve", "--config", e.cfg}, out, errOut)
	require.Equal(t, 0, code, "%s", errOut.String())
	require.Contains(t, errOut.String(), "stopped before serving")
	require.NotContains(t, errOut.String(), "context canceled")
}
