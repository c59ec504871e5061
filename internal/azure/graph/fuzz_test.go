package graph

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzDecode feeds Graph response bodies to every decoder of outside input:
// none may panic, and secretText must never survive a re-marshal.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"CredentialInvalidLifetimeAsPerAppPolicy","message":"m","details":[{"code":"InvalidKeyEndDate","target":"EndDate"}],"innerError":{"request-id":"r"}}}`))
	f.Add([]byte(`{"keyId":"k","secretText":"abcdef","startDateTime":"2025-01-01T00:00:00Z","endDateTime":null}`))
	f.Add([]byte(`{"value":[{"@odata.type":"#microsoft.graph.application","id":"a","keyCredentials":[{"key":"AQID"}]}],"@odata.nextLink":"https://x/y"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := &Error{StatusCode: 400}
		fillFromBody(e, b)
		_ = e.Error()
		var p PasswordCredential
		if json.Unmarshal(b, &p) == nil {
			out, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var back map[string]any
			_ = json.Unmarshal(out, &back)
			if _, ok := back["secretText"]; ok {
				t.Fatalf("secretText marshalled: %s", out)
			}
		}
		var pg page[OwnedObject]
		_ = json.Unmarshal(b, &pg)
		var br BatchResponse
		if json.Unmarshal(b, &br) == nil {
			_ = br.Err()
		}
		_ = retryAfter(http.Header{"Retry-After": {string(b)}})
	})
}
