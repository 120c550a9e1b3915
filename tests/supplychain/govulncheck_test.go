package supplychain

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The pinned vulnerability database: a version of the golang.org/x/vulndb module,
// whose data/osv folder holds the OSV entries of the Go vulnerability database, and
// that version's checksum (as go.sum writes it), so the database the test reads cannot
// change under it. docs/security.md says how to move the pin.
const (
	vulndbModule  = "golang.org/x/vulndb"
	vulndbVersion = "v0.0.0-20261105234957-e22db6528018"
	vulndbSum     = "h1:mfngRv0Yoh0VApsXKEN82CjD99kl7mtparN3bs3JnqI="
)

// TestGovulncheck runs govulncheck (the version go.mod pins as a tool) over the whole
// module against the pinned database, and fails on every vulnerability the code can
// reach (a finding with a call trace):
//
//   - "release toolchain": scanned with the patched Go the Dockerfile builds the
//     release with (ARG GO_TOOLCHAIN, fetched through GOPROXY like any module), so a
//     reachable vulnerability in a module or in that toolchain's standard library fails.
//   - "host toolchain": scanned with the Go that runs the tests, when it is another
//     version. A reachable vulnerability in a module fails; those in this Go's standard
//     library are logged with their IDs, not failed: they are fixed in the release
//     toolchain (or the subtest above fails), and the host's Go is the machine's to
//     update. -short leaves this subtest out.
//
// Vulnerabilities in packages the code imports or modules it requires, but whose
// vulnerable functions it never calls, are logged.
func TestGovulncheck(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to run govulncheck: %v", err)
	}
	root := moduleRoot(t)
	db := vulnDB(t, root)
	release := dockerfileToolchain(t, root)

	t.Run("release toolchain", func(t *testing.T) {
		rep := govulncheck(t, root, db, release)
		if rep.GoVersion != release {
			t.Fatalf("govulncheck scanned with %s, want the release toolchain %s", rep.GoVersion, release)
		}
		check(t, judge(rep, true))
	})
	t.Run("host toolchain", func(t *testing.T) {
		host := goEnv(t, root, "GOVERSION")
		if host == release {
			t.Skipf("the go command here is the release toolchain %s, scanned above", release)
		}
		if testing.Short() {
			t.Skipf("-short: the standard library of %s is not scanned (the release toolchain %s is)", host, release)
		}
		rep := govulncheck(t, root, db, "")
		check(t, judge(rep, false))
	})
}

// check fails t for each vulnerability the verdict fails, and logs the rest.
func check(t *testing.T, v verdict) {
	t.Helper()
	for _, x := range v.Fail {
		t.Errorf("reachable vulnerability %s", x)
	}
	if len(v.Fail) > 0 {
		t.Log("fix: move the module to its fixed version (go get MODULE@VERSION && go mod tidy), " +
			"or the Dockerfile's GO_TOOLCHAIN to a patched Go; see docs/security.md, \"Supply chain\"")
	}
	if len(v.Toolchain) > 0 {
		ids := make([]string, len(v.Toolchain))
		for i, x := range v.Toolchain {
			ids[i] = x.ID
		}
		t.Logf("%d reachable vulnerabilities in the standard library of this Go, not failed (the release is built with a patched toolchain): %s",
			len(ids), strings.Join(ids, " "))
		for _, x := range v.Toolchain {
			t.Logf("  %s", x)
		}
	}
	if len(v.Unreached) > 0 {
		t.Logf("imported or required but not called (not failed): %s", strings.Join(v.Unreached, " "))
	}
}

// verdict sorts the findings of one scan. One OSV entry can name several modules
// (a net/http fix is often also an x/net fix), so each is judged per module.
type verdict struct {
	Fail      []vuln   // reachable; the test fails
	Toolchain []vuln   // reachable in the standard library of a Go that is not gated; logged
	Unreached []string // "ID module@version": in imported packages or required modules, never called
}

// vuln is one reachable vulnerability of one module, with one of the (shortest) call
// traces that reach it.
type vuln struct {
	ID, Module, Version, Fixed, Summary, Example string
}

func (v vuln) String() string {
	return fmt.Sprintf("%s in %s@%s (fixed in %s): %s\n    e.g. %s", v.ID, v.Module, v.Version, v.Fixed, v.Summary, v.Example)
}

// judge sorts a report: a finding whose trace starts at a function is reachable, and
// fails unless it is in the standard library (or the go command) and gateStdlib is
// false.
func judge(rep report, gateStdlib bool) verdict {
	type key struct{ id, module string }
	reached := map[key]vuln{}
	shortest := map[key]int{}
	unreached := map[key]string{}
	for _, f := range rep.Findings {
		if len(f.Trace) == 0 {
			continue
		}
		top := f.Trace[0]
		k := key{f.OSV, top.Module}
		if top.Function == "" {
			unreached[k] = fmt.Sprintf("%s %s@%s", f.OSV, top.Module, top.Version)
			continue
		}
		if n, ok := shortest[k]; ok && n <= len(f.Trace) {
			continue
		}
		shortest[k] = len(f.Trace)
		reached[k] = vuln{
			ID:      f.OSV,
			Module:  top.Module,
			Version: top.Version,
			Fixed:   f.FixedVersion,
			Summary: rep.Summaries[f.OSV],
			Example: example(f.Trace),
		}
	}
	var v verdict
	for k, x := range reached {
		delete(unreached, k)
		if !gateStdlib && (x.Module == "stdlib" || x.Module == "toolchain") {
			v.Toolchain = append(v.Toolchain, x)
		} else {
			v.Fail = append(v.Fail, x)
		}
	}
	order := func(a, b vuln) int { return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Module, b.Module)) }
	slices.SortFunc(v.Fail, order)
	slices.SortFunc(v.Toolchain, order)
	for _, s := range unreached {
		v.Unreached = append(v.Unreached, s)
	}
	slices.Sort(v.Unreached)
	return v
}

// example renders a trace from the project's code (its last frame) to the
// vulnerable function (its first).
func example(trace []frame) string {
	entry, vulnerable := trace[len(trace)-1], trace[0]
	at := ""
	if p := entry.Position; p != nil {
		at = fmt.Sprintf("%s:%d: ", p.Filename, p.Line)
	}
	via := ""
	switch n := len(trace) - 2; {
	case n == 1:
		via = " (through 1 call)"
	case n > 1:
		via = fmt.Sprintf(" (through %d calls)", n)
	}
	return fmt.Sprintf("%s%s calls %s%s", at, entry.name(), vulnerable.name(), via)
}

// report is what govulncheck -format json says, in the parts the test reads.
type report struct {
	GoVersion string            // the Go whose standard library was scanned
	ScanLevel string            // "symbol" for call-graph reachability
	Summaries map[string]string // OSV id → summary
	Findings  []finding
}

type finding struct {
	OSV          string  `json:"osv"`
	FixedVersion string  `json:"fixed_version"`
	Trace        []frame `json:"trace"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

func (f frame) name() string {
	pkg := f.Package[strings.LastIndex(f.Package, "/")+1:]
	if f.Receiver != "" {
		return fmt.Sprintf("%s.%s.%s", pkg, strings.TrimPrefix(f.Receiver, "*"), f.Function)
	}
	return pkg + "." + f.Function
}

// parseReport reads govulncheck's JSON stream: one object per message.
func parseReport(r io.Reader) (report, error) {
	rep := report{Summaries: map[string]string{}}
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Config *struct {
				GoVersion string `json:"go_version"`
				ScanLevel string `json:"scan_level"`
			} `json:"config"`
			OSV *struct {
				ID      string `json:"id"`
				Summary string `json:"summary"`
			} `json:"osv"`
			Finding *finding `json:"finding"`
		}
		err := dec.Decode(&msg)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return report{}, err
		}
		switch {
		case msg.Config != nil:
			rep.GoVersion, rep.ScanLevel = msg.Config.GoVersion, msg.Config.ScanLevel
		case msg.OSV != nil:
			rep.Summaries[msg.OSV.ID] = msg.OSV.Summary
		case msg.Finding != nil:
			rep.Findings = append(rep.Findings, *msg.Finding)
		}
	}
	if rep.GoVersion == "" {
		return report{}, errors.New("no config message: is this govulncheck's JSON output?")
	}
	return rep, nil
}

// govulncheck scans the module at root with the pinned govulncheck, under toolchain
// (a GOTOOLCHAIN value; "" leaves the environment's).
func govulncheck(t *testing.T, root, db, toolchain string) report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dbURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(db)}).String()
	cmd := exec.CommandContext(ctx, "go", "tool", "govulncheck", "-db", dbURL, "-format", "json", "./...")
	cmd.Dir = root
	cmd.Env = os.Environ()
	if toolchain != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+toolchain)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	rep, err := parseReport(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("read govulncheck's output: %v", err)
	}
	if rep.ScanLevel != "symbol" {
		t.Fatalf("govulncheck scanned at level %q, want symbol (call-graph reachability)", rep.ScanLevel)
	}
	t.Logf("govulncheck with %s, %s@%s: %d findings in %s", rep.GoVersion, vulndbModule, vulndbVersion,
		len(rep.Findings), time.Since(start).Round(time.Second))
	return rep
}

// vulnDB downloads (or finds in the module cache) the pinned database and returns
// the folder of its OSV files.
func vulnDB(t *testing.T, root string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", vulndbModule+"@"+vulndbVersion)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var mod struct{ Dir, Sum, Error string }
	if jerr := json.Unmarshal(out, &mod); jerr != nil || mod.Error != "" || err != nil {
		t.Fatalf("download the vulnerability database %s@%s: %v %s\n%s", vulndbModule, vulndbVersion, err, mod.Error, stderr.Bytes())
	}
	if mod.Sum != vulndbSum {
		t.Fatalf("%s@%s has checksum %s, want the pinned %s", vulndbModule, vulndbVersion, mod.Sum, vulndbSum)
	}
	dir := filepath.Join(mod.Dir, "data", "osv")
	if entries, err := filepath.Glob(filepath.Join(dir, "GO-*.json")); err != nil || len(entries) < 1000 {
		t.Fatalf("%s holds %d OSV entries (%v), want the whole database", dir, len(entries), err)
	}
	return dir
}

// dockerfileToolchain returns the Go toolchain the Dockerfile builds the release with.
func dockerfileToolchain(t *testing.T, root string) string {
	t.Helper()
	v, err := DockerfileToolchain(root)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	gomod := goEnv(t, ".", "GOMOD")
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside the module")
	}
	return filepath.Dir(gomod)
}

func goEnv(t *testing.T, dir, name string) string {
	t.Helper()
	cmd := exec.Command("go", "env", name)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
