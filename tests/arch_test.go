package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/google/go-cmp/cmp"
)

// archPackage is one package of the project, by its path inside the module
// ("modules/catalog/internal/api"; "" for the module root), with every project
// package it imports, test imports included.
type archPackage struct {
	Path    string
	Imports []string
}

// Architecture rules. Each violation is reported as "importer -> imported: why".
//
//	(a) a package under modules/X imports from modules/Y (Y≠X) only the contract modules/Y;
//	(b) the contract modules/X imports nothing of the project but the message vocabulary:
//	    internal/message;
//	(c) the platform (internal/...) imports nothing under modules/, except internal/app,
//	    which may import the registry (package modules) and nothing else of modules/;
//	(d) nothing but the registry imports modules/*/module (a module's wiring);
//	(e) every module that has packages has its contract package modules/X.
func archViolations(pkgs []archPackage) []string {
	var out []string
	contracts := map[string]bool{}
	modules := map[string]bool{}
	for _, p := range pkgs {
		if m, ok := moduleOf(p.Path); ok {
			modules[m] = true
			if isContract(p.Path) {
				contracts[m] = true
			}
		}
	}
	for m := range modules {
		if !contracts[m] {
			out = append(out, fmt.Sprintf("modules/%s: (e) the module has no contract package modules/%s", m, m))
		}
	}
	for _, p := range pkgs {
		from, inModule := moduleOf(p.Path)
		for _, imp := range p.Imports {
			bad := func(rule, why string) {
				out = append(out, fmt.Sprintf("%s -> %s: (%s) %s", display(p.Path), display(imp), rule, why))
			}
			to, toModule := moduleOf(imp)
			if inModule && toModule && to != from && !isContract(imp) {
				bad("a", "a module may import only another module's contract package")
			}
			if isContract(p.Path) && imp != "internal/message" {
				bad("b", "a contract package may import only internal/message from the project")
			}
			if isPlatform(p.Path) && (toModule || imp == registry) && (p.Path != "internal/app" || imp != registry) {
				bad("c", "the platform must not import modules (internal/app: only their registry)")
			}
			if isWiring(imp) && p.Path != registry {
				bad("d", "only the registry may import a module's wiring")
			}
		}
	}
	slices.Sort(out)
	return out
}

// moduleOf returns X for a package under modules/X.
func moduleOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "modules/")
	if !ok || rest == "" {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, true
}

func isContract(path string) bool {
	m, ok := moduleOf(path)
	return ok && path == "modules/"+m
}

func isWiring(path string) bool {
	m, ok := moduleOf(path)
	return ok && (path == "modules/"+m+"/module" || strings.HasPrefix(path, "modules/"+m+"/module/"))
}

// registry is the package that lists the modules.
const registry = "modules"

func isPlatform(path string) bool { return path == "internal" || strings.HasPrefix(path, "internal/") }

func display(path string) string {
	if path == "" {
		return "(module root)"
	}
	return path
}

// modulePath reads the module path from root/go.mod.
func modulePath(t testing.TB, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// projectPackages lists the project's packages with `go list`, keeping only the
// imports that are packages of the project.
func projectPackages(t *testing.T) []archPackage {
	t.Helper()
	root := procs.RepoRoot(t)
	mod := modulePath(t, root)
	cmd := exec.CommandContext(t.Context(), "go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	rel := func(importPath string) (string, bool) {
		if importPath == mod {
			return "", true
		}
		r, ok := strings.CutPrefix(importPath, mod+"/")
		return r, ok
	}
	var pkgs []archPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var lp struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
			Error                              *struct{ Err string }
		}
		if err := dec.Decode(&lp); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if lp.Error != nil {
			// Its imports may be incomplete, so the rules cannot vouch for it.
			t.Errorf("go list could not load %s: %s", lp.ImportPath, lp.Error.Err)
		}
		path, ok := rel(lp.ImportPath)
		if !ok {
			continue
		}
		p := archPackage{Path: path}
		for _, imp := range slices.Concat(lp.Imports, lp.TestImports, lp.XTestImports) {
			if r, ok := rel(imp); ok && r != path && !slices.Contains(p.Imports, r) {
				p.Imports = append(p.Imports, r)
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestArchitecture(t *testing.T) {
	pkgs := projectPackages(t)

	var modules, platform []string
	for _, p := range pkgs {
		if isContract(p.Path) {
			modules = append(modules, p.Path)
		}
		if isPlatform(p.Path) {
			platform = append(platform, p.Path)
		}
	}
	// The rules must have something to judge, or the test passes vacuously.
	if len(modules) == 0 {
		t.Fatalf("no module contract package found among %d packages", len(pkgs))
	}
	if !slices.Contains(modules, "modules/catalog") || !slices.Contains(platform, "internal/app") {
		t.Fatalf("expected modules/catalog and internal/app among the packages; modules %v, platform %v", modules, platform)
	}
	// And the import lists must have been read: the registry lists the modules' wiring.
	for _, p := range pkgs {
		if p.Path == registry && !slices.ContainsFunc(p.Imports, isWiring) {
			t.Fatalf("the registry imports no module wiring package; were imports read? %v", p.Imports)
		}
	}
	t.Logf("checked %d packages: modules %v", len(pkgs), modules)

	for _, v := range archViolations(pkgs) {
		t.Error(v)
	}
}

// TestArchViolations feeds the rule check made-up projects, so that
// TestArchitecture cannot pass because the check finds nothing.
func TestArchViolations(t *testing.T) {
	good := []archPackage{
		{Path: "internal/message"},
		{Path: "internal/bus", Imports: []string{"internal/message"}},
		{Path: "internal/httpapi", Imports: []string{"internal/bus"}},
		{Path: "internal/app", Imports: []string{"internal/bus", "modules"}},
		{Path: "modules", Imports: []string{"internal/modhost", "modules/catalog/module", "modules/orders/module"}},
		{Path: "internal/cli", Imports: []string{"internal/app"}},
		{Path: "cmd/agora", Imports: []string{"internal/cli"}},
		{Path: "modules/catalog", Imports: []string{"internal/message"}},
		{Path: "modules/catalog/module", Imports: []string{"internal/httpapi", "modules/catalog", "modules/catalog/internal/api"}},
		{Path: "modules/catalog/internal/api", Imports: []string{"modules/catalog", "internal/bus", "internal/httpapi"}},
		{Path: "modules/orders", Imports: []string{"internal/message"}},
		{Path: "modules/orders/module", Imports: []string{"modules/orders/internal/saga"}},
		{Path: "modules/orders/internal/saga", Imports: []string{"modules/orders", "modules/catalog", "internal/outbox"}},
		{Path: "tests", Imports: []string{"modules/catalog"}},
	}
	with := func(extra ...archPackage) []archPackage { return append(slices.Clone(good), extra...) }
	tests := []struct {
		name string
		pkgs []archPackage
		want []string
	}{
		{name: "a well-formed project", pkgs: good},
		{
			name: "(a) module imports another module's internals",
			pkgs: with(archPackage{Path: "modules/orders/internal/pricing", Imports: []string{"modules/orders", "modules/catalog/internal/products"}}),
			want: []string{"modules/orders/internal/pricing -> modules/catalog/internal/products: (a) a module may import only another module's contract package"},
		},
		{
			name: "(a)+(d) module imports another module's wiring",
			pkgs: with(archPackage{Path: "modules/orders/internal/x", Imports: []string{"modules/catalog/module"}}),
			want: []string{
				"modules/orders/internal/x -> modules/catalog/module: (a) a module may import only another module's contract package",
				"modules/orders/internal/x -> modules/catalog/module: (d) only the registry may import a module's wiring",
			},
		},
		{
			name: "(b) contract imports the platform",
			pkgs: with(archPackage{Path: "modules/payments", Imports: []string{"internal/message", "internal/store"}}),
			want: []string{"modules/payments -> internal/store: (b) a contract package may import only internal/message from the project"},
		},
		{
			name: "(b) contract imports its own internals",
			pkgs: with(archPackage{Path: "modules/payments", Imports: []string{"modules/payments/internal/provider"}}),
			want: []string{"modules/payments -> modules/payments/internal/provider: (b) a contract package may import only internal/message from the project"},
		},
		{
			name: "(b) contract imports another contract",
			pkgs: with(archPackage{Path: "modules/payments", Imports: []string{"modules/orders"}}),
			want: []string{"modules/payments -> modules/orders: (b) a contract package may import only internal/message from the project"},
		},
		{
			name: "(c) platform imports a contract",
			pkgs: with(archPackage{Path: "internal/outbox", Imports: []string{"modules/catalog"}}),
			want: []string{"internal/outbox -> modules/catalog: (c) the platform must not import modules (internal/app: only their registry)"},
		},
		{
			name: "(c)+(d) platform imports a module's wiring",
			pkgs: with(archPackage{Path: "internal/modhost", Imports: []string{"modules/catalog/module"}}),
			want: []string{
				"internal/modhost -> modules/catalog/module: (c) the platform must not import modules (internal/app: only their registry)",
				"internal/modhost -> modules/catalog/module: (d) only the registry may import a module's wiring",
			},
		},
		{
			name: "(c) internal/app imports a module's internals",
			pkgs: with(archPackage{Path: "internal/app", Imports: []string{"modules/catalog/internal/demo"}}),
			want: []string{"internal/app -> modules/catalog/internal/demo: (c) the platform must not import modules (internal/app: only their registry)"},
		},
		{
			name: "(c) a package below internal/app is platform too",
			pkgs: with(archPackage{Path: "internal/app/wiring", Imports: []string{"modules/catalog/module"}}),
			want: []string{
				"internal/app/wiring -> modules/catalog/module: (c) the platform must not import modules (internal/app: only their registry)",
				"internal/app/wiring -> modules/catalog/module: (d) only the registry may import a module's wiring",
			},
		},
		{
			name: "(c) internal/app imports a module's wiring, passing the registry by",
			pkgs: with(archPackage{Path: "internal/app", Imports: []string{"modules/catalog/module"}}),
			want: []string{
				"internal/app -> modules/catalog/module: (c) the platform must not import modules (internal/app: only their registry)",
				"internal/app -> modules/catalog/module: (d) only the registry may import a module's wiring",
			},
		},
		{
			name: "(c) another platform package imports the registry",
			pkgs: with(archPackage{Path: "internal/modhost", Imports: []string{"modules"}}),
			want: []string{"internal/modhost -> modules: (c) the platform must not import modules (internal/app: only their registry)"},
		},
		{
			name: "(d) the command imports a module's wiring",
			pkgs: with(archPackage{Path: "cmd/tool", Imports: []string{"modules/catalog/module"}}),
			want: []string{"cmd/tool -> modules/catalog/module: (d) only the registry may import a module's wiring"},
		},
		{
			name: "(d) a sub-package of the wiring counts as the wiring",
			pkgs: with(archPackage{Path: "tests", Imports: []string{"modules/catalog/module/fxopts"}}),
			want: []string{"tests -> modules/catalog/module/fxopts: (d) only the registry may import a module's wiring"},
		},
		{
			name: "(d) a module imports its own wiring",
			pkgs: with(archPackage{Path: "modules/catalog/internal/demo", Imports: []string{"modules/catalog/module"}}),
			want: []string{"modules/catalog/internal/demo -> modules/catalog/module: (d) only the registry may import a module's wiring"},
		},
		{
			name: "(e) module without contract",
			pkgs: with(archPackage{Path: "modules/ghost/internal/x", Imports: []string{"internal/bus"}}),
			want: []string{"modules/ghost: (e) the module has no contract package modules/ghost"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, archViolations(tt.pkgs)); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestContractDependencies: a module's contract, with everything it imports
// transitively, is the standard library and the project's message vocabulary —
// a contract describes, it runs nothing. And the vocabulary itself imports only the
// standard library.
func TestContractDependencies(t *testing.T) {
	root := procs.RepoRoot(t)
	mod := modulePath(t, root)
	var contracts []string
	for _, p := range projectPackages(t) {
		if isContract(p.Path) {
			contracts = append(contracts, mod+"/"+p.Path)
		}
	}
	vocabulary := mod + "/internal/message"
	for _, pkg := range append(contracts, vocabulary) {
		cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep != pkg && dep != vocabulary {
				t.Errorf("%s depends on %s: want only the standard library and %s", pkg, dep, vocabulary)
			}
		}
	}
	if len(contracts) < 6 {
		t.Errorf("found %d contracts, want every module's: %v", len(contracts), contracts)
	}
}
