package tests

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// previousVersion is the message version change the mixed-version test runs
// across: the commit that declared the message at its current version is found
// in the git history by its declaration, and the build before it speaks the
// previous version. Move it to the next version bump that matters.
var previousVersion = struct {
	contract, declared, subject, field string
}{
	contract: "modules/payments/payments.go",
	declared: `PaymentDeclinedEvent = .*AtVersion\(2\)`,
	subject:  "agora.msg.payments.PaymentDeclined",
	field:    "retryable", // what version 2 added: always sent, so its absence marks version 1
}

// TestMixedMessageVersions runs one module built from the commit before
// payments.PaymentDeclined went to version 2 (Retryable) next to this tree's
// build of every other module, each in its own process over NATS, and runs the
// shop tour: checkouts confirm, declined cards reject their orders, cancellations
// refund. Both halves of the period in which both versions are handled
// (docs/adr/0013-message-versions.md): the previous build's payments sends
// version 1 declines to this build's orders, and this build's payments sends
// version 2 declines to the previous build's orders. The stream shows which
// version was on the wire.
func TestMixedMessageVersions(t *testing.T) {
	root := procs.RepoRoot(t)
	agoraBinary(t) // skips in -short, like every test that runs processes
	rev := commitBefore(t, root, previousVersion.contract, previousVersion.declared)
	old := buildAt(t, root, rev)
	for _, tc := range []struct {
		old       string // the module that runs the previous build
		wantField bool   // whether the declines on the stream are version 2
	}{
		{old: "payments", wantField: false},
		{old: "orders", wantField: true},
	} {
		t.Run(tc.old+" at the previous version", func(t *testing.T) {
			t.Parallel()
			t.Logf("%s runs the build of %s, before %s's version bump", tc.old, rev[:12], previousVersion.contract)
			d := startSplitWith(t, splitLayout, false, map[string]string{tc.old: old})
			shopTour(t, d)
			declines := streamPayloads(t, d.broker.url(), previousVersion.subject)
			if len(declines) == 0 {
				t.Fatalf("nothing on %s: the tour declined no card?", previousVersion.subject)
			}
			for _, p := range declines {
				if _, ok := p[previousVersion.field]; ok != tc.wantField {
					t.Fatalf("a decline with %q = %v, want %v: %v", previousVersion.field, ok, tc.wantField, p)
				}
			}
			t.Logf("%d declines on the wire, all with %q = %v", len(declines), previousVersion.field, tc.wantField)
		})
	}
}

// commitBefore returns the parent of the latest commit whose diff of path adds or
// removes a line matching re: the tree just before that change.
func commitBefore(t *testing.T, root, path, re string) string {
	t.Helper()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if git("rev-parse", "--is-shallow-repository") == "true" {
		// A shallow clone (or an archive) has no earlier commit to build: like a
		// missing Docker engine, that skips the test unless it is required.
		msg := "the mixed-version test builds an earlier commit and needs the git history: `git fetch --unshallow` " +
			"(.ci/run tries that; GitHub: actions/checkout with fetch-depth: 0)"
		if os.Getenv("AGORA_TEST_REQUIRE_HISTORY") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	change := git("log", "-n1", "--format=%H", "-G", re, "--", path)
	if change == "" {
		t.Fatalf("no commit changes a line matching %q in %s", re, path)
	}
	return git("rev-parse", change+"^")
}

// buildAt builds ./cmd/agora from the tree at rev (a commit of this repository)
// and returns the binary's path.
func buildAt(t *testing.T, root, rev string) string {
	t.Helper()
	src, tarball := t.TempDir(), filepath.Join(t.TempDir(), "tree.tar")
	for _, cmd := range []*exec.Cmd{
		exec.Command("git", "archive", "--format=tar", "-o", tarball, rev),
		exec.Command("tar", "-x", "-f", tarball, "-C", src),
	} {
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
	}
	bin := filepath.Join(t.TempDir(), "agora-"+rev[:12])
	build := exec.Command("go", "build", "-o", bin, "./cmd/agora")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/agora at %s: %v\n%s", rev, err, out)
	}
	return bin
}

// streamPayloads returns the JSON payloads of every message on subject in the
// AGORA stream, decoded as objects.
func streamPayloads(t *testing.T, url, subject string) []map[string]any {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "AGORA", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for {
		batch, err := c.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var p map[string]any
			if err := json.Unmarshal(m.Data(), &p); err != nil {
				t.Fatalf("%s: %v", subject, err)
			}
			out = append(out, p)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
	}
}
