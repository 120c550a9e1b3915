// Package procs runs the agora binary's processes for black-box suites: `agora
// serve --demo` waited on until /readyz answers 200, and `agora broker` waited on
// until it listens; each can be killed (SIGKILL, as in a crash), stopped and
// started again on its port and data directory. Every process listens on
// 127.0.0.1 and is stopped when the test that started it ends.
//
// Its primitives (Binary, FreeAddr, CleanEnv, Buffer, RepoRoot) are the only
// copies: the tests package's own process handles (e2e_test.go, topology_test.go)
// and tests/apilint build on them.
package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReadyTimeout bounds the wait for a process to answer /readyz (or, a broker, to listen).
const ReadyTimeout = 30 * time.Second

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary builds ./cmd/agora once per test binary and returns its path. Call
// Cleanup from TestMain to remove it.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			build.err = err
			return
		}
		if build.dir, err = os.MkdirTemp("", "agora-procs-"); err != nil {
			build.err = err
			return
		}
		bin := filepath.Join(build.dir, "agora")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/agora")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/agora: %v\n%s", err, out)
			return
		}
		build.path = bin
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Cleanup removes the binary Binary built, if any.
func Cleanup() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// RepoRoot returns the directory holding go.mod, above the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// CleanEnv is the test's environment without AGORA_* settings, and with extra
// (KEY=value) added, so the developer's shell cannot change what the binary does.
func CleanEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AGORA_") })
	return append(env, extra...)
}

// Buffer collects a process's output while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one running process.
type proc struct {
	cmd  *exec.Cmd
	out  *Buffer
	done chan struct{}
}

func start(t testing.TB, args, env []string) *proc {
	t.Helper()
	p := &proc{out: &Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t), args...)
	p.cmd.Env = CleanEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start agora %v: %v", args, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(10 * time.Second) })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM, and SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot stop
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// Agora is one `agora serve --demo`.
type Agora struct {
	Base    string   // http://127.0.0.1:port
	DataDir string   // AGORA_DATA_DIR
	Env     []string // the settings it was started with (KEY=value)
	Ready   time.Time
	p       *proc
}

// StartAgora starts `agora serve --demo` on addr (a free port when empty) and
// dataDir with env added, and returns once /readyz answers 200.
func StartAgora(t testing.TB, dataDir, addr string, env ...string) *Agora {
	t.Helper()
	if addr == "" {
		addr = FreeAddr(t)
	}
	a := &Agora{Base: "http://" + addr, DataDir: dataDir, Env: env}
	a.p = start(t, []string{"serve", "--demo"}, append([]string{"AGORA_DATA_DIR=" + dataDir, "AGORA_HTTP_ADDR=" + addr,
		"AGORA_LOG_FORMAT=json", "AGORA_SHUTDOWN_TIMEOUT=5s"}, env...))
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(ReadyTimeout); ; time.Sleep(25 * time.Millisecond) {
		if a.p.exited() {
			t.Fatalf("agora %v exited before it was ready:\n%s", env, tail(a.p.out.String()))
		}
		if time.Now().After(deadline) {
			t.Fatalf("agora %v: /readyz not 200 within %v:\n%s", env, ReadyTimeout, tail(a.p.out.String()))
		}
		res, err := hc.Get(a.Base + "/readyz")
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK {
			a.Ready = time.Now()
			return a
		}
	}
}

// Kill ends the process with SIGKILL, as in a crash, and waits for it to be gone.
func (a *Agora) Kill() { a.p.kill() }

// Stop ends the process gracefully (SIGTERM; SIGKILL after 10 s) and waits for it.
func (a *Agora) Stop() { a.p.stop(10 * time.Second) }

// Restart starts a process like a (killed or stopped) on its port, data directory
// and settings: the same instance, which takes back what its predecessor held.
func (a *Agora) Restart(t testing.TB) *Agora {
	t.Helper()
	return StartAgora(t, a.DataDir, strings.TrimPrefix(a.Base, "http://"), a.Env...)
}

// Output is what the process wrote to standard output and error.
func (a *Agora) Output() string { return a.p.out.String() }

// Broker is one `agora broker` (an embedded NATS server with JetStream).
type Broker struct {
	Addr    string
	DataDir string
	p       *proc
}

// StartBroker runs `agora broker` on addr (a free port when empty), storing under
// dataDir, and returns once it listens.
func StartBroker(t testing.TB, dataDir, addr string) *Broker {
	t.Helper()
	if addr == "" {
		addr = FreeAddr(t)
	}
	b := &Broker{Addr: addr, DataDir: dataDir}
	b.p = start(t, []string{"broker", "--broker-addr", addr, "--data-dir", dataDir, "--log-format", "json"}, nil)
	for deadline := time.Now().Add(ReadyTimeout); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return b
		}
		if b.p.exited() || time.Now().After(deadline) {
			t.Fatalf("broker not listening on %s:\n%s", addr, tail(b.p.out.String()))
		}
	}
}

// URL is the broker's nats:// URL.
func (b *Broker) URL() string { return "nats://" + b.Addr }

// Stop stops the broker (SIGTERM) and waits for it to be gone.
func (b *Broker) Stop() { b.p.stop(10 * time.Second) }

// Restart starts a stopped broker again on its address and store.
func (b *Broker) Restart(t testing.TB) *Broker {
	t.Helper()
	return StartBroker(t, b.DataDir, b.Addr)
}

// tail is the end of a process's output, for a failure message.
func tail(s string) string {
	if len(s) > 8000 {
		return "…" + s[len(s)-8000:]
	}
	return s
}

// PSP is one `agora psp`: the simulated payment provider as its own process, an
// external provider that outlives the payments module's restarts.
type PSP struct {
	URL string
	p   *proc
}

// StartPSP runs `agora psp` on a free port with args, and returns once it answers.
func StartPSP(t testing.TB, args ...string) *PSP {
	t.Helper()
	addr := FreeAddr(t)
	s := &PSP{URL: "http://" + addr}
	s.p = start(t, append([]string{"psp", "--addr", addr}, args...), nil)
	for deadline := time.Now().Add(ReadyTimeout); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(s.URL + "/v1/authorizations/none") // any answer means it listens
		if err == nil {
			_ = res.Body.Close()
			return s
		}
		if s.p.exited() || time.Now().After(deadline) {
			t.Fatalf("psp not up on %s: %v\n%s", addr, err, tail(s.p.out.String()))
		}
	}
}

// Sleep waits d, or less when ctx ends first; it reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
