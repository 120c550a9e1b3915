package jobs

import (
	"strconv"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
)

// instance is this process's lease identity, when it has one (SetInstance).
var instance struct {
	sync.Mutex
	name string // stable across restarts of the same process
	boot string // this run of it
}

// SetInstance names this process for the leases of the queues it creates
// afterwards: name must be one no other live process sharing its databases has, and
// one the same process has again when it restarts (the composition root uses the
// host name and the HTTP listen address, which no two live processes on a host
// share). A queue then holds its claims as name@boot/… and, on its first claim,
// takes back at once whatever a previous run of the same instance still held — that
// run is dead, since no other live process has the name — instead of leaving the
// work to wait for those leases to run out. Without a name, owners are random and a
// crashed run's claims come back only when their leases end.
func SetInstance(name string) {
	instance.Lock()
	defer instance.Unlock()
	instance.name = name
	instance.boot = strconv.FormatInt(time.Now().UnixNano(), 36)
}

// newOwner returns a fresh owner id for a queue, and the prefixes that tell this
// instance's owners (mine) and this run's (run) apart; both are empty without an
// instance name.
func newOwner() (owner, mine, run string) {
	instance.Lock()
	name, boot := instance.name, instance.boot
	instance.Unlock()
	if name == "" {
		return bus.NewID(), "", ""
	}
	mine = name + "@"
	run = mine + boot + "/"
	return run + bus.NewID(), mine, run
}
