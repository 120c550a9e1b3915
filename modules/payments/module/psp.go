package module

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// PSPCommand is `agora psp`: it runs the payment-provider simulator (package psp)
// as an HTTP service, until the command's context ends (SIGINT or SIGTERM).
func PSPCommand(stdout, stderr io.Writer) *ucli.Command {
	var (
		addr, apiKey         string
		failureRate          float64
		latency, slowLatency time.Duration
	)
	return &ucli.Command{
		Name:  "psp",
		Usage: "run the payment-provider simulator (point --payment-provider-url at it)",
		Description: "A Stripe-like provider held in memory. Test tokens: tok_visa (succeeds), tok_decline, " +
			"tok_insufficient_funds, tok_timeout (never answers), tok_error (500), tok_slow (answers after --slow-latency).",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "addr", Value: "127.0.0.1:4242", Destination: &addr, Sources: ucli.EnvVars("AGORA_PSP_ADDR"),
				Usage: "address the simulator listens on"},
			&ucli.FloatFlag{Name: "failure-rate", Destination: &failureRate, Sources: ucli.EnvVars("AGORA_PSP_FAILURE_RATE"),
				Usage: "chance (0 to 1) that any call fails with a 503"},
			&ucli.DurationFlag{Name: "latency", Destination: &latency, Sources: ucli.EnvVars("AGORA_PSP_LATENCY"),
				Usage: "latency added to every call"},
			&ucli.DurationFlag{Name: "slow-latency", Value: time.Second, Destination: &slowLatency, Sources: ucli.EnvVars("AGORA_PSP_SLOW_LATENCY"),
				Usage: "how long tok_slow takes to answer"},
			&ucli.StringFlag{Name: "api-key", Destination: &apiKey, Sources: ucli.EnvVars("AGORA_PSP_API_KEY"),
				Usage: "API key callers must send as a bearer token (empty: none needed)"},
		},
		Action: func(ctx context.Context, _ *ucli.Command) error {
			if failureRate < 0 || failureRate > 1 {
				return fmt.Errorf("psp: --failure-rate must be between 0 and 1, not %v", failureRate)
			}
			sim := psp.NewSimulator(psp.Config{FailureRate: failureRate, Latency: latency, SlowLatency: slowLatency})
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("psp: listen: %w", err)
			}
			srv := &http.Server{Handler: psp.Handler(sim, apiKey), ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(l) }()
			fmt.Fprintf(stdout, "psp: payment-provider simulator listening on http://%s (failure rate %v, latency %v)\n",
				l.Addr(), failureRate, latency)
			select {
			case err := <-served:
				return fmt.Errorf("psp: serve: %w", err)
			case <-ctx.Done():
			}
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// tok_timeout calls never end by themselves: close what is left after the grace period.
			if err := srv.Shutdown(stopCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				fmt.Fprintln(stderr, "psp: shutdown:", err)
			}
			_ = srv.Close()
			return nil
		},
	}
}
