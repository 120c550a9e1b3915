package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/message"
)

type thing struct {
	ID string `json:"id"`
}

const knownID = "0b6b7a9e-6f6e-4d5c-9a8b-1c2d3e4f5a6b"

var errNoThing = message.NewError(message.NotFound, "test.no_thing", "no such thing")

// preloadAPI serves GET /things/{id}, whose handler answers what Preload found
// (or 204 when it found nothing), and counts find's calls.
func preloadAPI(t *testing.T, finds *int) humatest.TestAPI {
	_, api := humatest.New(t)
	find := func(_ context.Context, id string) (thing, error) {
		*finds++
		switch id {
		case knownID:
			return thing{ID: id}, nil
		case "ffffffff-ffff-4fff-bfff-ffffffffffff":
			return thing{}, errors.New("the store is down")
		}
		return thing{}, errNoThing.Withf("no thing %s", id)
	}
	type in struct {
		ID string `path:"id" format:"uuid"`
	}
	type out struct {
		Status int
		Body   *thing
	}
	huma.Register(api, huma.Operation{OperationID: "get-thing", Method: http.MethodGet, Path: "/things/{id}",
		Middlewares: huma.Middlewares{Preload(api, "id", find)}},
		func(ctx context.Context, _ *in) (*out, error) {
			v, ok := Preloaded[thing](ctx)
			if !ok {
				return &out{Status: http.StatusNoContent}, nil
			}
			return &out{Status: http.StatusOK, Body: &v}, nil
		})
	return api
}

func TestPreloadHandsTheFoundValueToTheHandler(t *testing.T) {
	finds := 0
	resp := preloadAPI(t, &finds).Get("/things/" + knownID)
	if resp.Code != http.StatusOK {
		t.Fatalf("status %d, body %s; want 200", resp.Code, resp.Body)
	}
	var got thing
	if err := json.Unmarshal(resp.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(thing{ID: knownID}, got); diff != "" || finds != 1 {
		t.Fatalf("answered thing (-want +got):\n%s after %d finds, want 1", diff, finds)
	}
}

func TestPreloadAnswersFindsErrorAsAProblem(t *testing.T) {
	finds := 0
	resp := preloadAPI(t, &finds).Get("/things/1b6b7a9e-6f6e-4d5c-9a8b-1c2d3e4f5a6b")
	if resp.Code != http.StatusNotFound || resp.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, type %q; want 404 problem+json", resp.Code, resp.Header().Get("Content-Type"))
	}
	var p huma.ErrorModel
	if err := json.Unmarshal(resp.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != ProblemTypePrefix+"test.no_thing" || !strings.Contains(p.Detail, "no thing 1b6b7a9e") {
		t.Fatalf("problem %+v; want the find error's code and message", p)
	}
}

func TestPreloadHidesAnUnexpectedError(t *testing.T) {
	finds := 0
	resp := preloadAPI(t, &finds).Get("/things/ffffffff-ffff-4fff-bfff-ffffffffffff")
	if resp.Code != http.StatusInternalServerError || strings.Contains(resp.Body.String(), "store is down") {
		t.Fatalf("status %d, body %s; want a 500 that says nothing internal", resp.Code, resp.Body)
	}
}

func TestPreloadLeavesAnIDThatIsNotAUUIDToHuma(t *testing.T) {
	finds := 0
	resp := preloadAPI(t, &finds).Get("/things/not-a-uuid")
	if resp.Code != http.StatusUnprocessableEntity || finds != 0 {
		t.Fatalf("status %d after %d finds; want huma's 422 and no find", resp.Code, finds)
	}
}
