package graph

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// This file holds Graph's query options: $top, $select, $count and server
// paging with $skiptoken.

const (
	defaultPageSize = 100
	maxPageSize     = 999
)

// queryError is a refused query option: status, Graph code and message.
type queryError struct {
	status int
	code   string
	msg    string
}

func (e *queryError) Error() string { return e.msg }

// pageSize reads $top (default 100, 1..999 as Graph allows).
func pageSize(q url.Values) (int, error) {
	v := q.Get("$top")
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, &queryError{http.StatusBadRequest, codeBadRequest,
			fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", v, maxPageSize)}
	}
	return n, nil
}

// selection is a parsed $select: canonical property names in request order,
// or nil for the default set.
type selection []string

// has reports whether prop was explicitly selected.
func (s selection) has(prop string) bool {
	for _, p := range s {
		if p == prop {
			return true
		}
	}
	return false
}

// parseSelect reads $select against the properties a type has (canonical
// spelling); Graph matches names case-insensitively.
func parseSelect(q url.Values, typeName string, props []string) (selection, error) {
	v := strings.TrimSpace(q.Get("$select"))
	if v == "" {
		return nil, nil
	}
	var out selection
	for _, raw := range strings.Split(v, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		found := ""
		for _, p := range props {
			if strings.EqualFold(p, name) {
				found = p
				break
			}
		}
		if found == "" {
			return nil, &queryError{http.StatusBadRequest, codeBadRequest,
				fmt.Sprintf("Could not find a property named '%s' on type '%s'.", name, typeName)}
		}
		if !out.has(found) {
			out = append(out, found)
		}
	}
	return out, nil
}

// project keeps the selected members of a rendered object (all of them for
// the default selection), always keeping @odata annotations.
func project(o jsonObj, sel selection) jsonObj {
	if sel == nil {
		return o
	}
	out := make(jsonObj, 0, len(sel)+1)
	for _, m := range o {
		if strings.HasPrefix(m.k, "@odata.") || sel.has(m.k) {
			out = append(out, m)
		}
	}
	return out
}

// wantCount reads $count=true, which Graph only honours as an advanced
// query: with ConsistencyLevel: eventual.
func wantCount(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("$count")
	switch strings.ToLower(v) {
	case "":
		return false, nil
	case "false":
		return false, nil
	case "true":
	default:
		return false, &queryError{http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Invalid value '%s' for $count.", v)}
	}
	if !strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") {
		return false, &queryError{http.StatusBadRequest, codeUnsupportedQuery,
			"Unsupported Query. $count requires the ConsistencyLevel header set to 'eventual'."}
	}
	return true, nil
}

// rejectUnsupportedOptions refuses the query options the simulator does not
// implement, rather than ignoring them and returning something misleading.
func rejectUnsupportedOptions(q url.Values) error {
	for _, o := range []string{"$orderby", "$search", "$expand", "$skip"} {
		if _, ok := q[o]; ok {
			return &queryError{http.StatusBadRequest, codeUnsupportedQuery,
				fmt.Sprintf("Unsupported Query. The query option '%s' is not supported by the simulator.", o)}
		}
	}
	return nil
}

// cursor is what a $skiptoken carries: the index in the collection's slice of
// the next object to return, that object's id, and its sort key (the app's
// creation sequence, or for collections sorted by id, the id itself). The
// index makes resuming O(1); the id detects that the slice shifted (an object
// was removed) and the sort key finds the position again by binary search.
// Objects are only appended, so a page walk is stable while apps are added.
type cursor struct {
	Index int    `json:"i"`
	ID    string `json:"o"`
	Seq   uint64 `json:"s,omitempty"`
}

// skiptokenPrefix versions the opaque token format.
const skiptokenPrefix = "RFNwdDox"

func encodeSkiptoken(c cursor) string {
	b, _ := json.Marshal(c) // a struct of an int and a string cannot fail
	return skiptokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// errExpiredToken is Graph's answer to a $skiptoken it cannot use.
var errExpiredToken = &queryError{http.StatusBadRequest, "Directory_ExpiredPageToken",
	"The specified page token value has expired and can no longer be included in your request."}

func decodeSkiptoken(tok string) (cursor, error) {
	var c cursor
	rest, ok := strings.CutPrefix(tok, skiptokenPrefix)
	if !ok {
		return c, errExpiredToken
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return c, errExpiredToken
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Index < 0 {
		return c, errExpiredToken
	}
	return c, nil
}

// resumeIndex finds where a cursor resumes in a slice of n objects whose
// element i has id idAt(i). When the object is no longer at its index, search
// (a binary search over the slice's sort order) gives the first position at
// or after the cursor's sort key, so a removed object is simply not returned
// and nothing after it is skipped or repeated.
func resumeIndex(c cursor, n int, idAt func(int) string, search func() int) int {
	if c.Index < n && idAt(c.Index) == c.ID {
		return c.Index
	}
	return search()
}

// nextLink is the absolute URL of the next page: this request's scheme, host
// and path with every query option kept and $skiptoken replaced. Keys keep
// their literal "$" as Graph's links do.
func nextLink(r *http.Request, token string) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	q := r.URL.Query()
	q.Del("$skiptoken")
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(scheme + "://" + r.Host + r.URL.EscapedPath() + "?")
	for _, k := range keys {
		for _, v := range q[k] {
			b.WriteString(escapeQuery(k) + "=" + escapeQuery(v) + "&")
		}
	}
	b.WriteString("$skiptoken=" + url.QueryEscape(token))
	return b.String()
}

func escapeQuery(s string) string {
	e := strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	return strings.ReplaceAll(e, "%24", "$")
}

// listQuery is the query of a collection listing, parsed and checked.
type listQuery struct {
	sel    selection
	top    int
	filter *Filter // nil: no $filter
	count  bool
	cur    *cursor // nil: the first page
}

// cost is the throttling cost of the listing: one less with $select.
func (lq listQuery) cost() int {
	if lq.sel != nil {
		return costList - 1
	}
	return costList
}

// listQuery starts a listing: the caller must have some read access (403
// first, as Graph answers), then the query is parsed with parseListQuery.
// On false the error reply has been written.
func (g *graphCall) listQuery(typeName string, props, filterProps []string) (listQuery, bool) {
	if !g.requireAny() {
		return listQuery{}, false
	}
	lq, err := parseListQuery(g.r, typeName, props, filterProps)
	if err != nil {
		g.queryFail(err)
		return listQuery{}, false
	}
	return lq, true
}

// parseListQuery reads a listing's $select (of typeName's props), $top,
// $filter (over filterProps), $count and $skiptoken, refusing unsupported
// options first. Its errors are for graphCall.queryFail.
func parseListQuery(r *http.Request, typeName string, props, filterProps []string) (listQuery, error) {
	q := r.URL.Query()
	if err := rejectUnsupportedOptions(q); err != nil {
		return listQuery{}, err
	}
	var lq listQuery
	var err error
	if lq.sel, err = parseSelect(q, typeName, props); err != nil {
		return listQuery{}, err
	}
	if lq.top, err = pageSize(q); err != nil {
		return listQuery{}, err
	}
	if f := q.Get("$filter"); f != "" {
		if lq.filter, err = ParseFilter(f, filterProps...); err != nil {
			return listQuery{}, err
		}
	}
	if lq.count, err = wantCount(r); err != nil {
		return listQuery{}, err
	}
	if tok := q.Get("$skiptoken"); tok != "" {
		c, err := decodeSkiptoken(tok)
		if err != nil {
			return listQuery{}, err
		}
		lq.cur = &c
	}
	return lq, nil
}
