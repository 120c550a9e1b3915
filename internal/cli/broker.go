package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	ucli "github.com/urfave/cli/v3"

	"github.com/agora-commerce/agora/internal/broker"
	"github.com/agora-commerce/agora/internal/logging"
)

// brokerCommand runs an embedded NATS server with JetStream (package broker), the
// broker of a split Agora on one machine, until the command's context ends
// (SIGINT or SIGTERM). Production uses a NATS cluster instead.
func brokerCommand(stdout, stderr io.Writer) *ucli.Command {
	var addr, monitorAddr, dataDir, logLevel, logFormat string
	return &ucli.Command{
		Name:  "broker",
		Usage: "run a NATS broker with JetStream for split processes (point their --bus-url at it)",
		Description: "Streams are stored under <data-dir>/broker and survive a restart. " +
			"Start it, then each `agora serve` with AGORA_BUS_URL=nats://<addr> and its own AGORA_MODULES.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "broker-addr", Value: "127.0.0.1:4222", Destination: &addr, Sources: ucli.EnvVars("AGORA_BROKER_ADDR"),
				Usage: "address the broker listens on for NATS clients"},
			&ucli.StringFlag{Name: "broker-monitor-addr", Destination: &monitorAddr, Sources: ucli.EnvVars("AGORA_BROKER_MONITOR_ADDR"),
				Usage: "serve NATS monitoring (/varz, /jsz…) on this address, e.g. 127.0.0.1:8222; empty: off"},
			&ucli.StringFlag{Name: "data-dir", Value: "./data", Destination: &dataDir, Sources: ucli.EnvVars("AGORA_DATA_DIR"),
				Usage: "the broker stores its streams under <data-dir>/broker"},
			&ucli.StringFlag{Name: "log-level", Value: "info", Destination: &logLevel, Sources: ucli.EnvVars("AGORA_LOG_LEVEL"),
				Usage: "debug, info, warn or error"},
			&ucli.StringFlag{Name: "log-format", Value: "auto", Destination: &logFormat, Sources: ucli.EnvVars("AGORA_LOG_FORMAT"),
				Usage: "auto (text on a terminal, JSON otherwise), json or text"},
		},
		Action: func(ctx context.Context, _ *ucli.Command) error {
			log, err := logging.New(stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			b, err := broker.Start(broker.Config{Addr: addr, StoreDir: filepath.Join(dataDir, "broker"), MonitorAddr: monitorAddr}, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "broker: NATS with JetStream listening on %s (store %s)\n", b.URL(), filepath.Join(dataDir, "broker"))
			<-ctx.Done()
			b.Shutdown()
			log.Info("broker stopped")
			return nil
		},
	}
}
