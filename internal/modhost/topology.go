package modhost

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
)

// Process describes one running Agora process.
type Process struct {
	ID        string    `json:"id" doc:"host name and process id"`
	Version   string    `json:"version"`
	Transport string    `json:"transport" enum:"in-process,nats" doc:"how its bus reaches other processes"`
	Modules   []string  `json:"modules" doc:"the modules that run in it"`
	Started   time.Time `json:"started"`
}

// NewProcess describes this process as cfg configures it.
func NewProcess(cfg config.Config, version string) Process {
	host, _ := os.Hostname()
	transport := "in-process"
	if cfg.BusURL != "" {
		transport = "nats"
	}
	return Process{ID: host + ":" + strconv.Itoa(os.Getpid()), Version: version, Transport: transport,
		Modules: append([]string{}, cfg.Modules...), Started: time.Now().UTC()}
}

// ProcessRequest asks whoever runs module which process it is.
func ProcessRequest(module string) message.Request[struct{}, Process] {
	return message.NewRequest[struct{}, Process](module + ".ops.Process")
}

// Placement says where one module runs, as seen from the process that asked.
type Placement struct {
	Module  string   `json:"module"`
	Running bool     `json:"running" doc:"a process answered for it"`
	Process *Process `json:"process,omitempty" doc:"the process that answered (with replicas, one of them)"`
	Problem string   `json:"problem,omitempty" doc:"why no process answered"`
}

// Topology is the reply of GET /v1/ops/topology.
type Topology struct {
	This          Process     `json:"this" doc:"the process that served this request"`
	Requests      []string    `json:"requests" doc:"request types this process serves"`
	Subscriptions []string    `json:"subscriptions" doc:"durable message types this process consumes"`
	Modules       []Placement `json:"modules" doc:"every module and the process that runs it"`
}

// TopologyRoutes registers GET /v1/ops/topology: which process runs each module
// (each hosted module answers <module>.ops.Process on the bus, so the answer is
// the same from every process), with this process's version, transport and
// the message types it serves.
func TopologyRoutes(b *bus.Bus, this Process, modules []string) httpapi.Routes {
	return func(api huma.API) {
		type out struct{ Body Topology }
		huma.Register(api, huma.Operation{
			OperationID: "get-topology", Method: http.MethodGet, Path: "/v1/ops/topology",
			Summary: "Where every module runs", Tags: []string{"Operations"}, Security: httpapi.AdminOnly,
			Description: "The process that served the request (version, bus transport, modules, the message types it serves) " +
				"and, for every module, the process that answers for it — over the bus, so from any process.",
		}, func(ctx context.Context, _ *struct{}) (*out, error) {
			t := Topology{This: this, Requests: b.LocalRequestTypes(), Subscriptions: b.SubscribedTypes(),
				Modules: Locate(ctx, b, modules)}
			return &out{Body: t}, nil
		})
	}
}

// Locate asks, over the bus and at once, which process runs each of modules, and
// answers within 2 s whatever happens: a module nobody answers for in time is
// reported with the reason, in the order of modules.
func Locate(ctx context.Context, b *bus.Bus, modules []string) []Placement {
	placed := make([]Placement, len(modules))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range modules {
		wg.Go(func() {
			p, err := bus.Call(ctx, b, ProcessRequest(m), struct{}{})
			placed[i] = Placement{Module: m}
			switch {
			case err == nil:
				placed[i].Running, placed[i].Process = true, &p
			case errors.Is(err, message.ErrNoHandler):
				placed[i].Problem = "no process runs it"
			default:
				placed[i].Problem = message.AsError(err).Message
			}
		})
	}
	wg.Wait()
	return placed
}
