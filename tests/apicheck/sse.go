package apicheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi-validator/content"
)

// sseDecoder reads text/event-stream into the shape huma documents a stream as:
// an array of events, each {event, data, id, retry}, data decoded as JSON.
// Fields are kept as sent when they do not parse (an id that is no integer
// stays a string), so the schema, not the decoder, says what is wrong.
type sseDecoder struct{}

func (sseDecoder) Decode(in *content.DecodeInput) (any, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	return parseEvents(b)
}

// parseEvents splits b into server-sent events. A block of only comments
// (": keep-alive") is no event.
func parseEvents(b []byte) ([]any, error) {
	events := []any{}
	for _, block := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		ev := map[string]any{}
		var data []string
		sc := bufio.NewScanner(strings.NewReader(block))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			name, value, _ := strings.Cut(sc.Text(), ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "":
				// a comment
			case "data":
				data = append(data, value)
			case "id", "retry":
				if n, err := strconv.ParseInt(value, 10, 64); err == nil {
					ev[name] = n
				} else {
					ev[name] = value
				}
			default:
				ev[name] = value
			}
		}
		if data != nil {
			var v any
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &v); err != nil {
				return nil, fmt.Errorf("event %v: data is not JSON: %w", ev["event"], err)
			}
			ev["data"] = v
		}
		if len(ev) > 0 {
			events = append(events, ev)
		}
	}
	return events, nil
}

// bodyReader is a fresh body over b.
func bodyReader(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// eventChecker wraps a stream's body: as the caller reads, each complete event
// is checked against the operation's declared events, and what is wrong is
// handed to report. Reading and closing pass through unchanged.
type eventChecker struct {
	body     io.ReadCloser
	c        *Checker
	req      *http.Request
	res      *http.Response
	template string // the operation's path template
	report   func([]string)

	mu      sync.Mutex
	pending []byte // bytes of an event not yet complete
}

func (e *eventChecker) Read(p []byte) (int, error) {
	n, err := e.body.Read(p)
	if n > 0 {
		e.feed(p[:n])
	}
	return n, err
}

func (e *eventChecker) Close() error { return e.body.Close() }

// feed checks every event that p completes.
func (e *eventChecker) feed(p []byte) {
	e.mu.Lock()
	e.pending = append(e.pending, p...)
	normalized := bytes.ReplaceAll(e.pending, []byte("\r\n"), []byte("\n"))
	end := bytes.LastIndex(normalized, []byte("\n\n"))
	if end < 0 {
		e.mu.Unlock()
		return
	}
	complete := normalized[:end+2]
	e.pending = append([]byte(nil), normalized[end+2:]...)
	e.mu.Unlock()
	for _, block := range bytes.SplitAfter(complete, []byte("\n\n")) {
		if len(bytes.TrimSpace(block)) == 0 {
			continue
		}
		copyRes := *e.res
		copyRes.Body = bodyReader(block)
		e.c.mu.Lock()
		valid, errs := e.c.v.ValidateHttpResponse(e.req, &copyRes)
		e.c.mu.Unlock()
		if !valid {
			problems := describe(errs, e.req.URL.Path, e.template)
			for i := range problems {
				problems[i] = fmt.Sprintf("event %q: %s", eventName(block), problems[i])
			}
			e.report(problems)
		}
	}
}

// eventName is the block's event field ("message" when it has none, as in SSE).
func eventName(block []byte) string {
	for _, line := range strings.Split(string(block), "\n") {
		if v, ok := strings.CutPrefix(line, "event:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "message"
}
