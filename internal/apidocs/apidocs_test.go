package apidocs

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// refRE finds every src/href attribute value in the page.
var refRE = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*["']([^"']*)["']`)

// remoteCSSRE matches CSS that would make the browser fetch from another
// host: url(http://…), url(https://…), protocol-relative url(//…), and any
// @import (the page never needs one, and @import "https://…" has no url()).
var remoteCSSRE = regexp.MustCompile(`(?i)url\(\s*["']?\s*(?:https?:)?//|@import`)

func serve(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// pageRefs returns the src/href values of the page, failing the test if it
// references anything other than local paths under assetPath (or the empty
// data: favicon).
func pageRefs(t *testing.T, body, assetPath string) []string {
	t.Helper()
	var refs []string
	for _, m := range refRE.FindAllStringSubmatch(body, -1) {
		ref := m[1]
		if ref == "data:," {
			continue
		}
		lower := strings.ToLower(ref)
		if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "//") {
			t.Errorf("page references remote URL %q", ref)
			continue
		}
		if !strings.HasPrefix(ref, assetPath) {
			t.Errorf("page references %q, want a path under %q", ref, assetPath)
			continue
		}
		refs = append(refs, ref)
	}
	return refs
}

func TestPageAndAssets(t *testing.T) {
	tests := []struct {
		name      string
		prefix    string
		pagePath  string
		assetPath string
	}{
		{"plain", "/docs", "/docs", "/docs/assets/"},
		{"trailing slash and no leading slash", "docs/", "/docs", "/docs/assets/"},
		{"nested", "/api/v1/docs", "/api/v1/docs", "/api/v1/docs/assets/"},
		{"root", "", "/", "/assets/"},
		{"root slash", "/", "/", "/assets/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler(tc.prefix, "/openapi.json", "Agora API")

			rec := serve(t, h, http.MethodGet, tc.pagePath, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", tc.pagePath, rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("page Content-Type %q, want text/html", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("page Cache-Control %q, want no-cache so new asset hashes are picked up", cc)
			}
			checkStrictCSP(t, rec.Header().Get("Content-Security-Policy"))

			body := rec.Body.String()
			if !strings.Contains(body, "<title>Agora API</title>") {
				t.Errorf("page has no title:\n%s", body)
			}
			if !strings.Contains(body, `data-spec-url="/openapi.json"`) {
				t.Errorf("page does not pass the spec URL:\n%s", body)
			}
			// Stronger than the src/href check: no absolute URL anywhere.
			for _, s := range []string{"http://", "https://"} {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q:\n%s", s, body)
				}
			}

			refs := pageRefs(t, body, tc.assetPath)
			var js, css int
			for _, ref := range refs {
				rec := serve(t, h, http.MethodGet, ref, nil)
				if rec.Code != http.StatusOK {
					t.Errorf("GET %s: status %d, want 200", ref, rec.Code)
					continue
				}
				ct := rec.Header().Get("Content-Type")
				switch {
				case strings.HasSuffix(ref, ".js"):
					js++
					if !strings.HasPrefix(ct, "text/javascript") {
						t.Errorf("%s: Content-Type %q, want text/javascript", ref, ct)
					}
				case strings.HasSuffix(ref, ".css"):
					css++
					if !strings.HasPrefix(ct, "text/css") {
						t.Errorf("%s: Content-Type %q, want text/css", ref, ct)
					}
					if m := remoteCSSRE.FindString(rec.Body.String()); m != "" {
						t.Errorf("%s loads a remote resource: %q", ref, m)
					}
				default:
					t.Errorf("unexpected asset type %s", ref)
				}
				if rec.Body.Len() == 0 {
					t.Errorf("%s: empty body", ref)
				}
				if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") || !strings.Contains(cc, "immutable") {
					t.Errorf("%s: Cache-Control %q, want long immutable caching", ref, cc)
				}
				if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s: missing X-Content-Type-Options: nosniff", ref)
				}
				etag := rec.Header().Get("ETag")
				if etag == "" {
					t.Errorf("%s: no ETag", ref)
					continue
				}
				// The name must carry the content hash, or long caching
				// would pin clients to stale files after an upgrade.
				if !strings.Contains(ref, "."+strings.Trim(etag, `"`)+".") {
					t.Errorf("%s: name does not contain content hash %s", ref, etag)
				}
				if rec := serve(t, h, http.MethodGet, ref, map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified {
					t.Errorf("%s with If-None-Match: status %d, want 304", ref, rec.Code)
				}
			}
			// Swagger UI bundle + boot script, Swagger UI CSS + page CSS.
			if js != 2 || css != 2 {
				t.Errorf("page references %d scripts and %d stylesheets, want 2 and 2: %q", js, css, refs)
			}
		})
	}
}

// checkStrictCSP asserts the page policy only allows same-origin code and
// network access.
func checkStrictCSP(t *testing.T, csp string) {
	t.Helper()
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self'",
		"base-uri":        "'none'",
		"frame-ancestors": "'none'",
	}
	for name, value := range want {
		if got, ok := directives[name]; !ok || got != value {
			t.Errorf("CSP %s = %q, want %q (policy: %s)", name, got, value, csp)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP contains %q: %s", bad, csp)
		}
	}
}

func TestRemoteCSSPattern(t *testing.T) {
	// Guards the guard: if this regexp stopped matching, the CSS check in
	// TestPageAndAssets would pass vacuously.
	tests := []struct {
		css    string
		remote bool
	}{
		{`@font-face{src:url(https://fonts.gstatic.com/x.woff2)}`, true},
		{`a{background:url("http://cdn.example/x.png")}`, true},
		{`a{background:url( '//cdn.example/x.png')}`, true},
		{`@import "https://fonts.googleapis.com/css?family=Open+Sans";`, true},
		{`a{background:url("data:image/svg+xml;charset=utf-8,<svg xmlns=\"http://www.w3.org/2000/svg\"/>")}`, false},
		{`a{background:url(/docs/assets/x.png)}`, false},
	}
	for _, tc := range tests {
		if got := remoteCSSRE.MatchString(tc.css); got != tc.remote {
			t.Errorf("remoteCSSRE.MatchString(%q) = %v, want %v", tc.css, got, tc.remote)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := Handler("/docs", "/openapi.json", "Agora API")
	css := loadAssets().byFile["swagger-ui.css"].url
	paths := []string{
		"/docs/assets/nope.js",
		"/docs/assets/swagger-ui.css", // unhashed name
		"/docs/assets/swagger-ui-bundle.js",
		"/docs/assets/LICENSE", // on disk next to the assets, but not served
		"/docs/assets/README.md",
		"/docs/assets/",
		"/docs/assets/../assets/" + css,
		"/docs/assets/x/" + css,
		"/docs/assets/" + css + "/",
		"/docs/other",
		"/docsx",
		"/assets/" + css, // right name, wrong prefix
		"/",
		"/openapi.json",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			rec := serve(t, h, http.MethodGet, p, nil)
			if rec.Code != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", p, rec.Code)
			}
		})
	}
}

func TestMethodsAndRedirect(t *testing.T) {
	h := Handler("/docs", "/openapi.json", "Agora API")
	asset := "/docs/assets/" + loadAssets().byFile["swagger-ui-bundle.js"].url
	tests := []struct {
		method   string
		target   string
		status   int
		location string
		allow    string
	}{
		{http.MethodHead, "/docs", http.StatusOK, "", ""},
		{http.MethodHead, asset, http.StatusOK, "", ""},
		{http.MethodPost, "/docs", http.StatusMethodNotAllowed, "", "GET, HEAD"},
		{http.MethodDelete, asset, http.StatusMethodNotAllowed, "", "GET, HEAD"},
		{http.MethodPost, "/docs/assets/nope.js", http.StatusNotFound, "", ""},
		{http.MethodGet, "/docs/", http.StatusMovedPermanently, "/docs", ""},
		{http.MethodGet, "/docs/?x=1", http.StatusMovedPermanently, "/docs?x=1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			rec := serve(t, h, tc.method, tc.target, nil)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.method == http.MethodHead && rec.Body.Len() != 0 {
				t.Errorf("HEAD returned %d body bytes", rec.Body.Len())
			}
		})
	}
}

func TestPageEscaping(t *testing.T) {
	tests := []struct {
		name    string
		specURL string
		title   string
		want    []string
		notWant []string
	}{
		{
			name:    "title is HTML-escaped",
			specURL: "/openapi.json",
			title:   `</title><script>alert(1)</script>`,
			want:    []string{"&lt;/title&gt;&lt;script&gt;"},
			notWant: []string{"<script>alert(1)"},
		},
		{
			name:    "javascript spec URL is neutralised",
			specURL: "javascript:alert(1)",
			title:   "x",
			notWant: []string{"javascript:"},
		},
		{
			name:    "spec URL cannot break out of the attribute",
			specURL: `/openapi.json" onload="alert(1)`,
			title:   "x",
			notWant: []string{`" onload="`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := serve(t, Handler("/docs", tc.specURL, tc.title), http.MethodGet, "/docs", nil).Body.String()
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q:\n%s", s, body)
				}
			}
		})
	}
}

func TestCSPConnectSrc(t *testing.T) {
	tests := []struct {
		specURL string
		want    string
	}{
		{"/openapi.json", "connect-src 'self';"},
		{"openapi.yaml", "connect-src 'self';"},
		{"https://api.example.com:8443/openapi.json", "connect-src 'self' https://api.example.com:8443;"},
		{"http://127.0.0.1:8080/openapi.json", "connect-src 'self' http://127.0.0.1:8080;"},
		// Not an http(s) origin: only same-origin fetches stay allowed.
		{"ftp://example.com/openapi.json", "connect-src 'self';"},
		// Attempts to smuggle a directive or source list through the host
		// (url.Parse accepts ';' and ',' there).
		{"https://a.example;script-src/x", "connect-src 'self';"},
		{"https://a.example,b/x", "connect-src 'self';"},
	}
	for _, tc := range tests {
		t.Run(tc.specURL, func(t *testing.T) {
			rec := serve(t, Handler("/docs", tc.specURL, "x"), http.MethodGet, "/docs", nil)
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, tc.want) {
				t.Errorf("CSP %q does not contain %q", csp, tc.want)
			}
			if strings.Count(csp, "script-src") != 1 {
				t.Errorf("CSP has an injected directive: %s", csp)
			}
		})
	}
}

func TestBootScriptStaysOffline(t *testing.T) {
	// Swagger UI's default validatorUrl loads a badge image from
	// validator.swagger.io on every view. The CSP would block it, but the
	// boot script must not even try.
	h := Handler("/docs", "/openapi.json", "x")
	rec := serve(t, h, http.MethodGet, "/docs/assets/"+loadAssets().byFile["docs.js"].url, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	for _, s := range []string{"validatorUrl: null", "queryConfigEnabled: false", "el.dataset.specUrl"} {
		if !strings.Contains(body, s) {
			t.Errorf("docs.js lacks %q", s)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("docs.js contains an absolute URL")
	}
}
