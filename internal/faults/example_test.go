package faults_test

import (
	"fmt"

	"github.com/agora-commerce/agora/internal/faults"
)

// The compact syntax of --faults: a seed, then rules, each its kind and what it selects.
func ExampleParse() {
	s, err := faults.Parse("seed=7; drop type=payments. p=0.2; crash module=inventory p=0.1; delay delay=50ms")
	if err != nil {
		panic(err)
	}
	fmt.Println("seed", s.Seed)
	for _, r := range s.Rules {
		fmt.Printf("%s type=%q module=%q p=%v delay=%dms\n", r.Kind, r.Type, r.Module, r.Probability, r.DelayMS)
	}
	// Output:
	// seed 7
	// drop type="payments." module="" p=0.2 delay=0ms
	// crash type="" module="inventory" p=0.1 delay=0ms
	// delay type="" module="" p=1 delay=50ms
}
