package graph

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file serves /me for a signed-in user's delegated token: the user,
// the groups it is a member of (memberOf, paged: what an application asks
// when an ID token has the groups overage claim instead of groups) and the
// applications it owns (ownedObjects).

const groupTypeName = "microsoft.graph.group"

var groupProps = []string{
	"id", "deletedDateTime", "displayName", "description", "createdDateTime",
	"groupTypes", "mailEnabled", "securityEnabled", "mailNickname",
}

var userProps = []string{"id", "displayName", "userPrincipalName", "mail", "givenName", "surname", "jobTitle"}

// groupReadScopes are the delegated permissions that read a user's group
// memberships (GroupMember.Read.All is the least privileged).
var groupReadScopes = []string{"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"}

func (g *graphCall) routeMe(rest []string) {
	if !g.caller.Delegated() {
		g.fail(http.StatusBadRequest, codeBadRequest, "/me request is only valid with delegated authentication flow.")
		return
	}
	if !g.method(g.r.Method, http.MethodGet) {
		return
	}
	switch {
	case len(rest) == 0:
		g.getMe()
	case len(rest) == 1 && rest[0] == "memberOf":
		g.listMemberOf()
	case (len(rest) == 1 || len(rest) == 2 && rest[1] == "application") && rest[0] == "ownedObjects":
		g.listApps(appListSpec{context: graphMetadata + "directoryObjects", typed: true, ownerID: g.caller.ObjectID})
	default:
		g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Resource not found for the segment '%s'.", rest[len(rest)-1]))
	}
}

// me finds the signed-in user; a token of a deleted user gets 404.
func (g *graphCall) me(t *core.Tenant) (*core.User, *reply) {
	u := t.UserByID(g.caller.ObjectID)
	if u == nil {
		rp := notFoundReply(g.caller.ObjectID)
		return nil, &rp
	}
	return u, nil
}

func renderUser(u *core.User) jsonObj {
	return jsonObj{
		{"id", u.ObjectID},
		{"displayName", u.DisplayName},
		{"userPrincipalName", u.UserPrincipalName},
		{"mail", u.Mail},
		{"givenName", nil},
		{"surname", nil},
		{"jobTitle", nil},
	}
}

func renderGroup(gr *core.Group) jsonObj {
	return jsonObj{
		{"id", gr.ObjectID},
		{"deletedDateTime", nil},
		{"displayName", gr.DisplayName},
		{"description", gr.Description},
		{"createdDateTime", gr.Created.UTC().Format("2006-01-02T15:04:05Z")},
		{"groupTypes", []string{}},
		{"mailEnabled", false},
		{"securityEnabled", true},
		{"mailNickname", gr.DisplayName},
	}
}

// getMe serves GET /me (User.Read).
func (g *graphCall) getMe() {
	sel, err := parseSelect(g.r.URL.Query(), "microsoft.graph.user", userProps)
	if err != nil {
		g.queryFail(err)
		return
	}
	if !g.admit(costGet, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		u, rp := g.me(t)
		if rp != nil {
			return *rp
		}
		ctx := graphMetadata + "users/$entity"
		if sel != nil {
			ctx = selectContext(graphMetadata+"users", sel) + "/$entity"
		}
		return okReply(http.StatusOK, append(jsonObj{{"@odata.context", ctx}}, project(renderUser(u), sel)...))
	})
}

// listMemberOf serves GET /me/memberOf: the user's groups in the order
// joined, as directoryObjects typed microsoft.graph.group, paged with
// $top (default 100, at most 999) and an absolute @odata.nextLink.
func (g *graphCall) listMemberOf() {
	if !slices.ContainsFunc(groupReadScopes, g.caller.HasScope) {
		g.deny()
		return
	}
	lq, err := parseListQuery(g.r, groupTypeName, groupProps, nil)
	if err != nil {
		g.queryFail(err)
		return
	}
	if lq.filter != nil || lq.count {
		g.fail(http.StatusBadRequest, codeUnsupportedQuery, "Unsupported Query. The simulator's memberOf takes $select, $top and $skiptoken.")
		return
	}
	if !g.admit(lq.cost(), false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		u, rp := g.me(t)
		if rp != nil {
			return *rp
		}
		start := 0
		if lq.cur != nil {
			c := *lq.cur
			start = resumeIndex(c, len(u.Groups), func(i int) string { return u.Groups[i] },
				func() int { return min(c.Index, len(u.Groups)) })
		}
		end := min(start+lq.top, len(u.Groups))
		items := make([]jsonObj, 0, end-start)
		for _, id := range u.Groups[start:end] {
			gr := t.GroupByID(id)
			if gr == nil {
				continue
			}
			items = append(items, append(jsonObj{{"@odata.type", "#" + groupTypeName}}, project(renderGroup(gr), lq.sel)...))
		}
		body := jsonObj{{"@odata.context", selectContext(graphMetadata+"directoryObjects", lq.sel)}}
		if end < len(u.Groups) {
			body = append(body, kv{"@odata.nextLink", nextLink(g.r, encodeSkiptoken(cursor{Index: end, ID: u.Groups[end]}))})
		}
		body = append(body, kv{"value", items})
		return okReply(http.StatusOK, body)
	})
}
