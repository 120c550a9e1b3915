package modhost

import (
	"context"
	"io"
	"log/slog"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
)

// Module describes a domain module to the binary: everything the command line and
// the composition root need to know of it, declared in the module's own folder
// (modules/<name>/module) and listed once in the registry (package modules). Its
// database migrations are migrations/<name>/, found by name.
//
// A Module is built fresh for each command line (see the modules' New functions):
// Flags write the module's settings, and Run, Routes and Everywhere read them
// afterwards, so they must be called only once the flags are parsed.
type Module struct {
	// Name is the module's name: its message types' prefix, its database's name, its
	// flag prefix in --modules.
	Name string
	// Flags are the module's own settings, each a flag of `agora serve` and an
	// AGORA_* environment variable.
	Flags []ucli.Flag
	// Stateless says the module owns no data: no database, no outbox, no migrations
	// (the web face, which speaks only other modules' contracts). The platform opens,
	// migrates and reports on the databases of the others only.
	Stateless bool
	// Replicas is how many processes of the module a split deployment runs by
	// default (one per module: deploy/compose.yaml runs one, the Kubernetes split
	// overlay this many); 0 means 1. tools/deploygen writes it into the deploy
	// files. More than 1 only where the module's state lives in its database, so
	// that every replica sees the others' work; say why beside the value.
	Replicas int
	// Run returns the fx options that run the module in this process: its database,
	// its handlers and subscriptions on the bus, its workers.
	Run func() fx.Option
	// Routes returns the fx constructor of the module's httpapi.Routes (from the bus,
	// …); every process that serves the module's HTTP API provides it, asking the
	// module over the bus wherever it runs.
	Routes func() any
	// Everywhere, when set, returns fx options every process includes whether or not
	// the module runs there (identity: the verification of access tokens).
	Everywhere func() fx.Option
	// Commands, when set, returns the module's own subcommands of `agora`; start
	// runs a process of just the modules it names, for the duration of a command.
	Commands func(start Starter, stdio Stdio) []*ucli.Command
}

// Stdio is a command's standard input, output and error.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Starter starts a process that runs the named modules, configured by the command
// line, for the duration of a command; the caller stops it.
type Starter func(ctx context.Context, modules ...string) (*Started, error)

// Started is a process a Starter started: its bus and its logger.
type Started struct {
	Bus  *bus.Bus
	Log  *slog.Logger
	Stop func()
}

// Roster is the binary's modules as the registry lists them, for what presents the
// whole system (the ops routes, the web console): every process has it, whatever
// modules it runs, so a new module appears there by its registry line alone.
type Roster struct {
	Modules  []string // every module, in start order
	WithData []string // those that own data: a database and an outbox
}

// NewRoster returns the roster of mods.
func NewRoster(mods []Module) Roster { return Roster{Modules: Names(mods), WithData: WithData(mods)} }

// WithData returns the names of the modules that own data (not Stateless), in order.
func WithData(mods []Module) []string {
	var names []string
	for _, m := range mods {
		if !m.Stateless {
			names = append(names, m.Name)
		}
	}
	return names
}

// Names returns the modules' names, in order.
func Names(mods []Module) []string {
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	return names
}

// Messenger is a module's service as the bus sees it: the requests it answers and
// the durable messages it subscribes to.
type Messenger interface {
	Handlers() []bus.RequestHandler
	Subscriptions() []bus.Subscription
}

// OnBus returns the fx options that put the module's service S — provided in the
// module's fx.Module — on the bus: its handlers and subscriptions, into the groups
// the composition root builds the bus from.
func OnBus[S Messenger]() fx.Option {
	return fx.Provide(
		fx.Annotate(func(s S) []bus.RequestHandler { return s.Handlers() }, fx.ResultTags(`group:"bus.requests,flatten"`)),
		fx.Annotate(func(s S) []bus.Subscription { return s.Subscriptions() }, fx.ResultTags(`group:"bus.subscriptions,flatten"`)),
	)
}
