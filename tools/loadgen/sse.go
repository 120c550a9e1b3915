package loadgen

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// event is one server-sent event.
type event struct {
	Type string // "message" unless the stream named another
	ID   string
	Data string // the data lines joined with "\n"
}

// maxEventBytes bounds one line of the stream, so a broken server cannot make
// the reader buffer without end.
const maxEventBytes = 1 << 20

// sseReader reads server-sent events (the WHATWG HTML "event stream" format):
// lines "field: value" make up an event, a blank line dispatches it, lines
// starting with ":" are comments (keep-alives). Lines end with "\n" or "\r\n".
type sseReader struct {
	sc     *bufio.Scanner
	lastID string
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventBytes)
	return &sseReader{sc: sc}
}

// next returns the next event with data. It returns io.EOF when the stream ends;
// an event not yet ended by a blank line is then discarded, as the format says.
func (s *sseReader) next() (event, error) {
	var data strings.Builder
	typ, hasData := "", false
	for s.sc.Scan() {
		line := strings.TrimSuffix(s.sc.Text(), "\r")
		if line == "" {
			if !hasData {
				typ = "" // an event with no data is not dispatched
				continue
			}
			if typ == "" {
				typ = "message"
			}
			return event{Type: typ, ID: s.lastID, Data: strings.TrimSuffix(data.String(), "\n")}, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "event":
			typ = value
		case "id":
			if !strings.ContainsRune(value, 0) {
				s.lastID = value
			}
		}
		// "retry" and unknown fields are ignored: reconnects have their own backoff.
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return event{}, errors.New("event stream: a line is longer than 1 MiB")
		}
		return event{}, err
	}
	return event{}, io.EOF
}
