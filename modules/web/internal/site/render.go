package site

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/rides"
)

//go:embed templates/*.html
var templateFiles embed.FS

// pages holds every page template, each parsed with the layout it fills in.
type pages struct {
	byName map[string]*template.Template
}

// loadPages parses the templates: layout.html and partials.html with each
// other file, a page named after its file ("home" for home.html).
func loadPages() *pages {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic("site: " + err.Error())
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t := template.New("layout.html").Funcs(funcs)
		p.byName[base] = template.Must(t.ParseFS(templateFiles, "templates/layout.html", "templates/partials.html", n))
	}
	return p
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"money": message.Money.String, // the one format customers see amounts in
	"when":  func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") },
	"short": func(id string) string { return id[:min(len(id), 8)] },
	"minor": func(amount int64, currency string) string {
		return message.Money{Amount: amount, Currency: currency}.String()
	},
	"initial":    initial,
	"km":         km,
	"rideStatus": func(st rides.Status) string { return cmp.Or(rideStatusWords[st], string(st)) },
	"minutes":    minutes,
	"coord":      func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"percent":    func(p float64) string { return strconv.FormatFloat(p*100, 'g', 4, 64) + " %" },
	"millis":     func(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() },
}

// km writes a distance in meters as riders read it: "850 m", "3.2 km".
func km(meters int64) string {
	if meters < 1000 {
		return strconv.FormatInt(meters, 10) + " m"
	}
	return strconv.FormatFloat(float64(meters)/1000, 'f', 1, 64) + " km"
}

// minutes writes a duration in seconds as riders read it, in whole minutes
// rounded up, at least one: "1 min", "12 min".
func minutes(seconds int64) string {
	return strconv.FormatInt(max((seconds+59)/60, 1), 10) + " min"
}

// initial is the first letter of a name, for a product's tile.
func initial(name string) string {
	for _, r := range name {
		return string(r)
	}
	return "?"
}

// view is what every page template gets.
type view struct {
	Visit  *visit
	Title  string
	Path   string // the page's path, to mark the current navigation link
	Assets map[string]string
	Data   any
}

// Title returns a page's title; pages' data may name one.
type titled interface{ PageTitle() string }

// render writes the page name with data and status. The page is rendered into a
// buffer first, so a template failure becomes a clean error page, never half a page.
func (s *Site) render(w http.ResponseWriter, r *http.Request, v *visit, status int, name string, data any) {
	t := s.pages.byName[name]
	title := "Agora"
	if td, ok := data.(titled); ok {
		title = td.PageTitle() + " · Agora"
	}
	var buf bytes.Buffer
	err := t.Execute(&buf, view{Visit: v, Title: title, Path: r.URL.Path, Assets: s.assets.urls, Data: data})
	if err != nil {
		s.log.ErrorContext(r.Context(), "web: rendering a page", "page", name, "err", err)
		if name != "error" {
			s.render(w, r, v, http.StatusInternalServerError, "error", errorPage{Title: "Something went wrong",
				Message: "This page could not be shown. Please try again."})
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// errorPage is the data of the error page.
type errorPage struct {
	Title, Message string
	SignIn         bool // offer to sign in (as someone else)
}

func (e errorPage) PageTitle() string { return e.Title }

// maxShownMessage bounds the text an error page shows.
const maxShownMessage = 300

// fail answers err as an error page a person can act on: its status follows the
// error's kind (as the API's problems do); its text is the contract's message
// for the customer, bounded, and nothing internal (an unexpected error is logged
// and shown as a plain apology).
func (s *Site) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	be := message.AsError(err)
	status, title := errorStatus(be.Kind)
	msg := be.Message
	if be.Kind == message.Internal {
		if be == message.ErrInternal && !errors.Is(err, message.ErrInternal) {
			s.log.ErrorContext(r.Context(), "web: serving a page", "path", r.URL.Path, "err", err)
		}
		msg = "Something went wrong on our side. Please try again in a moment."
	}
	if len(msg) > maxShownMessage {
		msg = msg[:maxShownMessage] + "…"
	}
	if status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout {
		w.Header().Set("Retry-After", "2")
	}
	s.render(w, r, v, status, "error", errorPage{Title: title, Message: msg, SignIn: status == http.StatusForbidden})
}

// errorPages are each error kind's status and page title; other kinds are 500s.
var errorPages = map[message.ErrorKind]struct {
	status int
	title  string
}{
	message.Invalid:         {http.StatusUnprocessableEntity, "That did not work"},
	message.NotFound:        {http.StatusNotFound, "Not found"},
	message.Conflict:        {http.StatusConflict, "That cannot be done now"},
	message.Precondition:    {http.StatusConflict, "That cannot be done now"},
	message.Unauthenticated: {http.StatusUnauthorized, "Please sign in"},
	message.Forbidden:       {http.StatusForbidden, "Not allowed"},
	message.Unavailable:     {http.StatusServiceUnavailable, "Temporarily unavailable"},
	message.Overloaded:      {http.StatusServiceUnavailable, "Temporarily unavailable"},
	message.Timeout:         {http.StatusGatewayTimeout, "That took too long"},
}

// errorStatus maps an error kind to its status and a page title.
func errorStatus(k message.ErrorKind) (int, string) {
	if p, ok := errorPages[k]; ok {
		return p.status, p.title
	}
	return http.StatusInternalServerError, "Something went wrong"
}

// pagePolicy is every page's Content-Security-Policy: nothing but this site's own
// scripts, styles, images and event streams; no inline script or style at all;
// forms post only here; no framing.
const pagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// setPageHeaders sets what every page carries. Pages show personal data, so no
// cache keeps them. Referrer-Policy same-origin (not the edge's no-referrer): with
// no-referrer, browsers send "Origin: null" on same-origin form posts, which the
// cross-origin check would refuse.
func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pagePolicy)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}
