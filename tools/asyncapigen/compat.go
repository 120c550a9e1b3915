package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// shape is a payload flattened to its fields: each field's path ("lines[].sku",
// "total.amount", "tags{}" for a map's values) and its type ("string",
// "string(date-time)", "integer|null", …), with " (optional)" when the field may be
// left out. It is what a receiver relies on, and what versions compare.
type shape map[string]string

const optional = " (optional)"

// shapeOf flattens sc.
func (s *schemas) shapeOf(sc *huma.Schema) shape {
	out := shape{}
	s.flatten(sc, "", true, out, map[string]bool{})
	return out
}

func (s *schemas) flatten(sc *huma.Schema, at string, required bool, out shape, open map[string]bool) {
	if sc.Ref != "" {
		if open[sc.Ref] {
			return // a recursive type: its fields are listed once, where it starts
		}
		open[sc.Ref] = true
		defer delete(open, sc.Ref)
	}
	sc = s.resolve(sc)
	if at != "" {
		t := sc.Type
		if sc.Format != "" {
			t += "(" + sc.Format + ")"
		}
		if sc.Nullable {
			t += "|null"
		}
		if !required {
			t += optional
		}
		out[at] = t
	}
	prefix := at
	if prefix != "" {
		prefix += "."
	}
	for name, p := range sc.Properties {
		s.flatten(p, prefix+name, slices.Contains(sc.Required, name), out, open)
	}
	if sc.Items != nil {
		s.flatten(sc.Items, at+"[]", true, out, open)
	}
	if ap, ok := sc.AdditionalProperties.(*huma.Schema); ok {
		s.flatten(ap, at+"{}", true, out, open)
	}
}

// parent returns the path of the field that holds the field at p ("" for a
// top-level field).
func parent(p string) string {
	if strings.HasSuffix(p, "[]") || strings.HasSuffix(p, "{}") {
		return p[:len(p)-2]
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// breaks lists what in next a receiver of prev would misread, sorted: a field
// removed (or renamed: removed, then added), retyped, made optional or made
// required, or a new field that is always sent where its holder was already sent.
// A new optional field, or any field inside a new optional one, breaks nothing:
// receivers of prev ignore it, and receivers of next must do without it anyway.
func breaks(prev, next shape) []string {
	var out []string
	for p, was := range prev {
		now, ok := next[p]
		wasOpt, nowOpt := strings.HasSuffix(was, optional), strings.HasSuffix(now, optional)
		switch {
		case !ok:
			out = append(out, p+": removed")
		case strings.TrimSuffix(was, optional) != strings.TrimSuffix(now, optional):
			out = append(out, fmt.Sprintf("%s: retyped from %s to %s", p, strings.TrimSuffix(was, optional), strings.TrimSuffix(now, optional)))
		case !wasOpt && nowOpt:
			out = append(out, p+": no longer always sent")
		case wasOpt && !nowOpt:
			out = append(out, p+": now required")
		}
	}
	for p, now := range next {
		if _, ok := prev[p]; ok || strings.HasSuffix(now, optional) {
			continue
		}
		if _, held := prev[parent(p)]; held || parent(p) == "" {
			out = append(out, p+": added, always sent (receivers of the previous version do not have it)")
		}
	}
	slices.Sort(out)
	return out
}

// released is one released version of a message: its payload's shape and, for a
// request, its reply's.
type released struct {
	Payload shape `json:"payload"`
	Reply   shape `json:"reply,omitempty"`
}

// lockFile is api/message-versions.json: every version of every message that was
// ever generated, by name and version. A version is rewritten only by a change
// that breaks nothing; the previous versions of a message stay, to say what
// receivers of them still expect.
type lockFile map[string]map[string]released

func readLock(path string) (lockFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return lockFile{}, nil
	}
	if err != nil {
		return nil, err
	}
	l := lockFile{}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// update returns l with every message's current shape recorded under its version.
// It fails, listing every problem, when a message changed in a way that breaks its
// receivers without a new version, or is declared at a version below one released.
func (l lockFile) update(msgs []msg, s *schemas) (lockFile, error) {
	out := lockFile{}
	for name, vs := range l {
		out[name] = maps.Clone(vs)
	}
	var problems []string
	for _, m := range msgs {
		r := s.of[m.Name()]
		now := released{Payload: s.shapeOf(r.payload)}
		if r.reply != nil {
			now.Reply = s.shapeOf(r.reply)
		}
		v := strconv.Itoa(m.Version)
		if top := latest(l[m.Name()]); top > m.Version {
			problems = append(problems, fmt.Sprintf("%s is declared at version %d, but version %d was released", m.Name(), m.Version, top))
			continue
		}
		if prev, ok := l[m.Name()][v]; ok {
			var b []string
			for _, x := range breaks(prev.Payload, now.Payload) {
				b = append(b, "payload "+x)
			}
			for _, x := range breaks(prev.Reply, now.Reply) {
				b = append(b, "reply "+x)
			}
			if len(b) > 0 {
				problems = append(problems, fmt.Sprintf("%s (%s) changed incompatibly at version %s:\n\t%s\n\tdeclare it .AtVersion(%d) and handle both versions while both are on the wire (docs/adr/0013-message-versions.md)",
					m.Name(), m.File, v, strings.Join(b, "\n\t"), m.Version+1))
				continue
			}
		}
		if out[m.Name()] == nil {
			out[m.Name()] = map[string]released{}
		}
		out[m.Name()][v] = now
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return out, nil
}

// latest returns the highest version in vs (0 for none).
func latest(vs map[string]released) int {
	top := 0
	for v := range vs {
		n, _ := strconv.Atoi(v)
		top = max(top, n)
	}
	return top
}

// marshal renders l as indented JSON (encoding/json sorts map keys, so the file
// is stable).
func (l lockFile) marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	err := enc.Encode(l)
	return b.Bytes(), err
}
