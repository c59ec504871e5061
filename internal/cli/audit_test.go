package cli_test

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/rotor-dev/rotor/internal/audit"
)

// TestAuditVerifyAndExport (issue 9): after a sync and a rotation, 'rotor
// audit verify' finds the trail intact and prints its head; export writes
// one JSON line per record, with its hash; a record edited in the database
// file makes verify exit 3 naming it, and the head kept earlier, given as
// an anchor, is still checked.
func TestAuditVerifyAndExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	e.mustRun("sync")
	storefront := e.app("contoso", "web-storefront")
	e.mustRun("rotate", storefront.objectID)

	out, _ := e.mustRun("audit", "verify")
	require.Contains(t, out, "The audit trail of organization ")
	require.Contains(t, out, "is intact: ")
	m := regexp.MustCompile(`(?m)^head: (\d+:[0-9a-f]{64}) `).FindStringSubmatch(out)
	require.NotNil(t, m, "verify prints the head:\n%s", out)
	head, err := audit.ParseHead(m[1])
	require.NoError(t, err)
	require.Greater(t, head.Seq, int64(5), "the sync, the rotation's steps, the rotate call")

	var res audit.Result
	e.mustJSON(&res, "audit", "verify")
	require.True(t, res.Intact)
	require.Equal(t, head.Seq, res.Records)
	require.Equal(t, head.Hash, res.Head.Hash)

	// Export: to standard output and to a file, the same lines.
	stdout, stderr := e.mustRun("audit", "export")
	require.Contains(t, stderr, "exported ")
	file := filepath.Join(e.dir, "audit.jsonl")
	_, stderr = e.mustRun("audit", "export", "-o", file)
	require.Contains(t, stderr, "to "+file)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, stdout, string(b))
	_, err = os.Stat(file + ".tmp")
	require.ErrorIs(t, err, os.ErrNotExist)
	var recs []audit.Record
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var r audit.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "one JSON object per line: %s", sc.Text())
		recs = append(recs, r)
	}
	require.Len(t, recs, int(head.Seq))
	var prev audit.Hash
	for i, r := range recs {
		require.EqualValues(t, i+1, r.Seq)
		require.Equal(t, audit.Link(prev, r), r.Hash, "an exported line can be checked against the chain")
		prev = r.Hash
	}
	require.Equal(t, "sync", recs[0].Action)
	require.Equal(t, "rotate", recs[len(recs)-1].Action)

	_, stderr = e.mustRun("audit", "export", "--since", "2999-01-01")
	require.Contains(t, stderr, "no audit records")
	out, _ = e.mustRun("audit", "export", "--since", "1h")
	require.Equal(t, stdout, out, "everything happened within the hour")

	code, _, errOut := e.run("audit", "export", "-o", "json")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "-o names the file to write")
	code, _, errOut = e.run("audit", "export", "--since", "yesterday")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--since: "yesterday" is not an RFC 3339 time`)
	code, _, errOut = e.run("audit", "verify", "--anchor", "12:nothex")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--anchor")
	code, _, errOut = e.run("audit", "verify", "--org", "no-such-org")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no organization "no-such-org"`)

	// Someone with the database file changes what record 2 says.
	db, err := sql.Open("sqlite", filepath.Join(e.dataDir, "rotor.db")+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	for _, q := range []string{
		`DROP TRIGGER audit_events_append_only_update`,
		`UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 2`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	code, out, errOut = e.run("audit", "verify")
	require.Equal(t, 3, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "NOT intact")
	require.Contains(t, out, "first bad record: seq 2 (edited)")
	require.Contains(t, errOut, "NOT intact: seq 2: edited")
	code, out, _ = e.run("audit", "verify", "-o", "json")
	require.Equal(t, 3, code)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.False(t, res.Intact)
	require.Equal(t, audit.Problem{Seq: 2, Kind: audit.Edited, Detail: res.Problem.Detail}, *res.Problem)

	// Made whole again by recomputing every hash from seq 2 on, and the
	// head: the chain alone cannot tell, the anchor kept earlier can.
	rows, err := db.Query(`SELECT seq FROM audit_events ORDER BY seq`)
	require.NoError(t, err)
	var n int
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Close())
	recs[1].Actor.ID = "someone-else"
	prev = recs[0].Hash
	for i := 1; i < len(recs); i++ {
		recs[i].Hash = audit.Link(prev, recs[i])
		prev = recs[i].Hash
		_, err := db.Exec(`UPDATE audit_events SET hash = ? WHERE seq = ?`, recs[i].Hash[:], recs[i].Seq)
		require.NoError(t, err)
	}
	_, err = db.Exec(`UPDATE audit_heads SET hash = ?`, prev[:])
	require.NoError(t, err)
	require.Equal(t, len(recs), n)
	e.mustRun("audit", "verify")
	code, out, _ = e.run("audit", "verify", "--anchor", head.String())
	require.Equal(t, 3, code, out)
	require.Contains(t, out, "(edited)")
	require.Contains(t, out, "anchor")
}
