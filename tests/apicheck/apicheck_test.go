package apicheck_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-commerce/agora/tests/apicheck"
)

// thingsDoc is a small document with each kind of declaration the checker must
// hold a server to: a JSON body with required fields and a format, a required
// integer header, a problem, a response with no content, and an event stream.
const thingsDoc = `
openapi: 3.1.0
info: {title: things, version: "1"}
paths:
  /v1/things/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
      responses:
        "200":
          description: OK
          headers:
            ETag: {schema: {type: string}}
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Thing"}
        "429":
          description: Too Many Requests
          headers:
            Retry-After: {required: true, schema: {type: integer, minimum: 1}}
          content:
            application/problem+json:
              schema: {$ref: "#/components/schemas/Problem"}
    delete:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
      responses:
        "202": {description: Accepted}
  /v1/things/{id}/events:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
      responses:
        "200":
          description: OK
          content:
            text/event-stream:
              schema:
                type: array
                items:
                  oneOf:
                    - type: object
                      required: [event, data]
                      properties:
                        event: {const: thing}
                        data: {$ref: "#/components/schemas/Thing"}
                        id: {type: integer}
components:
  schemas:
    Thing:
      type: object
      additionalProperties: false
      required: [id, name]
      properties:
        id: {type: string, format: uuid}
        name: {type: string}
    Problem:
      type: object
      required: [title, status]
      properties:
        title: {type: string}
        status: {type: integer}
`

const (
	thingID   = "0190a8b2-0000-7000-8000-000000000001"
	goodThing = `{"id":"` + thingID + `","name":"lamp"}`
)

// answer is what the fake server sends.
type answer struct {
	status  int
	ctype   string
	headers map[string]string
	body    string
}

// TestCheckerCatchesWrongAnswers feeds the transport deliberately wrong answers
// and checks each is reported — and that right ones are not.
func TestCheckerCatchesWrongAnswers(t *testing.T) {
	json, problem := "application/json", "application/problem+json"
	for _, tc := range []struct {
		name         string
		method, path string
		answer       answer
		want         string // a substring of the one problem expected; "" for none
	}{
		{"a right answer", "GET", "/v1/things/" + thingID, answer{200, json, map[string]string{"ETag": `"1"`}, goodThing}, ""},
		{"an undeclared status", "GET", "/v1/things/" + thingID, answer{404, problem, nil, `{"title":"Not Found","status":404}`}, "404"},
		{"a missing required field", "GET", "/v1/things/" + thingID, answer{200, json, nil, `{"id":"` + thingID + `"}`}, "name"},
		{"a wrong format", "GET", "/v1/things/" + thingID, answer{200, json, nil, `{"id":"42","name":"lamp"}`}, "uuid"},
		{"an undeclared property", "GET", "/v1/things/" + thingID, answer{200, json, nil, `{"id":"` + thingID + `","name":"lamp","colour":"red"}`}, "colour"},
		{"an undeclared content type", "GET", "/v1/things/" + thingID, answer{200, "text/plain", nil, "lamp"}, "text/plain"},
		{"an undeclared header", "GET", "/v1/things/" + thingID, answer{200, json, map[string]string{"X-Request-ID": "abc"}, goodThing}, "X-Request-Id"},
		{"an undeclared header where none is declared", "DELETE", "/v1/things/" + thingID, answer{202, "", map[string]string{"Retry-After": "1"}, ""}, "Retry-After"},
		{"a header of the wrong type", "GET", "/v1/things/" + thingID, answer{429, problem, map[string]string{"Retry-After": "soon"}, `{"title":"Too Many Requests","status":429}`}, "Retry-After"},
		{"a missing required header", "GET", "/v1/things/" + thingID, answer{429, problem, nil, `{"title":"Too Many Requests","status":429}`}, "Retry-After"},
		{"a body where none is declared", "DELETE", "/v1/things/" + thingID, answer{202, json, nil, `{"ok":true}`}, "declares no content"},
		{"no content, as declared", "DELETE", "/v1/things/" + thingID, answer{202, "", nil, ""}, ""},
		{"an operation the document lacks", "GET", "/v1/widgets", answer{200, json, nil, `[]`}, "does not list"},
		{"no such operation, refused", "GET", "/v1/widgets", answer{404, problem, nil, `{"title":"Not Found","status":404}`}, ""},
		{"a page the document does not describe", "GET", "/docs", answer{200, "text/html", nil, "<html></html>"}, ""},
		{"a right event", "GET", "/v1/things/" + thingID + "/events", answer{200, "text/event-stream", nil, "id: 1\nevent: thing\ndata: " + goodThing + "\n\n: keep-alive\n\n"}, ""},
		{"an event missing a field", "GET", "/v1/things/" + thingID + "/events", answer{200, "text/event-stream", nil, "id: 1\nevent: thing\ndata: {\"id\":\"" + thingID + "\"}\n\n"}, `event "thing"`},
		{"an undeclared event", "GET", "/v1/things/" + thingID + "/events", answer{200, "text/event-stream", nil, "event: gone\ndata: {}\n\n"}, `event "gone"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := roundTrip(t, thingsDoc, tc.method, tc.path, tc.answer)
			switch {
			case tc.want == "" && len(ms) > 0:
				t.Fatalf("a right answer was reported:\n%s", apicheck.Report(ms))
			case tc.want != "" && len(ms) == 0:
				t.Fatalf("the wrong answer was not reported (want a problem mentioning %q)", tc.want)
			case tc.want != "" && !strings.Contains(strings.ToLower(apicheck.Report(ms)), strings.ToLower(tc.want)):
				t.Fatalf("want a problem mentioning %q, got:\n%s", tc.want, apicheck.Report(ms))
			}
		})
	}
}

// TestCheckerOnAgorasDocument shows the check against the real document: a
// product without its name, and a status GET /v1/products/{id} never answers.
func TestCheckerOnAgorasDocument(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/products/" + thingID
	nameless := `{"id":"` + thingID + `","sku":"SKU-1","description":"","category":"lamps","price":{"amount":100,"currency":"EUR"},` +
		`"attributes":{},"image_url":"https://example.com/a.png","status":"active","version":1,` +
		`"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`
	if ms := roundTrip(t, string(doc), "GET", path, answer{200, "application/json", nil, nameless}); !strings.Contains(apicheck.Report(ms), "name") {
		t.Errorf("a product without its required name was not reported; got:\n%s", apicheck.Report(ms))
	}
	if ms := roundTrip(t, string(doc), "GET", path, answer{http.StatusTeapot, "application/problem+json", nil, `{"title":"I'm a teapot","status":418}`}); !strings.Contains(apicheck.Report(ms), "418") {
		t.Errorf("an undeclared 418 was not reported; got:\n%s", apicheck.Report(ms))
	}
}

// roundTrip sends one request through a Transport checking against doc, to a
// server that sends a, reads the whole answer as a client would, and returns
// what the transport reported.
func roundTrip(t *testing.T, doc, method, path string, a answer) []apicheck.Mismatch {
	t.Helper()
	c, err := apicheck.New([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		for k, v := range a.headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer srv.Close()
	tr := &apicheck.Transport{Checker: c}
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil || string(got) != a.body {
		t.Fatalf("the caller got %q, %v; want the body unchanged, %q", got, err, a.body)
	}
	if ms := tr.Mismatches(); len(ms) > 0 {
		t.Log(apicheck.Report(ms))
		return ms
	}
	return nil
}
