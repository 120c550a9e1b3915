package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/google/go-cmp/cmp"
)

// The end-to-end suite drives the real agora binary over HTTP, on 127.0.0.1 only.

const (
	readyTimeout    = 20 * time.Second
	shutdownTimeout = 5 * time.Second // AGORA_SHUTDOWN_TIMEOUT of every process
)

func TestMain(m *testing.M) {
	code := testdb.Main(m) // also stops the PostgreSQL container, if a test started it
	procs.Cleanup()
	os.Exit(code)
}

// agoraBinary builds ./cmd/agora once, on first use, so that tests that need no
// binary (the architecture test) do not wait for it.
func agoraBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the agora binary")
	}
	return procs.Binary(t)
}

// agora is one running `agora serve --demo`.
type agora struct {
	t       *testing.T
	base    string // http://127.0.0.1:port
	dataDir string
	token   string // an access token of the demo admin, from POST /v1/auth/login
	cmd     *exec.Cmd
	stderr  *procs.Buffer
	stdout  *procs.Buffer
	done    chan struct{} // closed when the process has exited
	waitErr error
	client  *http.Client
}

// restartAgora starts a process like a, killed, on its data directory and port:
// the same instance, which takes back at once what the killed one held.
func restartAgora(t *testing.T, a *agora, env ...string) *agora {
	t.Helper()
	return startAgoraWith(t, startOptions{addr: strings.TrimPrefix(a.base, "http://")}, a.dataDir, env...)
}

// startAgora starts `agora serve --demo` on dataDir, with env (KEY=value) added to
// its environment, and waits until /readyz is 200. The process is stopped, and its
// logs checked, when the test ends.
func startAgora(t *testing.T, dataDir string, env ...string) *agora {
	t.Helper()
	return startAgoraWith(t, startOptions{}, dataDir, env...)
}

// startOptions vary what startAgoraWith does; the zero value is startAgora's.
type startOptions struct {
	noLogin bool   // do not sign in as the demo admin (identity may run nowhere)
	addr    string // listen here (a restart on its predecessor's port); empty: a free port
	bin     string // the agora binary to run; empty: this tree's (agoraBinary)
}

// startAgoraWith is startAgora with options.
func startAgoraWith(t *testing.T, opts startOptions, dataDir string, env ...string) *agora {
	t.Helper()
	bin := opts.bin
	if bin == "" {
		bin = agoraBinary(t)
	}
	for attempt := 1; ; attempt++ {
		a, err := tryStart(t, bin, dataDir, env, opts)
		if err == nil {
			return a
		}
		// Another process may have taken the port between procs.FreeAddr and the bind.
		if attempt < 3 && opts.addr == "" && strings.Contains(a.stderr.String(), "address already in use") {
			t.Logf("retrying: %v", err)
			continue
		}
		t.Fatalf("agora did not become ready: %v\nstderr:\n%s", err, a.stderr.String())
	}
}

func tryStart(t *testing.T, bin, dataDir string, env []string, opts startOptions) (*agora, error) {
	addr := opts.addr
	if addr == "" {
		addr = procs.FreeAddr(t)
	}
	a := &agora{
		t: t, base: "http://" + addr, dataDir: dataDir,
		stderr: &procs.Buffer{}, stdout: &procs.Buffer{}, done: make(chan struct{}),
		client: checkedClient(t, 15*time.Second),
	}
	a.cmd = exec.Command(bin, "serve", "--demo")
	a.cmd.Env = procs.CleanEnv(append([]string{"AGORA_DATA_DIR=" + dataDir, "AGORA_HTTP_ADDR=" + addr, "AGORA_LOG_FORMAT=json",
		"AGORA_SHUTDOWN_TIMEOUT=" + shutdownTimeout.String()}, env...)...)
	a.cmd.Stdout, a.cmd.Stderr = a.stdout, a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start agora: %v", err)
	}
	go func() {
		a.waitErr = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(a.cleanup)

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-a.done:
			return a, fmt.Errorf("agora exited before it was ready: %v", a.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			return a, fmt.Errorf("/readyz not 200 within %v", readyTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/readyz", nil)
		res, err := a.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
		}
		cancel()
		if err == nil && res.StatusCode == http.StatusOK {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if opts.noLogin {
		return a, nil
	}
	tok, err := a.login("admin@example.com", "demo-admin-password")
	if err != nil {
		return a, fmt.Errorf("sign in as the demo admin: %v", err)
	}
	a.token = tok
	return a, nil
}

// login signs in and returns the access token.
func (a *agora) login(email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	res, err := a.client.Post(a.base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var tokens struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tokens); err != nil || res.StatusCode != http.StatusOK || tokens.TokenType != "Bearer" {
		return "", fmt.Errorf("login %s: status %d, %+v, %v", email, res.StatusCode, tokens, err)
	}
	return tokens.AccessToken, nil
}

// stop sends SIGTERM and waits up to the shutdown timeout and a grace period. It
// returns the exit code, or fails the test if the process does not exit.
func (a *agora) stop() int {
	a.t.Helper()
	select {
	case <-a.done:
	default:
		if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			a.t.Errorf("SIGTERM: %v", err)
		}
		select {
		case <-a.done:
		case <-time.After(shutdownTimeout + 5*time.Second):
			_ = a.cmd.Process.Kill()
			<-a.done
			a.t.Errorf("agora did not exit within %v of SIGTERM; killed it", shutdownTimeout+5*time.Second)
		}
	}
	return a.cmd.ProcessState.ExitCode()
}

// kill ends the process with SIGKILL — no shutdown, as in a crash — and waits for it.
func (a *agora) kill() {
	a.t.Helper()
	select {
	case <-a.done:
	default:
		if err := a.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			a.t.Fatalf("SIGKILL: %v", err)
		}
		<-a.done
	}
}

// cleanup stops the process and checks what it logged.
func (a *agora) cleanup() {
	a.stop()
	a.checkLogs()
}

// checkLogs asserts that every line the process wrote is a JSON record and that
// none carries the admin token.
func (a *agora) checkLogs() {
	a.t.Helper()
	for name, out := range map[string]string{"stderr": a.stderr.String(), "stdout": a.stdout.String()} {
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if !json.Valid([]byte(line)) {
				a.t.Errorf("%s line is not JSON: %q", name, line)
			}
			if a.token != "" && strings.Contains(line, a.token) {
				a.t.Errorf("%s line contains the admin token: %q", name, line)
			}
		}
	}
}

// logRecords decodes the process's JSON log.
func (a *agora) logRecords() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(a.stderr.String()))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

func (a *agora) logged(msg string) int {
	n := 0
	for _, r := range a.logRecords() {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request to the process: body (if not nil) as JSON, headers as
// key, value pairs.
func (a *agora) do(method, path string, body any, headers ...string) reply {
	a.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			a.t.Fatal(err)
		}
	}
	return a.raw(method, path, b, headers...)
}

// admin returns the headers of an admin request.
func (a *agora) admin(more ...string) []string {
	return append([]string{"Authorization", "Bearer " + a.token}, more...)
}

// want asserts the status and decodes the JSON body into v (if not nil).
func (r reply) want(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode body: %v: %s", err, r.body)
		}
	}
}

// wantProblem asserts an RFC 9457 answer with status.
func (r reply) wantProblem(t *testing.T, status int) {
	t.Helper()
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	r.want(t, status, &p)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	if p.Status != status || p.Title == "" {
		t.Errorf("problem body = %+v, want status %d and a title", p, status)
	}
}

type money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

type product struct {
	ID          string            `json:"id"`
	SKU         string            `json:"sku"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Category    string            `json:"category"`
	Price       money             `json:"price"`
	Attributes  map[string]string `json:"attributes"`
	ImageURL    string            `json:"image_url"`
	Status      string            `json:"status"`
	Version     int64             `json:"version"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

type productList struct {
	Items      []product `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

// listAll follows next_cursor from the first page of query and returns every
// product, failing on a product seen twice or a cursor loop.
func (a *agora) listAll(t *testing.T, query url.Values, headers ...string) []product {
	t.Helper()
	var all []product
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("more than 100 pages: the cursor does not advance")
		}
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page productList
		a.do(http.MethodGet, "/v1/products?"+q.Encode(), nil, headers...).want(t, http.StatusOK, &page)
		for _, p := range page.Items {
			if seen[p.ID] {
				t.Fatalf("product %s (%s) listed twice", p.ID, p.SKU)
			}
			seen[p.ID] = true
			all = append(all, p)
		}
		if page.NextCursor == "" {
			return all
		}
		if len(page.Items) == 0 {
			t.Fatal("an empty page has a next_cursor")
		}
		cursor = page.NextCursor
	}
}

func TestE2EDemoCatalog(t *testing.T) {
	t.Parallel()
	a := startAgora(t, t.TempDir())

	// One big page is the reference the paginated walk must match.
	var one productList
	a.do(http.MethodGet, "/v1/products?limit=100", nil).want(t, http.StatusOK, &one)
	if one.NextCursor != "" {
		t.Fatalf("the demo catalog needs more than one page of 100 (next_cursor %q); this test assumes it does not", one.NextCursor)
	}
	categories := map[string]int{}
	for _, p := range one.Items {
		if p.Status != "active" {
			t.Errorf("public list shows %s with status %q", p.SKU, p.Status)
		}
		categories[p.Category]++
	}
	if len(one.Items) < 30 || len(categories) < 5 {
		t.Fatalf("demo catalog has %d active products in %d categories, want ≥30 in ≥5", len(one.Items), len(categories))
	}
	if n := a.logged("demo catalog created"); n != 1 {
		t.Errorf("'demo catalog created' logged %d times, want 1", n)
	}

	t.Run("pagination visits every product once", func(t *testing.T) {
		for _, limit := range []string{"1", "7", "20"} {
			got := a.listAll(t, url.Values{"limit": {limit}})
			ids := func(ps []product) []string {
				var out []string
				for _, p := range ps {
					out = append(out, p.ID)
				}
				return out
			}
			if diff := cmp.Diff(ids(one.Items), ids(got)); diff != "" {
				t.Errorf("limit %s: products by pages differ from one page (-want +got):\n%s", limit, diff)
			}
		}
	})

	t.Run("pagination within a category", func(t *testing.T) {
		for cat, n := range categories {
			got := a.listAll(t, url.Values{"limit": {"4"}, "category": {cat}})
			if len(got) != n {
				t.Errorf("category %s: %d products by pages, want %d", cat, len(got), n)
			}
			for _, p := range got {
				if p.Category != cat {
					t.Errorf("category %s lists %s of category %s", cat, p.SKU, p.Category)
				}
			}
		}
	})

	t.Run("bad cursor", func(t *testing.T) {
		a.do(http.MethodGet, "/v1/products?cursor=not-a-cursor", nil).wantProblem(t, http.StatusUnprocessableEntity)
	})

	t.Run("search", func(t *testing.T) {
		var res productList
		a.do(http.MethodGet, "/v1/products?q=coffee", nil).want(t, http.StatusOK, &res)
		found := false
		for _, p := range res.Items {
			text := strings.ToLower(p.Name + " " + p.Description)
			if !strings.Contains(text, "coffee") {
				t.Errorf("search for coffee found %s (%q)", p.SKU, p.Name)
			}
			if strings.Contains(strings.ToLower(p.Name), "coffee") {
				found = true
			}
		}
		if !found {
			t.Errorf("search for coffee found no coffee product: %+v", res.Items)
		}
		var upper productList
		a.do(http.MethodGet, "/v1/products?q=COFFEE", nil).want(t, http.StatusOK, &upper)
		if len(upper.Items) != len(res.Items) {
			t.Errorf("search is case-sensitive: %d results for COFFEE, %d for coffee", len(upper.Items), len(res.Items))
		}
		var none productList
		a.do(http.MethodGet, "/v1/products?q=zzz-no-such-thing", nil).want(t, http.StatusOK, &none)
		if len(none.Items) != 0 {
			t.Errorf("search for nonsense found %d products", len(none.Items))
		}
	})

	t.Run("get by id with ETag", func(t *testing.T) {
		want := one.Items[0]
		r := a.do(http.MethodGet, "/v1/products/"+want.ID, nil)
		var got product
		r.want(t, http.StatusOK, &got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("product by id differs from the list (-list +get):\n%s", diff)
		}
		etag := r.header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		r = a.do(http.MethodGet, "/v1/products/"+want.ID, nil, "If-None-Match", etag)
		if r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("If-None-Match %s: status %d with %d body bytes, want 304 and none", etag, r.status, len(r.body))
		}
		a.do(http.MethodGet, "/v1/products/"+want.ID, nil, "If-None-Match", `"999999"`).want(t, http.StatusOK, nil)
	})

	t.Run("unknown product", func(t *testing.T) {
		a.do(http.MethodGet, "/v1/products/0190b6a2-0000-7000-8000-000000000000", nil).wantProblem(t, http.StatusNotFound)
		a.do(http.MethodGet, "/v1/products/not-a-uuid", nil).wantProblem(t, http.StatusUnprocessableEntity)
	})

	t.Run("unknown route", func(t *testing.T) {
		a.do(http.MethodGet, "/v1/nothing-here", nil).wantProblem(t, http.StatusNotFound)
		a.do(http.MethodDelete, "/v1/products", nil).wantProblem(t, http.StatusMethodNotAllowed)
	})
}

func TestE2EAdminWrites(t *testing.T) {
	t.Parallel()
	a := startAgora(t, t.TempDir())
	input := map[string]any{
		"sku": "E2E-MUG", "name": "End-to-End Mug", "description": "A mug that went all the way.",
		"category": "kitchen", "price": map[string]any{"amount": 1250, "currency": "EUR"},
	}

	t.Run("without a valid token", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer wrong-token", "Basic " + a.token} {
			var h []string
			if auth != "" {
				h = []string{"Authorization", auth}
			}
			r := a.do(http.MethodPost, "/v1/products", input, h...)
			r.wantProblem(t, http.StatusUnauthorized)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("Authorization %q: 401 without WWW-Authenticate", auth)
			}
		}
	})

	// Create: a draft, seen by admins only.
	r := a.do(http.MethodPost, "/v1/products", input, a.admin()...)
	var created product
	r.want(t, http.StatusCreated, &created)
	if created.ID == "" || created.SKU != "E2E-MUG" || created.Status != "draft" || created.Version != 1 {
		t.Fatalf("created %+v, want a draft E2E-MUG at version 1", created)
	}
	if loc := r.header.Get("Location"); loc != "/v1/products/"+created.ID {
		t.Errorf("Location = %q, want /v1/products/%s", loc, created.ID)
	}
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatal("create sent no ETag")
	}
	a.do(http.MethodGet, "/v1/products/"+created.ID, nil).wantProblem(t, http.StatusNotFound)
	a.do(http.MethodGet, "/v1/products/"+created.ID, nil, a.admin()...).want(t, http.StatusOK, nil)
	a.do(http.MethodPost, "/v1/products", input, a.admin()...).wantProblem(t, http.StatusConflict)

	// Update: If-Match is required and must be current.
	patch := map[string]any{"name": "End-to-End Mug, Large", "status": "active"}
	a.do(http.MethodPatch, "/v1/products/"+created.ID, patch).wantProblem(t, http.StatusUnauthorized)
	a.do(http.MethodPatch, "/v1/products/"+created.ID, patch, a.admin()...).wantProblem(t, http.StatusPreconditionRequired)
	r = a.do(http.MethodPatch, "/v1/products/"+created.ID, patch, a.admin("If-Match", etag)...)
	var updated product
	r.want(t, http.StatusOK, &updated)
	if updated.Name != "End-to-End Mug, Large" || updated.Status != "active" || updated.Version != created.Version+1 {
		t.Errorf("updated %+v, want the new name, active, version %d", updated, created.Version+1)
	}
	newETag := r.header.Get("ETag")
	if newETag == "" || newETag == etag {
		t.Errorf("ETag after update = %q, want a new one (was %q)", newETag, etag)
	}
	a.do(http.MethodPatch, "/v1/products/"+created.ID, patch, a.admin("If-Match", etag)...).wantProblem(t, http.StatusPreconditionFailed)

	// Now active: public, and found by search.
	var pub product
	a.do(http.MethodGet, "/v1/products/"+created.ID, nil).want(t, http.StatusOK, &pub)
	var found productList
	a.do(http.MethodGet, "/v1/products?q=end-to-end", nil).want(t, http.StatusOK, &found)
	if len(found.Items) != 1 || found.Items[0].ID != created.ID {
		t.Errorf("search for the new product found %+v", found.Items)
	}

	// Archive.
	a.do(http.MethodPost, "/v1/products/"+created.ID+"/archive", nil).wantProblem(t, http.StatusUnauthorized)
	a.do(http.MethodPost, "/v1/products/"+created.ID+"/archive", nil, a.admin("If-Match", etag)...).wantProblem(t, http.StatusPreconditionFailed)
	var archived product
	a.do(http.MethodPost, "/v1/products/"+created.ID+"/archive", nil, a.admin("If-Match", newETag)...).want(t, http.StatusOK, &archived)
	if archived.Status != "archived" {
		t.Errorf("archived product has status %q", archived.Status)
	}
	a.do(http.MethodGet, "/v1/products/"+created.ID, nil).want(t, http.StatusOK, &pub)
	if pub.Status != "archived" {
		t.Errorf("archived product read back with status %q", pub.Status)
	}
	a.do(http.MethodPatch, "/v1/products/"+created.ID, patch, a.admin("If-Match", fmt.Sprintf(`"%d"`, pub.Version))...).wantProblem(t, http.StatusConflict)
	a.do(http.MethodGet, "/v1/products?q=end-to-end", nil).want(t, http.StatusOK, &found)
	if len(found.Items) != 0 {
		t.Errorf("the archived product is still listed: %+v", found.Items)
	}
}

func TestE2EDocs(t *testing.T) {
	t.Parallel()
	a := startAgora(t, t.TempDir())
	r := a.do(http.MethodGet, "/docs", nil)
	r.want(t, http.StatusOK, nil)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	page := string(r.body)
	if m := regexp.MustCompile(`(?i)https?://`).FindString(page); m != "" {
		t.Errorf("the docs page references a remote URL (%s):\n%s", m, page)
	}
	refs := regexp.MustCompile(`(?:src|href)="(/docs/assets/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 2 {
		t.Fatalf("the docs page references %d assets under /docs/assets/, want its script and style:\n%s", len(refs), page)
	}
	for _, m := range refs {
		ar := a.do(http.MethodGet, m[1], nil)
		if ar.status != http.StatusOK || len(ar.body) == 0 {
			t.Errorf("%s: status %d, %d bytes; want 200 with content", m[1], ar.status, len(ar.body))
		}
	}
	a.do(http.MethodGet, "/docs/assets/no-such-file.js", nil).want(t, http.StatusNotFound, nil)
}

// openAPIDoc is the part of an OpenAPI document this suite reads.
type openAPIDoc struct {
	OpenAPI string                               `json:"openapi"`
	Paths   map[string]map[string]map[string]any `json:"paths"`
}

func TestE2EOpenAPI(t *testing.T) {
	t.Parallel()
	a := startAgora(t, t.TempDir())
	r := a.do(http.MethodGet, "/openapi.json", nil)
	var served any
	r.want(t, http.StatusOK, &served)
	var doc openAPIDoc
	r.want(t, http.StatusOK, &doc)

	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	// Every route this suite uses is documented.
	used := map[string][]string{
		"/v1/products":              {"get", "post"},
		"/v1/products/{id}":         {"get", "patch"},
		"/v1/products/{id}/archive": {"post"},
		"/healthz":                  {"get"},
		"/readyz":                   {"get"},
	}
	for path, methods := range used {
		for _, m := range methods {
			if _, ok := doc.Paths[path][m]; !ok {
				t.Errorf("the OpenAPI document lacks %s %s", strings.ToUpper(m), path)
			}
		}
	}
	// Every operation states its access rule.
	httpMethods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	ops := 0
	for path, item := range doc.Paths {
		for m, op := range item {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			ops++
			if _, ok := op["security"]; !ok {
				t.Errorf("%s %s has no security field", strings.ToUpper(m), path)
			}
		}
	}
	if ops < 7 {
		t.Errorf("the document has %d operations; expected at least the %d this suite uses", ops, 7)
	}
	security := func(path, method string) string {
		b, _ := json.Marshal(doc.Paths[path][method]["security"])
		return string(b)
	}
	if got := security("/v1/products", "post"); got != `[{"adminAuth":[]}]` {
		t.Errorf("create-product security = %s, want admin only", got)
	}
	if got := security("/v1/me", "get"); got != `[{"bearerAuth":[]}]` {
		t.Errorf("get-me security = %s, want any signed-in user", got)
	}
	if got := security("/v1/auth/login", "post"); got != `[]` {
		t.Errorf("login security = %s, want public ([])", got)
	}
	if got := security("/healthz", "get"); got != `[]` {
		t.Errorf("healthz security = %s, want public ([])", got)
	}

	// `agora openapi` prints the same document, without starting a server.
	cmd := exec.CommandContext(t.Context(), agoraBinary(t), "openapi")
	cmd.Env = procs.CleanEnv("AGORA_DATA_DIR=" + t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agora openapi: %v\n%s", err, stderr.String())
	}
	var printed any
	if err := json.Unmarshal(out, &printed); err != nil {
		t.Fatalf("agora openapi printed no JSON: %v", err)
	}
	if diff := cmp.Diff(served, printed); diff != "" {
		t.Errorf("agora openapi differs from GET /openapi.json (-served +printed):\n%s", diff)
	}
}

func TestE2EShutdownAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startAgora(t, dir)
	demo := a.listAll(t, url.Values{"limit": {"100"}})
	token := a.token

	var created product
	a.do(http.MethodPost, "/v1/products", map[string]any{
		"sku": "E2E-KEEP", "name": "Kept Across Restarts", "category": "home", "status": "active",
		"price": map[string]any{"amount": 990, "currency": "EUR"},
	}, a.admin()...).want(t, http.StatusCreated, &created)
	before := a.listAll(t, url.Values{"limit": {"100"}})
	if len(before) != len(demo)+1 {
		t.Fatalf("%d products after creating one, want %d", len(before), len(demo)+1)
	}

	// A request in flight when SIGTERM arrives is served before the process exits:
	// its headers and half its body are sent before the signal, the rest after.
	body, err := json.Marshal(map[string]any{
		"sku": "E2E-INFLIGHT", "name": "Created During Shutdown", "category": "home", "status": "active",
		"price": map[string]any{"amount": 500, "currency": "EUR"},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(a.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(shutdownTimeout + 10*time.Second))
	head := fmt.Sprintf("POST /v1/products HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", strings.TrimPrefix(a.base, "http://"), a.token, len(body))
	if _, err := io.WriteString(conn, head+string(body[:len(body)/2])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server read the headers

	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for a.logged("agora is stopping: draining requests") == 0 {
		if time.Since(start) > shutdownTimeout {
			t.Fatalf("no sign of shutdown after SIGTERM; stderr:\n%s", a.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the listener closes right after that log line
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(a.base, "http://"), time.Second); err == nil {
		_ = c.Close()
		t.Error("a draining server still accepts new connections")
	}
	if _, err := conn.Write(body[len(body)/2:]); err != nil {
		t.Fatalf("finish the in-flight request: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	var inflight product
	rb, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	reply{status: res.StatusCode, header: res.Header, body: rb}.want(t, http.StatusCreated, &inflight)
	before = append(before, inflight)

	code := a.stop()
	took := time.Since(start)
	if code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; stderr:\n%s", code, a.stderr.String())
	}
	if took > shutdownTimeout {
		t.Errorf("shutdown took %v, more than the shutdown timeout %v", took, shutdownTimeout)
	}
	if a.logged("agora stopped") != 1 {
		t.Errorf("the log does not say 'agora stopped':\n%s", a.stderr.String())
	}

	// Same data dir, --demo again: the demo is not seeded twice, nothing is lost.
	b := startAgora(t, dir)
	// The signing key is kept in identity's database: a token issued before the restart
	// still verifies after it.
	b.do(http.MethodGet, "/v1/me", nil, "Authorization", "Bearer "+token).want(t, http.StatusOK, nil)
	if n := b.logged("demo catalog created"); n != 0 {
		t.Errorf("the demo catalog was seeded again on restart")
	}
	after := b.listAll(t, url.Values{"limit": {"100"}})
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("products differ across a restart (-before +after):\n%s", diff)
	}
	var got product
	b.do(http.MethodGet, "/v1/products/"+created.ID, nil).want(t, http.StatusOK, &got)
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("the product created before the restart differs (-created +read):\n%s", diff)
	}
}
