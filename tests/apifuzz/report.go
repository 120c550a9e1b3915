package apifuzz

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// examplesPerKey bounds the failures kept for one kind, operation, mutation and
// status; the rest are only counted.
const examplesPerKey = 3

// Failure is an answer (or a missing one) that broke a rule.
type Failure struct {
	Kind    string // 5xx, transport, not-problem, huge-answer, unsendable
	Status  int    // 0 when there was no answer
	Request string // who sent what, enough to send it again
	Detail  string // the start of the answer, or the error
}

// Report is what a run saw. Its maps are keyed by status code.
type Report struct {
	mu         sync.Mutex
	Requests   int
	Elapsed    time.Duration
	Status     map[int]int
	ByOp       map[string]map[int]int
	ByMutation map[string]map[int]int
	ByRole     map[string]map[int]int
	Failures   map[string]int // by kind
	Examples   []Failure      // a few of each kind, operation, mutation and status
	examples   map[string]int
	Largest    int64  // the largest answer, in bytes
	LargestReq string // the request that got it
}

func newReport() *Report {
	return &Report{Status: map[int]int{}, ByOp: map[string]map[int]int{}, ByMutation: map[string]map[int]int{},
		ByRole: map[string]map[int]int{}, Failures: map[string]int{}, examples: map[string]int{}}
}

func bump(m map[string]map[int]int, k string, status int) {
	if m[k] == nil {
		m[k] = map[int]int{}
	}
	m[k][status]++
}

func (r *Report) record(req *request, status int, size int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Requests++
	r.Status[status]++
	bump(r.ByOp, req.op.ID, status)
	bump(r.ByMutation, req.mutation, status)
	bump(r.ByRole, req.role, status)
	if size > r.Largest {
		r.Largest, r.LargestReq = size, req.String()
	}
}

func (r *Report) fail(req *request, f Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.Status == 0 { // no answer to record
		r.Requests++
		bump(r.ByOp, req.op.ID, 0)
		bump(r.ByMutation, req.mutation, 0)
	}
	r.Failures[f.Kind]++
	key := fmt.Sprint(f.Kind, req.op.ID, req.mutation, f.Status)
	if r.examples[key] < examplesPerKey {
		r.examples[key]++
		f.Request = req.String()
		r.Examples = append(r.Examples, f)
	}
}

// Count returns how many answers had a status in [lo, hi].
func (r *Report) Count(lo, hi int) int {
	n := 0
	for s, c := range r.Status {
		if s >= lo && s <= hi {
			n += c
		}
	}
	return n
}

// Unanswered returns the operations of spec (of only, if not empty) that got no
// request, and those that never succeeded (no 2xx or 304 answer).
func (r *Report) Unanswered(spec *Spec, only []string) (unsent, neverOK []string) {
	for _, op := range spec.Operations {
		if len(only) > 0 && !slices.Contains(only, op.ID) {
			continue
		}
		st, ok := r.ByOp[op.ID]
		if !ok {
			unsent = append(unsent, op.ID)
			continue
		}
		if !slices.ContainsFunc(slices.Collect(maps.Keys(st)), func(s int) bool { return s >= 200 && s < 300 || s == http.StatusNotModified }) {
			neverOK = append(neverOK, op.ID)
		}
	}
	return unsent, neverOK
}

// String summarizes the run: totals by status, then by role, operation and
// mutation, then the failures with their requests.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests in %v (%.0f/s); by status: %s\n", r.Requests, r.Elapsed.Round(time.Millisecond),
		float64(r.Requests)/r.Elapsed.Seconds(), statuses(r.Status))
	fmt.Fprintf(&b, "largest answer: %d bytes, to %s\n", r.Largest, clip(r.LargestReq, 200))
	for _, section := range []struct {
		name string
		m    map[string]map[int]int
	}{{"role", r.ByRole}, {"operation", r.ByOp}, {"mutation", r.ByMutation}} {
		fmt.Fprintf(&b, "by %s:\n", section.name)
		for _, k := range sortedKeys(section.m) {
			fmt.Fprintf(&b, "  %-28s %s\n", k, statuses(section.m[k]))
		}
	}
	fmt.Fprintf(&b, "failures: %v\n", r.Failures)
	for _, f := range r.Examples {
		fmt.Fprintf(&b, "  %s %d: %s\n      -> %s\n", f.Kind, f.Status, f.Request, f.Detail)
	}
	return b.String()
}

// statuses formats counts by status, ascending ("200×12 404×3"); status 0 is "no answer".
func statuses(m map[int]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	total := 0
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d×%d", k, m[k])
		total += m[k]
	}
	return fmt.Sprintf("%5d: %s", total, strings.Join(parts, " "))
}
