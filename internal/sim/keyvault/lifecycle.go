package keyvault

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file is the object lifecycle secrets, keys and certificates share
// in Key Vault: version attributes, soft delete (a deleted object is
// recoverable for kvRecoverableDays, and its bundle says when it was
// deleted and when it will be purged), and the two list shapes (objects in
// name order, a name's versions in creation order), each paged by
// $skiptoken and maxresults. keyvault.go, keys.go and certificates.go say
// only what differs: their bundles, their operations, their permissions.

// kvAttributes are a version's attributes, times in Unix seconds: the
// same for a secret, a key (which adds exportable, kvKeyAttributes) and a
// certificate.
type kvAttributes struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

// versionAttrs renders a version's attributes; every vault recovers
// deleted objects the same way (kvRecoveryLevel, kvRecoverableDays).
func versionAttrs(enabled bool, notBefore, expires *time.Time, created, updated time.Time) kvAttributes {
	return kvAttributes{
		Enabled: enabled, NotBefore: unixPtr(notBefore), Expires: unixPtr(expires),
		Created: created.Unix(), Updated: updated.Unix(),
		RecoveryLevel: kvRecoveryLevel, RecoverableDays: kvRecoverableDays,
	}
}

func unixPtr(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	u := t.Unix()
	return &u
}

func copyTags(t map[string]string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

// kvAttrsIn are a version's attributes as clients send them (set, import,
// update of a secret or key).
type kvAttrsIn struct {
	Enabled   *bool  `json:"enabled"`
	NotBefore *int64 `json:"nbf"`
	Expires   *int64 `json:"exp"`
}

// applyTo sets what a names of a version's enabled, nbf and exp; a nil a
// changes nothing.
func (a *kvAttrsIn) applyTo(enabled *bool, notBefore, expires **time.Time) {
	if a == nil {
		return
	}
	if a.Enabled != nil {
		*enabled = *a.Enabled
	}
	if a.NotBefore != nil {
		t := time.Unix(*a.NotBefore, 0).UTC()
		*notBefore = &t
	}
	if a.Expires != nil {
		t := time.Unix(*a.Expires, 0).UTC()
		*expires = &t
	}
}

// kvDeletedInfo is what a deleted object's bundle carries beside the
// object's own: where to recover it, when it was deleted and when Key
// Vault purges it. Empty (and so absent from the JSON) on a live object.
type kvDeletedInfo struct {
	RecoveryID         string `json:"recoveryId,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
}

// deletedInfo is kvDeletedInfo for the object name of collection
// ("secrets", "keys", "certificates"), deleted at deletedAt.
func (c *kvCall) deletedInfo(collection, name string, deletedAt time.Time) kvDeletedInfo {
	d, p := deletedAt.Unix(), purgeAt(deletedAt).Unix()
	return kvDeletedInfo{RecoveryID: c.base + "/deleted" + collection + "/" + name, DeletedDate: &d, ScheduledPurgeDate: &p}
}

// purgeAt is when an object deleted at deletedAt is purged.
func purgeAt(deletedAt time.Time) time.Time {
	return deletedAt.Add(kvRecoverableDays * 24 * time.Hour)
}

// recoverableAt reports whether an object (deleted, deleted at deletedAt)
// is soft-deleted and still within its retention at now.
func recoverableAt(deleted bool, deletedAt, now time.Time) bool {
	return deleted && now.Before(purgeAt(deletedAt))
}

// notFoundObject is Key Vault's answer for a live object (or version) that
// is not there: code is "SecretNotFound" and so on, noun "secret", "key"
// or "certificate", ref the name or name/version asked for.
func notFoundObject(code, noun, ref string) kvReply {
	return kvErr(http.StatusNotFound, code, fmt.Sprintf(
		"A %s with (name/id) %s was not found in this key vault. If you recently deleted this %s you may be able "+
			"to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", noun, ref, noun), "")
}

// notFoundDeleted is Key Vault's answer for a deleted object that is not
// there (never deleted, purged, or past its retention): code is
// "SecretNotFound" and so on, object "Secret", "Key" or "Certificate".
func notFoundDeleted(code, object, name string) kvReply {
	return kvErr(http.StatusNotFound, code, fmt.Sprintf("Deleted %s not found: %s", object, name), "")
}

// versionNamed is the version of versions (newest last) called version,
// compared without case; "" is the latest. nil (the zero V) when there is
// no such version.
func versionNamed[V any](versions []V, version string, id func(V) string) V {
	var none V
	if len(versions) == 0 {
		return none
	}
	if version == "" {
		return versions[len(versions)-1]
	}
	for _, v := range versions {
		if strings.EqualFold(id(v), version) {
			return v
		}
	}
	return none
}

// kvPage is one page of a list: objects or a name's versions.
type kvPage[T any] struct {
	Value    []T     `json:"value"`
	NextLink *string `json:"nextLink"`
}

// sortedNames is the names in m that keep says to list, in order.
func sortedNames[V any](m map[string]*V, keep func(name string, v *V) bool) []string {
	var names []string
	for name, v := range m {
		if keep(name, v) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// listByName serves a list of objects in name order (GET /secrets,
// /deletedkeys…): names gives the sorted names to list, item renders one
// (false leaves it out of the page). The skiptoken is the last name
// returned.
func listByName[T any](c *kvCall, names func(now time.Time) []string, item func(name string) (T, bool)) {
	n, ok := c.maxResults()
	if !ok {
		return
	}
	after, ok := c.skiptoken()
	if !ok {
		return
	}
	c.read(func(now time.Time) kvReply {
		page, more := pageNames(names(now), after, n)
		out := kvPage[T]{Value: make([]T, 0, len(page))}
		for _, name := range page {
			if it, ok := item(name); ok {
				out.Value = append(out.Value, it)
			}
		}
		if more {
			out.NextLink = c.kvNextLink(kvSkiptoken(page[len(page)-1]), n)
		}
		return kvOK(http.StatusOK, out)
	})
}

// pageNames returns the page of sorted names after the skiptoken "after"
// and whether more follow.
func pageNames(names []string, after string, n int) ([]string, bool) {
	start := 0
	if after != "" {
		start = sort.SearchStrings(names, after)
		if start < len(names) && names[start] == after {
			start++
		}
	}
	end := min(start+n, len(names))
	return names[start:end], end < len(names)
}

// listVersionsOf serves a name's versions in creation order (GET
// /secrets/{name}/versions…): versions finds them (under the world lock),
// or answers not found; item renders one. The skiptoken is the next index.
func listVersionsOf[V, T any](c *kvCall, versions func() ([]V, *kvReply), item func(V) T) {
	n, ok := c.maxResults()
	if !ok {
		return
	}
	start, ok := c.indexToken()
	if !ok {
		return
	}
	c.read(func(time.Time) kvReply {
		vs, notFound := versions()
		if notFound != nil {
			return *notFound
		}
		start := min(start, len(vs))
		end := min(start+n, len(vs))
		out := kvPage[T]{Value: make([]T, 0, end-start)}
		for _, v := range vs[start:end] {
			out.Value = append(out.Value, item(v))
		}
		if end < len(vs) {
			out.NextLink = c.kvNextLink(kvSkiptoken(strconv.Itoa(end)), n)
		}
		return kvOK(http.StatusOK, out)
	})
}

// indexToken reads a version list's skiptoken (the next index).
func (c *kvCall) indexToken() (int, bool) {
	tok, ok := c.skiptoken()
	if !ok {
		return 0, false
	}
	if tok == "" {
		return 0, true
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 {
		c.fail(http.StatusBadRequest, "BadParameter", "The $skiptoken is not valid.", "")
		return 0, false
	}
	return i, true
}
