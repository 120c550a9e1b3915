// Package apilint holds the API contract gates that use tools nobody here wrote:
// Redocly and Spectral lint the OpenAPI document, the AsyncAPI CLI validates
// api/asyncapi.yaml, a TypeScript client generated with openapi-typescript runs
// a checkout against the real binary, and oasdiff (a Go library, pinned in
// go.mod) refuses breaking changes that are not released as a new version.
//
// The npm CLIs are pinned in package.json and package-lock.json here; .ci/run
// installs them with `npm ci --ignore-scripts`. Without node_modules the tests
// that need them skip, saying how to install them, unless
// AGORA_TEST_REQUIRE_NODE=1 (CI sets it), which makes that a failure.
package apilint
