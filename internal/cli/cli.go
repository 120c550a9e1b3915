// Package cli is the agora command line: `agora serve`, `agora migrate` and
// `agora openapi`. Every option is a flag and an AGORA_* environment variable.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/logging"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/tools/loadgen"
)

// Run runs the command line args (args[0] is the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := newCommandLine(modhost.Stdio{In: stdin, Out: stdout, Err: stderr})
	if err := c.root().Run(ctx, args); err != nil {
		if c.log != nil {
			c.log.Error("agora failed", "err", err) // in the configured format, for log collectors
		} else {
			fmt.Fprintln(stderr, "agora:", err)
		}
		return 1
	}
	return 0
}

// commandLine is one run of the command line: the platform's settings, the
// modules with theirs, both written by the flags.
type commandLine struct {
	cfg                  config.Config
	mods                 []modhost.Module
	modules, httpModules string // --modules and --http-modules, parsed by setup
	log                  *slog.Logger
	stdio                modhost.Stdio
}

func newCommandLine(stdio modhost.Stdio) *commandLine {
	mods := app.Modules()
	cfg := config.Default()
	cfg.Modules, cfg.HTTPModules = modhost.Names(mods), modhost.Names(mods)
	return &commandLine{cfg: cfg, mods: mods, modules: "all", httpModules: "all", stdio: stdio}
}

// root is the `agora` command: the platform's commands, then each module's own.
func (c *commandLine) root() *ucli.Command {
	cmds := []*ucli.Command{
		{
			Name:   "serve",
			Usage:  "run the modules and the HTTP API (SQLite under --data-dir by default)",
			Flags:  c.serveFlags(),
			Before: c.setup,
			Action: func(ctx context.Context, _ *ucli.Command) error { return serve(ctx, c.cfg, c.mods, c.log) },
		},
		{
			Name:   "migrate",
			Usage:  "apply pending migrations to the databases of --modules, then exit",
			Flags:  c.commonFlags(),
			Before: c.setup,
			Action: func(ctx context.Context, _ *ucli.Command) error { return migrate(ctx, c.cfg, c.mods, c.log) },
		},
	}
	cmds = append(cmds, c.moduleCommands()...)
	cmds = append(cmds, brokerCommand(c.stdio.Out, c.stdio.Err), loadgen.Command(c.stdio.Out, c.stdio.Err), &ucli.Command{
		Name:  "openapi",
		Usage: "print the OpenAPI 3.1 document of the HTTP API",
		Flags: []ucli.Flag{&ucli.StringFlag{Name: "format", Value: "json", Usage: "json or yaml"}},
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			return printOpenAPI(c.stdio.Out, cmd.String("format"))
		},
	})
	return &ucli.Command{
		Name:      "agora",
		Usage:     "a modular backend: one binary that splits into services by configuration",
		Version:   app.BuildVersion(),
		Writer:    c.stdio.Out,
		ErrWriter: c.stdio.Err,
		Commands:  cmds,
	}
}

// moduleCommands are the modules' own commands. Each takes the common flags but
// --modules (the command says which modules it runs) and its module's flags.
func (c *commandLine) moduleCommands() []*ucli.Command {
	var out []*ucli.Command
	for _, m := range c.mods {
		if m.Commands == nil {
			continue
		}
		start := func(ctx context.Context, names ...string) (*modhost.Started, error) {
			return app.Starter(c.cfg, c.mods, c.log)(ctx, names...)
		}
		flags := slices.DeleteFunc(c.commonFlags(), func(f ucli.Flag) bool { return f.Names()[0] == "modules" })
		flags = append(flags, m.Flags...)
		for _, cmd := range m.Commands(start, c.stdio) {
			withFlags(cmd, flags, c.setup)
			out = append(out, cmd)
		}
	}
	return out
}

// withFlags gives cmd's leaves (the commands that act) flags and the setup that
// reads them.
func withFlags(cmd *ucli.Command, flags []ucli.Flag, setup ucli.BeforeFunc) {
	if cmd.Action != nil {
		cmd.Flags = append(cmd.Flags, flags...)
		cmd.Before = setup
	}
	for _, sub := range cmd.Commands {
		withFlags(sub, flags, setup)
	}
}

// setup reads what the flags cannot write directly, and makes the logger.
func (c *commandLine) setup(ctx context.Context, cmd *ucli.Command) (context.Context, error) {
	known := modhost.Names(c.mods)
	m, err := config.ParseModules(c.modules, known)
	if err != nil {
		return ctx, err
	}
	c.cfg.Modules = m
	if cmd.IsSet("http-modules") {
		if c.cfg.HTTPModules, err = config.ParseModules(c.httpModules, known); err != nil {
			return ctx, fmt.Errorf("http modules: %w", err)
		}
	}
	c.log, err = logging.New(c.stdio.Err, c.cfg.LogLevel, c.cfg.LogFormat)
	return ctx, err
}

func serve(ctx context.Context, cfg config.Config, mods []modhost.Module, log *slog.Logger) error {
	if _, err := app.FaultSchedule(cfg); err != nil {
		return err // before anything starts: a plain message, not the app's wiring
	}
	// The port first: holding it proves no other live process is this instance, so
	// the jobs this run creates may take back what a crashed run of it left held.
	ln, err := httpapi.Listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	jobs.SetInstance(app.Instance(cfg, ln))
	a := fx.New(app.ServeOn(ln, cfg, mods, log))
	if err := a.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return err
	}
	<-ctx.Done() // SIGINT or SIGTERM
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	log.Info("agora stopped")
	return nil
}

func migrate(ctx context.Context, cfg config.Config, mods []modhost.Module, log *slog.Logger) error {
	cfg.MigrateOnStart = true
	withData := modhost.WithData(mods)
	for _, m := range cfg.Modules {
		if !slices.Contains(withData, m) {
			continue // it has no database
		}
		h, err := modhost.Open(ctx, cfg, m, log)
		if err != nil {
			return err
		}
		if err := h.DB.Close(); err != nil {
			return err
		}
		log.Info("migrations are up to date", "module", m)
	}
	return nil
}

// printOpenAPI prints the spec of a process that runs no module: every module's
// routes are registered all the same, and no database is opened.
func printOpenAPI(w io.Writer, format string) error {
	mods := app.Modules()
	cfg := config.Default()
	cfg.HTTPModules = modhost.Names(mods)
	cfg.DataDir = "" // no key is generated: the document needs none
	var api *httpapi.API
	a := fx.New(app.Options(cfg, mods, slog.New(slog.DiscardHandler)), fx.NopLogger, fx.Populate(&api))
	if err := a.Err(); err != nil {
		return err
	}
	var out []byte
	var err error
	switch format {
	case "json":
		out, err = api.OpenAPI().MarshalJSON()
		out = append(indentJSON(out), '\n')
	case "yaml":
		out, err = api.OpenAPI().YAML()
	default:
		return errors.New("--format must be json or yaml")
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func indentJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return b
	}
	return buf.Bytes()
}
