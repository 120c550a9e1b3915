// Package broker runs an embedded NATS server with JetStream: the broker of a split
// Agora on a laptop or in tests (`agora broker`), so that splitting needs nothing but
// the agora binary. Production runs a real NATS cluster instead; Agora's processes
// only need its URL (AGORA_BUS_URL).
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures an embedded broker.
type Config struct {
	// Addr is the client address, host:port (default 127.0.0.1:4222; port 0 picks
	// a free one).
	Addr string
	// StoreDir is where JetStream keeps its streams; they survive a restart.
	StoreDir string
	// MonitorAddr, when set, serves NATS monitoring (/varz, /jsz…) on host:port.
	// Empty: no monitoring endpoint.
	MonitorAddr string
	// MaxPayload is the largest message accepted (default 8 MiB: above the HTTP
	// API's body limit, so that any request the API accepts fits).
	MaxPayload int32
	// Name names the server in logs and monitoring (default "agora-broker").
	Name string
}

// Broker is a running embedded NATS server.
type Broker struct {
	srv *server.Server
}

// Start starts a broker and returns once it accepts connections.
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:4222"
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("broker: a store directory is required")
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 8 << 20
	}
	if cfg.Name == "" {
		cfg.Name = "agora-broker"
	}
	host, port, err := hostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("broker address: %w", err)
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Clean(cfg.StoreDir),
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true, // the agora command handles signals
	}
	if cfg.MonitorAddr != "" {
		if opts.HTTPHost, opts.HTTPPort, err = hostPort(cfg.MonitorAddr); err != nil {
			return nil, fmt.Errorf("broker monitoring address: %w", err)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if log != nil {
		srv.SetLogger(slogAdapter{log.With("component", "broker")}, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("broker: not ready on %s within 10s (is the port taken?)", cfg.Addr)
	}
	return &Broker{srv: srv}, nil
}

// hostPort splits host:port; port 0 becomes NATS's "pick a free port".
func hostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// URL returns the nats:// URL clients connect to.
func (b *Broker) URL() string { return b.srv.ClientURL() }

// Addr returns the address the broker listens on.
func (b *Broker) Addr() string { return b.srv.Addr().String() }

// Shutdown stops the broker and waits until it has stopped. Streams are kept in
// the store directory.
func (b *Broker) Shutdown() {
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// slogAdapter writes the server's log through slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.log.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.log.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.log.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.log.Debug(fmt.Sprintf(format, v...)) }
