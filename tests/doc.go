// Package tests holds Agora's black-box suites: the architecture test, which checks
// the import rules that keep modules extractable, and the end-to-end test, which
// builds the agora binary and drives it over HTTP. The package itself has no code.
package tests
