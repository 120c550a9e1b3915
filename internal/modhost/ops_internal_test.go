package modhost

import (
	"slices"
	"testing"
)

// OpsDeclarations lists exactly the requests a module with a database answers
// besides its contract's (its outbox's, and ProcessRequest, which processHandler
// answers), so the AsyncAPI document cannot miss one.
func TestOpsDeclarationsAreWhatIsHandled(t *testing.T) {
	handled := []string{ProcessRequest("shop").Name()}
	for _, h := range opsHandlers("shop", nil) {
		handled = append(handled, h.Name)
	}
	var declared []string
	for _, d := range OpsDeclarations("shop") {
		declared = append(declared, d.Name)
	}
	slices.Sort(handled)
	slices.Sort(declared)
	if !slices.Equal(handled, declared) {
		t.Errorf("handled %v, declared %v", handled, declared)
	}
}
