package pacer

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Cost is what one request spends of Graph's identity and access budgets:
// resource units from the resource unit buckets and writes from the write
// buckets.
type Cost struct {
	ResourceUnits int
	Writes        int
}

// Add is the cost of two requests together (the items of a $batch).
func (c Cost) Add(o Cost) Cost {
	return Cost{ResourceUnits: c.ResourceUnits + o.ResourceUnits, Writes: c.Writes + o.Writes}
}

// IsZero reports a request that spends nothing (a $batch envelope).
func (c Cost) IsZero() bool { return c.ResourceUnits <= 0 && c.Writes <= 0 }

// keyMaterialSurcharge is added to a read that selects keyCredentials
// (which returns the certificates themselves). AZURE-API.md §1 says Graph
// throttles that read harder without giving a number; 5 is the
// simulator's. A read priced too high only waits a little longer; one
// priced too low earns a 429.
const keyMaterialSurcharge = 5

// baseCost is a row of Graph's table of base request costs: a path
// pattern ("{id}" matches one segment), its method, and its cost.
type baseCost struct {
	method  string
	pattern string
	cost    Cost
}

// baseCosts are the rows of Microsoft's table ("Identity and access
// service limits", base request costs). Any request not listed costs 1
// resource unit, and a POST, PATCH, PUT or DELETE also 1 write. GET on a
// single application is priced as GET applications (2): AZURE-API.md §2
// prices "GET applications" without telling the collection from an item,
// and the higher price is the safe one.
var baseCosts = []baseCost{
	{http.MethodGet, "applications", Cost{2, 0}},
	{http.MethodGet, "applications/{id}", Cost{2, 0}},
	{http.MethodGet, "applications/{id}/extensionProperties", Cost{2, 0}},
	{http.MethodGet, "contracts", Cost{3, 0}},
	{http.MethodPost, "directoryObjects/getByIds", Cost{3, 0}},
	{http.MethodGet, "domains/{id}/domainNameReferences", Cost{4, 0}},
	{http.MethodPost, "getObjectsById", Cost{3, 0}},
	{http.MethodGet, "groups/{id}/members", Cost{3, 0}},
	{http.MethodGet, "groups/{id}/transitiveMembers", Cost{5, 0}},
	{http.MethodPost, "isMemberOf", Cost{4, 0}},
	{http.MethodPost, "me/checkMemberGroups", Cost{4, 0}},
	{http.MethodPost, "me/checkMemberObjects", Cost{4, 0}},
	{http.MethodPost, "me/getMemberGroups", Cost{2, 0}},
	{http.MethodPost, "me/getMemberObjects", Cost{2, 0}},
	{http.MethodGet, "me/licenseDetails", Cost{2, 0}},
	{http.MethodGet, "me/memberOf", Cost{2, 0}},
	{http.MethodGet, "me/ownedObjects", Cost{2, 0}},
	{http.MethodGet, "me/transitiveMemberOf", Cost{2, 0}},
	{http.MethodGet, "oauth2PermissionGrants", Cost{2, 0}},
	{http.MethodGet, "oauth2PermissionGrants/{id}", Cost{2, 0}},
	{http.MethodGet, "servicePrincipals/{id}/appRoleAssignments", Cost{2, 0}},
	{http.MethodGet, "subscribedSkus", Cost{3, 0}},
	{http.MethodGet, "users", Cost{2, 0}},
}

// CostOf prices one Graph request the way Graph's identity and access
// limits do: its method, its path relative to the version root
// ("/applications/{id}/addPassword", with or without "/v1.0"), and its
// query. $select takes a unit off, $expand adds one, $top under 20 takes
// one off, and no request costs less than 1 unit. A $batch envelope costs
// nothing: Graph charges each of its requests (see BatchCost).
func CostOf(method, path string, query url.Values) Cost {
	method = strings.ToUpper(method)
	segs := segments(path)
	if len(segs) == 1 && segs[0] == "$batch" {
		return Cost{}
	}
	c := Cost{ResourceUnits: 1}
	if method != http.MethodGet && method != http.MethodHead {
		c.Writes = 1
	}
	for _, row := range baseCosts {
		if row.method == method && matches(row.pattern, segs) {
			c = row.cost
			break
		}
	}
	if method == http.MethodGet {
		c.ResourceUnits += queryAdjustment(query)
	}
	c.ResourceUnits = max(c.ResourceUnits, 1)
	return c
}

// queryAdjustment is what the OData options add to a read's cost.
func queryAdjustment(q url.Values) int {
	d := 0
	for k, vs := range q {
		v := strings.Join(vs, ",")
		switch strings.ToLower(k) {
		case "$select":
			d--
			for _, p := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(p), "keyCredentials") {
					d += keyMaterialSurcharge
				}
			}
		case "$expand":
			d++
		case "$top":
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n < 20 {
				d--
			}
		}
	}
	return d
}

// BatchItem is what CostOf needs of one request of a $batch.
type BatchItem struct {
	Method string
	// URL is relative to the version root ("/applications/{id}?$select=id").
	URL string
}

// BatchCost is the cost of a $batch: the sum of its requests' costs.
func BatchCost(items []BatchItem) Cost {
	var total Cost
	for _, it := range items {
		path, rawQuery, _ := strings.Cut(it.URL, "?")
		q, _ := url.ParseQuery(rawQuery)
		total = total.Add(CostOf(it.Method, path, q))
	}
	return total
}

// segments splits a Graph path into its segments, without the version
// ("v1.0", "beta"), with an alternate key (applications(appId='…')) made
// an item segment, and users/{id}/… read as me/… (Graph prices them
// alike).
func segments(path string) []string {
	var out []string
	for _, s := range strings.Split(strings.Trim(path, "/"), "/") {
		if s == "" {
			continue
		}
		if name, _, ok := strings.Cut(s, "("); ok && name != "" && strings.HasSuffix(s, ")") {
			out = append(out, name, "{key}")
			continue
		}
		out = append(out, s)
	}
	if len(out) > 0 && (out[0] == "v1.0" || out[0] == "beta") {
		out = out[1:]
	}
	if len(out) > 2 && strings.EqualFold(out[0], "users") {
		out = append([]string{"me"}, out[2:]...)
	}
	return out
}

// matches reports whether segs fit pattern; "{id}" matches any one
// segment, and names compare case-insensitively, as Graph's do.
func matches(pattern string, segs []string) bool {
	ps := strings.Split(pattern, "/")
	if len(ps) != len(segs) {
		return false
	}
	for i, p := range ps {
		if p == "{id}" {
			continue
		}
		if !strings.EqualFold(p, segs[i]) {
			return false
		}
	}
	return true
}
