package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/tools/internal/contracts"
)

// fixture copies testdata/repo (a registry, two modules, a test-helper package and
// a document with markers) to a fresh directory and returns it.
func fixture(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS("testdata/repo")); err != nil {
		t.Fatal(err)
	}
	return dst
}

// generated returns a fixture on which the tool has written.
func generated(t *testing.T) string {
	t.Helper()
	root := fixture(t)
	if err := run(root, false, io.Discard); err != nil {
		t.Fatalf("write: %v", err)
	}
	return root
}

func TestModel(t *testing.T) {
	m, err := contracts.Load(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Kind, Summary, Handlers, Users string }
	got := map[string]row{}
	for _, d := range m.Decls {
		var hs []string
		for _, h := range d.Handlers {
			hs = append(hs, h.Module+" "+h.Func+" "+h.File)
		}
		kind := d.Kind
		if d.Parked {
			kind += " parked"
		}
		got[d.Name] = row{kind, d.Summary, strings.Join(hs, "; "), strings.Join(d.Users, ",")}
	}
	want := map[string]row{
		// A method value on the enclosing method's receiver; used by another module.
		"shop.Buy": {"request", "Buy asks to buy something.", "shop sales.(*Service).Buy modules/shop/internal/sales/sales.go", "mail"},
		// A function; the declaration's own doc, without the tool's stale line.
		"shop.Wait": {"request parked", "WaitRequest is a long poll.", "shop sales.wait modules/shop/internal/sales/sales.go", ""},
		// Through a generic wrapper that takes the handler; a value receiver; declared
		// with .Renamed and .AtVersion.
		"shop.Ship": {"command", "ShipCommand is sent to ship.", "shop sales.Service.ship modules/shop/internal/sales/sales.go", ""},
		// A function literal, named after the function that holds it.
		"shop.Sold":    {"event", "Sold says an order was sold.", "mail post.(*Office).Subscriptions (func literal) modules/mail/internal/post/post.go", "mail"},
		"shop.Ignored": {"event", "Sold says an order was sold.", "", ""},
		// shoptest's fake handler is left out: a test helper.
		"mail.Send": {"request", "The mail module's requests.", "mail post.(*Office).Send modules/mail/internal/post/post.go", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("declarations (-want +got):\n%s", diff)
	}
	var order []string
	for _, mod := range m.Modules {
		order = append(order, mod.Name+":"+strings.Join(mod.DependsOn, ","))
	}
	if diff := cmp.Diff([]string{"shop:", "mail:shop"}, order); diff != "" {
		t.Errorf("modules in registry order, with their dependencies (-want +got):\n%s", diff)
	}
}

func TestWriteThenCheck(t *testing.T) {
	root := generated(t)
	if err := run(root, true, io.Discard); err != nil {
		t.Fatalf("check right after write: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(root, "modules/shop/shop.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\t// Handled by sales.(*Service).Buy.\n\tBuyRequest",
		"\t// WaitRequest is a long poll.\n\t// Handled by sales.wait.\n\tWaitRequest",
		"// ShipCommand is sent to ship.\n// Handled by sales.Service.ship.\nvar ShipCommand",
		"\t// Handled by mail: post.(*Office).Subscriptions (func literal).\n\tSoldEvent",
		"\t// Handled by no module.\n\tIgnoredEvent",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("shop.go lacks %q:\n%s", want, src)
		}
	}
	if strings.Contains(string(src), "stale line") {
		t.Errorf("shop.go kept the stale Handled-by line")
	}
}

// TestCheckFailsOnDrift shows that -check notices each kind of drift, and
// ignores the hand-written prose outside the markers.
func TestCheckFailsOnDrift(t *testing.T) {
	tests := []struct {
		name, file, old, new string
		stale                bool
	}{
		{"a Handled-by line names another function", "modules/shop/shop.go",
			"Handled by sales.(*Service).Buy.", "Handled by sales.(*Service).Sell.", true},
		{"a Handled-by line is removed", "modules/mail/mail.go", "// Handled by post.(*Office).Send.\n", "", true},
		{"a row of the message table is edited", "docs/architecture.md", "| request | Buy asks", "| command | Buy asks", true},
		{"a handler is renamed in the code", "modules/shop/internal/sales/sales.go", "s.Buy)", "s.Purchase)", true},
		{"the prose changes", "docs/architecture.md", "More prose.", "Other prose.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := generated(t)
			path := filepath.Join(root, tt.file)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(src), tt.old) {
				t.Fatalf("%s lacks %q", tt.file, tt.old)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(src), tt.old, tt.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			err = run(root, true, &out)
			if stale := errors.Is(err, errStale); stale != tt.stale || (err != nil && !stale) {
				t.Fatalf("check = %v, want stale %v; output:\n%s", err, tt.stale, out.String())
			}
			if tt.stale && !strings.Contains(out.String(), " is stale:") {
				t.Errorf("check says nothing of what is stale:\n%s", out.String())
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ name, file, old, new, want string }{
		{"a request nobody handles", "modules/shop/internal/sales/sales.go",
			"bus.Handle(shop.BuyRequest, s.Buy),", "", "no module handles request shop.Buy"},
		{"a handler the tool cannot name", "modules/shop/internal/sales/sales.go",
			"bus.Handle(shop.BuyRequest, s.Buy)", "bus.Handle(shop.BuyRequest, handlers[0])", "cannot name the handler"},
		{"markers missing", "docs/architecture.md", "<!-- end generated: modules -->", "", `section "modules"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fixture(t)
			path := filepath.Join(root, tt.file)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(src), tt.old, tt.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := run(root, false, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
