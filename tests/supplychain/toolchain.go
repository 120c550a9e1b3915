package supplychain

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
)

var toolchainArg = regexp.MustCompile(`(?m)^ARG GO_TOOLCHAIN=(go\d+\.\d+\.\d+)\s*$`)

// DockerfileToolchain returns the Go toolchain the Dockerfile under root builds
// the release with (its ARG GO_TOOLCHAIN), for the tests that hold the image and
// the scan to it.
func DockerfileToolchain(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return "", err
	}
	m := toolchainArg.FindSubmatch(b)
	if m == nil {
		return "", errors.New("the Dockerfile names no patched toolchain (ARG GO_TOOLCHAIN=goX.Y.Z)")
	}
	return string(m[1]), nil
}
