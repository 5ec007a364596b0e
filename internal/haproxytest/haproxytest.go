// Package haproxytest runs Debian's HAProxy in front of test servers: a TCP
// balancer (round robin, health checks) on a free 127.0.0.1 port, its
// configuration, admin socket and log in a temporary folder, stopped when the
// test ends. It is the balancer of the multi-instance tests (terminals ->
// HAProxy -> several switchd).
//
// Without HAProxy installed, Start skips the test, except under CI=true,
// where it fails: CI installs the package (.ci/run) and must run the test.
package haproxytest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/kbpay/switch/internal/hosttool"
	"github.com/kbpay/switch/internal/testnet"
)

// Generous bounds for a loaded 2-core CI machine.
const (
	readyTimeout = time.Minute
	stopTimeout  = 30 * time.Second
	bindAttempts = 5
)

// Backend is one server behind the balancer.
type Backend struct {
	// Name identifies the server in HAProxy's statistics. Default s1, s2, ...
	Name string
	// Addr is the server's host:port, where client connections go.
	Addr string
	// CheckPort, when set, is the port (same host) the health check goes to,
	// e.g. switchd's admin port for /readyz. Default: Addr itself.
	CheckPort int
}

// Options shape the generated configuration. The zero value balances with
// TCP connect checks every 200ms.
type Options struct {
	// HTTPCheck, when set, is the path of an HTTP health check (GET, 200
	// expected), e.g. "/readyz"; otherwise a check is a TCP connect.
	HTTPCheck string
	// CheckInterval is the time between health checks. Default 200ms.
	CheckInterval time.Duration
	// Fall and Rise are the failed and passed checks that mark a server
	// down and up. Defaults 2 and 2.
	Fall, Rise int
	// MaxConn caps concurrent client connections (each costs HAProxy two
	// descriptors). Default 4096.
	MaxConn int
}

// Proxy is one running HAProxy.
type Proxy struct {
	// Addr is the frontend, 127.0.0.1:port: clients connect here.
	Addr string
	// Dir holds haproxy.cfg, admin.sock and haproxy.log.
	Dir string

	proc *hosttool.Process
}

// Start writes a configuration balancing over backends, runs haproxy in
// the foreground and waits until it serves; it is stopped when t ends.
func Start(t testing.TB, backends []Backend, opts Options) *Proxy {
	t.Helper()
	bin := hosttool.Find(t, "haproxy", "haproxy", "/usr/sbin")
	if len(backends) == 0 {
		t.Fatal("haproxytest: no backends")
	}
	p := &Proxy{Dir: t.TempDir()}
	for attempt := 1; ; attempt++ {
		p.Addr = testnet.FreeAddr(t)
		if err := p.writeConfig(backends, opts); err != nil {
			t.Fatalf("haproxytest: %v", err)
		}
		err := p.run(bin)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) || attempt == bindAttempts {
			t.Fatalf("haproxytest: %v\n%s", err, p.logTail())
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxytest: log (%s):\n%s", p.Addr, p.logTail())
		}
		if err := p.Stop(); err != nil {
			t.Errorf("haproxytest: %v", err)
		}
	})
	return p
}

var configTemplate = template.Must(template.New("haproxy.cfg").Parse(`# written by internal/haproxytest
global
    maxconn {{.MaxConn}}
    stats socket {{.Dir}}/admin.sock mode 600 level admin
    log stdout format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    timeout check 5s
    default-server inter {{.Inter}} fastinter {{.Inter}} downinter {{.Inter}} fall {{.Fall}} rise {{.Rise}}

frontend terminals
    bind {{.Addr}}
    default_backend switches

backend switches
    balance roundrobin
{{- if .HTTPCheck}}
    option httpchk
    http-check send meth GET uri {{.HTTPCheck}}
    http-check expect status 200
{{- end}}
{{- range .Backends}}
    server {{.Name}} {{.Addr}} check{{if .CheckPort}} port {{.CheckPort}}{{end}}
{{- end}}
`))

func (p *Proxy) writeConfig(backends []Backend, opts Options) error {
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 200 * time.Millisecond
	}
	if opts.Fall <= 0 {
		opts.Fall = 2
	}
	if opts.Rise <= 0 {
		opts.Rise = 2
	}
	if opts.MaxConn <= 0 {
		opts.MaxConn = 4096
	}
	named := make([]Backend, len(backends))
	for i, b := range backends {
		if b.Name == "" {
			b.Name = fmt.Sprintf("s%d", i+1)
		}
		named[i] = b
	}
	f, err := os.Create(p.configPath())
	if err != nil {
		return fmt.Errorf("writing haproxy.cfg: %w", err)
	}
	err = configTemplate.Execute(f, map[string]any{
		"Dir": p.Dir, "Addr": p.Addr, "Backends": named, "HTTPCheck": opts.HTTPCheck,
		"Inter": fmt.Sprintf("%dms", opts.CheckInterval.Milliseconds()), "Fall": opts.Fall, "Rise": opts.Rise,
		"MaxConn": opts.MaxConn,
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing haproxy.cfg: %w", err)
	}
	return nil
}

// errPortTaken: haproxy could not bind the chosen frontend port.
var errPortTaken = errors.New("port taken")

// run starts haproxy -db (foreground) and waits until its admin socket
// answers and its frontend accepts. If the test binary dies, the kernel
// sends haproxy SIGTERM.
func (p *Proxy) run(bin string) error {
	cmd := exec.Command(bin, "-db", "-f", p.configPath())
	cmd.Dir = p.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	proc, err := hosttool.Start(cmd, p.logPath())
	if err != nil {
		return err
	}
	p.proc = proc
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-p.proc.Exited():
			if strings.Contains(p.logTail(), "cannot bind socket") {
				return fmt.Errorf("%s: %w", p.Addr, errPortTaken)
			}
			return fmt.Errorf("haproxy exited at start: %v", p.proc.WaitErr())
		default:
		}
		_, err := p.Command("show info")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = p.Stop()
			return fmt.Errorf("haproxy not serving within %v: %w", readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Command sends one command to HAProxy's admin socket (e.g. "show stat",
// "disable server switches/s1") and returns the answer.
func (p *Proxy) Command(cmd string) (string, error) {
	conn, err := net.DialTimeout("unix", filepath.Join(p.Dir, "admin.sock"), 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("haproxy admin socket: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy admin socket: %w", err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("haproxy admin socket: %w", err)
	}
	return string(b), nil
}

// ServerStatus is each backend server's health as HAProxy sees it, by
// name: "UP", "DOWN", "MAINT", or a transition such as "UP 1/2".
func (p *Proxy) ServerStatus() (map[string]string, error) {
	out, err := p.Command("show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy show stat: unreadable answer %q: %v", out, err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	status := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) <= col["status"] || row[col["pxname"]] != "switches" {
			continue
		}
		if sv := row[col["svname"]]; sv != "FRONTEND" && sv != "BACKEND" {
			status[sv] = row[col["status"]]
		}
	}
	return status, nil
}

// WaitStatus polls until server name has status want ("UP", "DOWN") or
// timeout passes, and fails t then.
func (p *Proxy) WaitStatus(t testing.TB, name, want string, timeout time.Duration) {
	t.Helper()
	testnet.EventuallyOK(t, timeout, "haproxytest: server "+name+" "+want, func() error {
		status, err := p.ServerStatus()
		if err != nil {
			return err
		}
		if status[name] != want {
			return fmt.Errorf("statuses %v", status)
		}
		return nil
	})
}

// Stop ends haproxy (SIGTERM: a hard stop that closes every proxied
// connection, as a crashed balancer would) and waits for it; stopping
// again is a no-op.
func (p *Proxy) Stop() error {
	if p.proc.Stop(syscall.SIGTERM, stopTimeout) {
		return fmt.Errorf("haproxy on %s did not stop within %v: killed", p.Addr, stopTimeout)
	}
	return nil
}

func (p *Proxy) configPath() string { return filepath.Join(p.Dir, "haproxy.cfg") }
func (p *Proxy) logPath() string    { return filepath.Join(p.Dir, "haproxy.log") }

// logTail is the end of haproxy's output, for failure messages.
func (p *Proxy) logTail() string { return hosttool.Tail(p.logPath(), 4000) }

// Check runs `haproxy -c -f path`, HAProxy's own validation of a
// configuration file, and returns its output on failure; a warning is a
// failure too, so shipped configurations stay clean. It skips t when
// HAProxy is not installed, unless CI=true.
func Check(t testing.TB, path string) error {
	t.Helper()
	bin := hosttool.Find(t, "haproxy", "haproxy", "/usr/sbin")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("haproxy -c -f %s: %w\n%s", path, err, out)
	}
	if strings.Contains(string(out), "[WARNING]") {
		return fmt.Errorf("haproxy -c -f %s: warnings:\n%s", path, out)
	}
	return nil
}
