package genfiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSync checks both modes on a directory holding one file as generated, one
// stale and one missing: check writes nothing and names the two that differ;
// write fixes exactly those, after which check finds nothing.
func TestSync(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("same.txt", "a\nb\n")
	write("stale.txt", "a\nold\n")
	files := map[string][]byte{"same.txt": []byte("a\nb\n"), "stale.txt": []byte("a\nnew\n"), "missing.txt": []byte("x\n")}

	errStale := errors.New("stale")
	var out strings.Builder
	if err := Sync(root, files, true, &out, errStale); err != errStale {
		t.Fatalf("check: %v, want the stale error", err)
	}
	for _, want := range []string{"stale.txt is stale:\n\t- old\n\t+ new\n", "missing.txt is stale:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "same.txt") {
		t.Errorf("check names an unchanged file:\n%s", out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(root, "stale.txt")); string(b) != "a\nold\n" {
		t.Errorf("check wrote stale.txt: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "missing.txt")); err == nil {
		t.Error("check created missing.txt")
	}

	out.Reset()
	if err := Sync(root, files, false, &out, errStale); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got, want := out.String(), "wrote missing.txt\nwrote stale.txt\n"; got != want {
		t.Errorf("write says %q, want %q (changed files only, in order)", got, want)
	}
	for name, want := range files {
		if b, _ := os.ReadFile(filepath.Join(root, name)); string(b) != string(want) {
			t.Errorf("%s holds %q, want %q", name, b, want)
		}
	}
	if err := Sync(root, files, true, &out, errStale); err != nil {
		t.Errorf("check after write: %v", err)
	}
}
