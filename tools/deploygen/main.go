// Command deploygen writes the per-module parts of the split deployment files from
// the registry, so that a module added to it (modules/modules.go) is deployed
// without anyone editing them.
//
//	go run ./tools/deploygen          # rewrite them
//	go run ./tools/deploygen -check   # change nothing; exit 1 and say what is stale
//
// It writes:
//   - in deploy/compose.yaml, one service per module, between the markers (see
//     beginMarker); the header, the x-agora anchors, nats and postgres stay as
//     written by hand;
//   - all of deploy/kubernetes/overlays/split/modules.yaml: one Deployment per
//     module, with the module's Replicas (modhost.Module).
//
// It imports the registry and calls modules.All(), which is what the binary
// runs: a module's name, whether it owns data, and its replicas are whatever its
// own New() says, however it says it. Modules come in start order; compose
// publishes the i-th on 127.0.0.1:(8081+i). tests/deploy_test.go runs -check.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules"
	"github.com/agora-commerce/agora/tools/internal/genfiles"
)

// The files deploygen writes, relative to the repository root.
const (
	composePath    = "deploy/compose.yaml"
	kubernetesPath = "deploy/kubernetes/overlays/split/modules.yaml"
)

func main() {
	check := flag.Bool("check", false, "change nothing; fail if a deploy file is not as generated")
	root := flag.String("root", ".", "the repository root (where go.mod is)")
	flag.Parse()
	if err := run(*root, modules.All(), *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "deploygen:", err)
		os.Exit(1)
	}
}

// errStale is returned by run in check mode when a file is not as generated.
var errStale = errors.New("deploy files are stale: run `go run ./tools/deploygen` and commit the result")

// run generates the deploy files under root for mods. With check it writes
// nothing and returns errStale, after listing on w each stale file and how it
// differs, when any file is not as generated.
func run(root string, mods []modhost.Module, check bool, w io.Writer) error {
	svcs, err := services(mods)
	if err != nil {
		return err
	}
	compose, err := os.ReadFile(filepath.Join(root, composePath))
	if err != nil {
		return err
	}
	newCompose, err := splice(string(compose), composeServices(svcs))
	if err != nil {
		return fmt.Errorf("%s: %w", composePath, err)
	}
	files := map[string][]byte{
		composePath:    []byte(newCompose),
		kubernetesPath: []byte(kubernetesDeployments(svcs)),
	}
	return genfiles.Sync(root, files, check, w, errStale)
}
