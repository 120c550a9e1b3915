// Package supplychain holds the project's supply-chain checks, run by `go test ./...`
// like every other suite: govulncheck (pinned as a Go tool in go.mod) scans the code
// against a pinned copy of the Go vulnerability database (the golang.org/x/vulndb
// module) and fails on reachable vulnerabilities. Its only code reads the release
// toolchain from the Dockerfile (DockerfileToolchain), for this suite and the image test;
// docs/security.md, "Supply chain", says what is checked and how to update the pins.
package supplychain
