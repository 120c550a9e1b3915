package apidocs

import (
	"net/http"
	"strings"
	"testing"
)

// The messages page loads only its own assets (the AsyncAPI bundle, its styles and
// the boot script), each of which is served; its policy adds 'unsafe-eval' to
// scripts and nothing else.
func TestMessagesPage(t *testing.T) {
	h := MessagesHandler("/docs/messages", "/asyncapi.yaml", "Agora messages")
	page := serve(t, h, http.MethodGet, "/docs/messages", nil)
	if page.Code != http.StatusOK {
		t.Fatalf("page: %d", page.Code)
	}
	body := page.Body.String()
	if !strings.Contains(body, `data-spec-url="/asyncapi.yaml"`) {
		t.Errorf("page does not name its document:\n%s", body)
	}
	refs := pageRefs(t, body, "/docs/messages/assets/")
	for _, want := range []string{"asyncapi-standalone.", "asyncapi.", "asyncapi-docs."} {
		found := false
		for _, ref := range refs {
			if strings.Contains(ref, want) {
				found = true
				if a := serve(t, h, http.MethodGet, ref, nil); a.Code != http.StatusOK || a.Body.Len() == 0 {
					t.Errorf("asset %s: %d, %d bytes", ref, a.Code, a.Body.Len())
				}
			}
		}
		if !found {
			t.Errorf("page loads no %s* asset: %v", want, refs)
		}
	}
	want := strings.Replace(contentSecurityPolicy("/asyncapi.yaml"), "script-src 'self'", "script-src 'self' 'unsafe-eval'", 1)
	if got := page.Header().Get("Content-Security-Policy"); got != want || !strings.Contains(got, "'unsafe-eval'") {
		t.Errorf("CSP = %q, want %q", got, want)
	}
}

// Document serves its body with an ETag it honours, to GET and HEAD only.
func TestDocument(t *testing.T) {
	h := Document([]byte("asyncapi: 3.0.0\n"), "application/yaml")
	got := serve(t, h, http.MethodGet, "/asyncapi.yaml", nil)
	if got.Code != http.StatusOK || got.Body.String() != "asyncapi: 3.0.0\n" || got.Header().Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET: %d %q %q", got.Code, got.Header().Get("Content-Type"), got.Body.String())
	}
	etag := got.Header().Get("ETag")
	if again := serve(t, h, http.MethodGet, "/asyncapi.yaml", map[string]string{"If-None-Match": etag}); etag == "" || again.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", etag, again.Code)
	}
	if post := serve(t, h, http.MethodPost, "/asyncapi.yaml", nil); post.Code != http.StatusMethodNotAllowed || post.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", post.Code, post.Header().Get("Allow"))
	}
}
