// Package sagafaults holds the property tests of the checkout saga under faults
// injected at the bus: every module of the registry in one process (the real
// orders, inventory, payments with the simulated provider, notifications), driven
// through random fault schedules drawn with pgregory.net/rapid, and checked for
// the saga's invariants once everything settled. They live here, outside the
// platform and the modules, because only a black-box suite may import every
// module's contract together with the application (see tests/arch_test.go).
// The package itself has no code.
package sagafaults
