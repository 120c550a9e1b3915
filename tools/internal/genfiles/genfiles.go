// Package genfiles puts on disk the files a generator under tools/ draws from the
// code, or, in check mode, says which of them drifted from it: the write-or-check
// step that tools/archdoc and tools/deploygen share, so a test can run a
// generator's -check and fail on drift.
package genfiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Sync makes each of files (a path relative to root, with its generated content)
// hold its content, in path order, writing only those that differ and saying
// "wrote <path>" on w for each. With check it writes nothing: it lists on w each
// file that differs, with the lines that differ (see LineDiff), and returns stale
// (the generator's own error, saying how to regenerate) if any does. A file that
// does not exist differs from any content.
func Sync(root string, files map[string][]byte, check bool, w io.Writer, stale error) error {
	var drifted bool
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(root, name)
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		if check {
			drifted = true
			fmt.Fprintf(w, "%s is stale:\n%s", name, LineDiff(old, files[name]))
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
		fmt.Fprintln(w, "wrote", name)
	}
	if drifted {
		return stale
	}
	return nil
}

// LineDiff lists the lines only in old ("-") and only in new ("+"), in the order
// they appear: enough to see what drifted, without a diff algorithm.
func LineDiff(old, new []byte) string {
	count := func(b []byte) map[string]int {
		c := map[string]int{}
		for _, l := range bytes.Split(b, []byte("\n")) {
			c[string(l)]++
		}
		return c
	}
	inOld, inNew := count(old), count(new)
	var b strings.Builder
	for _, l := range strings.Split(string(old), "\n") {
		if inNew[l] < inOld[l] {
			fmt.Fprintf(&b, "\t- %s\n", l)
			inOld[l]--
		}
	}
	inOld = count(old)
	for _, l := range strings.Split(string(new), "\n") {
		if inOld[l] < inNew[l] {
			fmt.Fprintf(&b, "\t+ %s\n", l)
			inNew[l]--
		}
	}
	return b.String()
}
