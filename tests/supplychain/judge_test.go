package supplychain

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJudge checks the verdict on real govulncheck outputs, cut down to one trace per
// finding (testdata):
//   - go1.26.8.json: this module as it is, scanned with go1.26.8: thirteen reachable
//     standard-library vulnerabilities, which fail only when the standard library is
//     gated (under the release toolchain) and are logged otherwise.
//   - x-net-v0.59.0-go1.27.3.json: this module with golang.org/x/net replaced by the
//     vulnerable v0.59.0, scanned with go1.27.3: five x/net vulnerabilities reachable
//     through HTTP/2, which fail whatever is gated.
//   - x-net-v0.59.0-go1.26.8.json: the same module scanned with go1.26.8, where four of
//     those IDs are reachable both in x/net and in the standard library: the x/net ones
//     must fail even when the standard library's are only logged.
func TestJudge(t *testing.T) {
	stdlib := func(ids ...string) []string { return with(ids, "stdlib@v1.26.8") }
	xnet := func(ids ...string) []string { return with(ids, "golang.org/x/net@v0.59.0") }
	stdlibReached := stdlib("GO-2026-6599", "GO-2026-6600", "GO-2026-6603", "GO-2026-6605", "GO-2026-6607",
		"GO-2026-6608", "GO-2026-6609", "GO-2026-6610", "GO-2026-6611", "GO-2026-6612",
		"GO-2026-6613", "GO-2026-6617", "GO-2026-6809")
	type result struct{ Fail, Toolchain, Unreached []string }
	for _, tc := range []struct {
		file       string
		gateStdlib bool
		want       result
	}{
		{"go1.26.8.json", true, result{
			Fail:      stdlibReached,
			Unreached: stdlib("GO-2026-6604"),
		}},
		{"go1.26.8.json", false, result{
			Toolchain: stdlibReached,
			Unreached: stdlib("GO-2026-6604"),
		}},
		{"x-net-v0.59.0-go1.27.3.json", true, result{
			Fail:      xnet("GO-2026-6603", "GO-2026-6610", "GO-2026-6611", "GO-2026-6612", "GO-2026-6617"),
			Unreached: xnet("GO-2026-6860", "GO-2026-6866"),
		}},
		{"x-net-v0.59.0-go1.27.3.json", false, result{
			Fail:      xnet("GO-2026-6603", "GO-2026-6610", "GO-2026-6611", "GO-2026-6612", "GO-2026-6617"),
			Unreached: xnet("GO-2026-6860", "GO-2026-6866"),
		}},
		{"x-net-v0.59.0-go1.26.8.json", false, result{
			Fail:      xnet("GO-2026-6603", "GO-2026-6611", "GO-2026-6612", "GO-2026-6617"),
			Toolchain: stdlibReached,
			Unreached: sorted(append(stdlib("GO-2026-6604"), xnet("GO-2026-6610", "GO-2026-6860", "GO-2026-6866")...)),
		}},
		{"x-net-v0.59.0-go1.26.8.json", true, result{
			Fail:      sorted(append(stdlibReached, xnet("GO-2026-6603", "GO-2026-6611", "GO-2026-6612", "GO-2026-6617")...)),
			Unreached: sorted(append(stdlib("GO-2026-6604"), xnet("GO-2026-6610", "GO-2026-6860", "GO-2026-6866")...)),
		}},
	} {
		f, err := os.Open(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := parseReport(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		v := judge(rep, tc.gateStdlib)
		got := result{Fail: names(v.Fail), Toolchain: names(v.Toolchain), Unreached: v.Unreached}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("judge(%s, gateStdlib=%v) (-want +got):\n%s", tc.file, tc.gateStdlib, diff)
		}
		for _, x := range append(v.Fail, v.Toolchain...) {
			if x.Summary == "" || x.Fixed == "" || x.Example == "" {
				t.Errorf("%s: %s lacks a summary, fixed version or example trace: %+v", tc.file, x.ID, x)
			}
		}
	}
}

// with names each ID in module ("ID module@version"), as verdict.Unreached does.
func with(ids []string, module string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id + " " + module
	}
	return out
}

func names(vs []vuln) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID+" "+v.Module+"@"+v.Version)
	}
	return out
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
