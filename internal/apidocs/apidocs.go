// Package apidocs serves offline, self-contained documentation pages: one for an
// OpenAPI document (Handler) and one for an AsyncAPI document (MessagesHandler),
// and the AsyncAPI document itself (Document).
//
// The pages are rendered by Swagger UI (swagger-ui-dist) and by the AsyncAPI React
// component's standalone bundle (@asyncapi/react-component, see assets/README.md),
// whose files are embedded in the binary, so the docs keep working on hosts
// without internet access and never leak visits to a CDN. Nothing on a page
// is loaded from a remote URL; the Content-Security-Policy sent with the page
// enforces that in the browser as well.
package apidocs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// assetFiles holds only what the browser needs; the licence files in assets/
// stay in the source tree and are not served.
//
//go:embed assets/swagger-ui-bundle.js assets/swagger-ui.css assets/docs.js assets/docs.css
//go:embed assets/asyncapi-standalone.js assets/asyncapi.css assets/asyncapi-docs.js
var assetFiles embed.FS

// asset is one embedded file, addressed by a content-hashed name so it can be
// cached forever: a new renderer version gets a new URL instead of relying on
// clients to revalidate.
type asset struct {
	url         string // name under prefix+"/assets/", e.g. "swagger-ui.1a2b3c4d5e6f7a8b.css"
	body        []byte
	contentType string
	etag        string
}

// assetSet is the hashed view of assetFiles, shared by every Handler.
type assetSet struct {
	byURL  map[string]*asset // hashed name -> asset
	byFile map[string]*asset // source file name -> asset, for the page template
}

// contentTypes is explicit rather than mime.TypeByExtension because the
// latter consults the host's mime.types, which differs between machines.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// loadAssets hashes the embedded files once, on first use, so importing the
// package costs nothing when no docs handler is built.
var loadAssets = sync.OnceValue(func() *assetSet {
	entries, err := assetFiles.ReadDir("assets")
	if err != nil {
		panic("apidocs: reading embedded assets: " + err.Error())
	}
	set := &assetSet{byURL: map[string]*asset{}, byFile: map[string]*asset{}}
	for _, e := range entries {
		body, err := assetFiles.ReadFile("assets/" + e.Name())
		if err != nil {
			panic("apidocs: reading embedded asset: " + err.Error())
		}
		ext := path.Ext(e.Name())
		ct, ok := contentTypes[ext]
		if !ok {
			panic("apidocs: no content type for embedded asset " + e.Name())
		}
		sum := sha256.Sum256(body)
		// 64 bits of hash is plenty to tell versions of a handful of files apart.
		short := hex.EncodeToString(sum[:8])
		a := &asset{
			url:         strings.TrimSuffix(e.Name(), ext) + "." + short + ext,
			body:        body,
			contentType: ct,
			etag:        `"` + short + `"`,
		}
		set.byURL[a.url] = a
		set.byFile[e.Name()] = a
	}
	return set
})

// pageTemplate is both docs pages: the renderer's styles and scripts (from the
// handler's assets) and the element they mount on. The empty data: favicon stops
// browsers from requesting /favicon.ico, which would otherwise 404 (or hit an
// unrelated route) on every view.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="icon" href="data:,">
{{range .Styles}}<link rel="stylesheet" href="{{$.Assets}}{{.}}">
{{end}}</head>
<body>
<div id="{{.Mount}}" data-spec-url="{{.SpecURL}}"></div>
{{range .Scripts}}<script src="{{$.Assets}}{{.}}"></script>
{{end}}</body>
</html>
`))

// page is what pageTemplate renders: the asset names are files of the handler's
// asset set, turned into their hashed URLs by render.
type page struct {
	Title, SpecURL, Mount string
	Styles, Scripts       []string
}

// Handler returns an http.Handler that serves the docs page at prefix (e.g. "/docs") and its assets under prefix+"/assets/". specURL is the URL of the OpenAPI document the page renders (e.g. "/openapi.json"); title is the page title.
//
// The handler matches the full request path, so mount it without
// http.StripPrefix, for both the page and its assets, e.g.
//
//	h := apidocs.Handler("/docs", "/openapi.json", "Agora API")
//	mux.Handle("/docs", h)
//	mux.Handle("/docs/", h)
//
// A request for prefix+"/" is redirected to prefix; any other path, including
// unknown asset names, gets 404. Asset names contain a content hash and are
// served with a one-year immutable Cache-Control; the page itself is always
// revalidated so clients pick up new asset names after an upgrade.
//
// The page's Content-Security-Policy only permits same-origin scripts, styles
// and fetches. If specURL is absolute, its origin is added to connect-src so
// the document can be loaded; "Try it out" requests to other origins (for
// example a servers entry on another host) are blocked by design.
//
// Handler panics if specURL is empty, as that is a wiring mistake.
func Handler(prefix, specURL, title string) http.Handler {
	h := newHandler(prefix, specURL, contentSecurityPolicy(specURL))
	h.render(page{Title: title, SpecURL: specURL, Mount: "swagger-ui",
		Styles: []string{"swagger-ui.css", "docs.css"}, Scripts: []string{"swagger-ui-bundle.js", "docs.js"}})
	return h
}

// MessagesHandler returns an http.Handler that serves a page at prefix (e.g.
// "/docs/messages") rendering the AsyncAPI document at specURL with the AsyncAPI
// React component, and its assets under prefix+"/assets/", mounted and cached as
// Handler's are.
//
// Its Content-Security-Policy is Handler's plus script-src 'unsafe-eval': the
// component parses and validates the document in the browser with Ajv, which
// compiles schemas with new Function. Scripts still come from this origin only,
// and nothing is fetched from anywhere else.
func MessagesHandler(prefix, specURL, title string) http.Handler {
	csp := strings.Replace(contentSecurityPolicy(specURL), "script-src 'self'", "script-src 'self' 'unsafe-eval'", 1)
	h := newHandler(prefix, specURL, csp)
	h.render(page{Title: title, SpecURL: specURL, Mount: "asyncapi",
		Styles: []string{"asyncapi.css"}, Scripts: []string{"asyncapi-standalone.js", "asyncapi-docs.js"}})
	return h
}

// Document returns an http.Handler that serves body, a generated document such as
// api/asyncapi.yaml embedded in the binary, as contentType to GET and HEAD, with
// an ETag of its content (so clients revalidate cheaply) and no other method.
func Document(body []byte, contentType string) http.Handler {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", noModTime, bytes.NewReader(body))
	})
}

// render renders the handler's page once: it only depends on the handler's arguments.
func (h *handler) render(p page) {
	url := func(files []string) []string {
		out := make([]string, len(files))
		for i, f := range files {
			out[i] = h.assets.byFile[f].url
		}
		return out
	}
	var buf bytes.Buffer
	err := pageTemplate.Execute(&buf, map[string]any{"Title": p.Title, "SpecURL": p.SpecURL, "Mount": p.Mount,
		"Assets": h.assetPath, "Styles": url(p.Styles), "Scripts": url(p.Scripts)})
	if err != nil {
		panic("apidocs: rendering page: " + err.Error())
	}
	h.page = buf.Bytes()
	sum := sha256.Sum256(h.page)
	h.pageETag = `"` + hex.EncodeToString(sum[:8]) + `"`
}

// newHandler returns a handler of a page at prefix, served with csp, that renders
// specURL; the caller renders its page. It panics if specURL is empty, as that is
// a wiring mistake.
func newHandler(prefix, specURL, csp string) *handler {
	if specURL == "" {
		panic("apidocs: empty specURL")
	}
	prefix = path.Clean("/" + prefix)
	if prefix == "/" {
		prefix = ""
	}
	h := &handler{pagePath: prefix, assetPath: prefix + "/assets/", assets: loadAssets(), csp: csp}
	if h.pagePath == "" {
		h.pagePath = "/"
	} else {
		h.slashPath = prefix + "/"
	}
	return h
}

type handler struct {
	pagePath  string // prefix, or "/" at the root
	slashPath string // prefix+"/", redirected to pagePath; empty at the root
	assetPath string // prefix+"/assets/"
	assets    *assetSet
	page      []byte // rendered once: it only depends on Handler's arguments
	pageETag  string
	csp       string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	var a *asset
	switch {
	case p == h.pagePath, p == h.slashPath:
	case strings.HasPrefix(p, h.assetPath):
		// A map lookup, never a file-system path, so "..", "/" or encoded
		// tricks in the name simply miss.
		a = h.assets.byURL[p[len(h.assetPath):]]
		if a == nil {
			http.NotFound(w, r)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}

	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	if a != nil {
		hdr.Set("Content-Type", a.contentType)
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
		hdr.Set("ETag", a.etag)
		// ServeContent handles HEAD, Range and If-None-Match (304) for us.
		http.ServeContent(w, r, "", noModTime, bytes.NewReader(a.body))
		return
	}
	if p == h.slashPath {
		// Keep the query; browsers carry the #fragment (deep links) over.
		target := h.pagePath
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", h.pageETag)
	hdr.Set("Content-Security-Policy", h.csp)
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on same-origin POSTs from "Try it out", which breaks
	// CSRF/Origin checks in the API.
	hdr.Set("Referrer-Policy", "same-origin")
	http.ServeContent(w, r, "", noModTime, bytes.NewReader(h.page))
}

// noModTime makes ServeContent skip Last-Modified; the ETag does that job.
var noModTime time.Time

// contentSecurityPolicy builds the page's CSP. Every directive is spelled out
// from default-src 'none' so a future renderer that starts loading something
// new fails closed (and visibly, in the console) instead of phoning home.
//
//   - script-src/style-src 'self': Swagger UI needs no inline script or
//     <style>, since its only inline styles are set through the CSSOM, which
//     CSP does not restrict, and the page boots it from docs.js.
//   - img-src data:: swagger-ui.css draws its icons as data: SVGs; blob:
//     lets "Try it out" show image responses, which Swagger UI renders from
//     object URLs (media-src blob: likewise for audio). Both are local.
//   - connect-src: the spec and "Try it out" requests.
func contentSecurityPolicy(specURL string) string {
	connect := "'self'"
	if o := specOrigin(specURL); o != "" {
		connect += " " + o
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data: blob:",
		"media-src blob:",
		"connect-src " + connect,
		"form-action 'self'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// specOrigin returns the CSP source for an absolute http(s) specURL, or ""
// for a same-origin (relative) one or anything that cannot be expressed
// safely as a CSP source.
func specOrigin(specURL string) string {
	u, err := url.Parse(specURL)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return ""
	}
	// Refuse anything that could end the directive or add another source.
	if strings.ContainsAny(u.Host, " ;,'\"\t\r\n") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
