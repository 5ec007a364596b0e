// Package pgtest starts a throw-away PostgreSQL server for tests: Debian's
// server binaries (/usr/lib/postgresql/<version>/bin) on a fresh cluster in a
// temporary folder, listening on a free 127.0.0.1 port (and a unix socket in
// that folder), fsync on, password authentication over TCP. The server is
// stopped and its folder removed when the test ends.
//
// Without PostgreSQL installed, Start skips the test, except under CI=true,
// where it fails: CI installs the package (.ci/run) and must run the test.
//
// initdb and postgres refuse to run as root. A test running as root starts
// them as the postgres system user (created by Debian's package): the
// processes are direct children of the test with that user's credentials
// (what `runuser -u postgres --` does, without the extra process in
// between, so signals and the parent-death signal reach the server itself).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/internal/hosttool"
	"github.com/kbpay/switch/internal/testnet"
)

// Generous bounds: a loaded 2-core CI machine running several test
// binaries at once can take many seconds for initdb and the first connect.
const (
	initTimeout  = 3 * time.Minute
	readyTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
	// bindAttempts: the free port may be taken between choosing and binding
	// it (other tests pick ports too); start again on another one.
	bindAttempts = 5
)

// Superuser is the cluster's superuser, the user of every DSN.
const Superuser = "postgres"

// DefaultDatabase is the database Start creates; Server.DSN points at it.
const DefaultDatabase = "switch_test"

// binDirs is where Debian's postgresql-<version> package puts the server
// binaries ($PGTEST_BINDIR first, when set); $PATH is tried after them.
func binDirs() []string {
	dirs := []string{"/usr/lib/postgresql/*/bin"}
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	return dirs
}

// Server is one running throw-away PostgreSQL.
type Server struct {
	// Addr is the TCP address, 127.0.0.1:port.
	Addr string
	// DSN is a pgx/libpq URL to DefaultDatabase as the superuser:
	// postgres://postgres:<password>@127.0.0.1:<port>/switch_test?sslmode=disable
	DSN string
	// Dir is the temporary folder: data/ (the cluster), sock/ (the unix
	// socket) and server.log.
	Dir string

	password string
	proc     *hosttool.Process
}

// Option changes how Start runs the server.
type Option func(*options)

type options struct {
	settings [][2]string
}

// WithSetting passes a server setting (postgres -c name=value), e.g.
// WithSetting("max_connections", "200").
func WithSetting(name, value string) Option {
	return func(o *options) { o.settings = append(o.settings, [2]string{name, value}) }
}

// Start runs a new PostgreSQL cluster for t with DefaultDatabase created,
// waits until it accepts connections and stops it (removing its folder)
// when t ends. It skips t when PostgreSQL is not installed, unless CI=true.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	postgres := hosttool.Find(t, "postgres", "postgresql", binDirs()...)
	initdb := filepath.Join(filepath.Dir(postgres), "initdb")
	if _, err := os.Stat(initdb); err != nil {
		hosttool.Missing(t, "initdb not found next to %s (install the Debian package postgresql)", postgres)
	}
	cred := credential(t)

	dir, err := os.MkdirTemp(clusterBase(cred), "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: creating the cluster folder: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &Server{Dir: dir, password: randomHex(t, 16)}
	if err := s.initCluster(initdb, cred); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	for attempt := 1; ; attempt++ {
		port := testnet.FreePort(t)
		err := s.run(postgres, cred, port, o.settings)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) || attempt == bindAttempts {
			t.Fatalf("pgtest: starting postgres: %v\n%s", err, s.logTail())
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: server log (%s):\n%s", s.Addr, s.logTail())
		}
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	s.DSN = s.CreateDatabase(t, DefaultDatabase)
	return s
}

// credential is the postgres system user's when the test runs as root
// (initdb refuses root), nil otherwise: the test's own user runs it.
func credential(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		hosttool.Missing(t, "running as root and there is no postgres system user to run PostgreSQL as (install the Debian package postgresql): %v", err)
		return nil
	}
	uid, uerr := strconv.ParseUint(u.Uid, 10, 32)
	gid, gerr := strconv.ParseUint(u.Gid, 10, 32)
	if uerr != nil || gerr != nil {
		t.Fatalf("pgtest: postgres user has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// clusterBase is where the cluster folder goes: the temporary folder,
// unless the server runs as the postgres user and cannot reach it (e.g.
// $TMPDIR under /root), then /tmp.
func clusterBase(cred *syscall.Credential) string {
	base := os.TempDir()
	if cred == nil {
		return base
	}
	for dir := base; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if dir == filepath.Dir(dir) {
			return base
		}
	}
}

// initCluster creates data/ with initdb: superuser postgres with a random
// password (scram-sha-256 over TCP), trust on the unix socket, UTF8, C
// locale. --no-sync only skips initdb's final flush of a cluster that is
// thrown away anyway; the running server has fsync on.
func (s *Server) initCluster(initdb string, cred *syscall.Credential) error {
	if err := os.Mkdir(filepath.Join(s.Dir, "sock"), 0o700); err != nil {
		return fmt.Errorf("creating the socket folder: %w", err)
	}
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the password file: %w", err)
	}
	if cred != nil {
		if err := chownTree(s.Dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, initdb,
		"-D", filepath.Join(s.Dir, "data"), "-U", Superuser, "--pwfile="+pwfile,
		"--auth-host=scram-sha-256", "--auth-local=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = s.Dir // the test's folder may be closed to the postgres user
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	_ = os.Remove(pwfile)
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("handing %s to the postgres user: %w", p, err)
		}
		return nil
	})
}

// errPortTaken: postgres could not bind the chosen port.
var errPortTaken = errors.New("port taken")

// run starts postgres on port and waits until it answers a query. The
// server is a direct child: if the test binary dies, the kernel sends it
// SIGQUIT (immediate shutdown) instead of leaving it running.
func (s *Server) run(postgres string, cred *syscall.Credential, port int, settings [][2]string) error {
	args := []string{
		"-D", filepath.Join(s.Dir, "data"),
		"-p", strconv.Itoa(port),
		"-k", filepath.Join(s.Dir, "sock"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on",
	}
	for _, kv := range settings {
		args = append(args, "-c", kv[0]+"="+kv[1])
	}
	cmd := exec.Command(postgres, args...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	proc, err := hosttool.Start(cmd, s.logPath())
	if err != nil {
		return err
	}
	s.proc = proc
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	if err := s.waitReady(); err != nil {
		select {
		case <-s.proc.Exited():
			if strings.Contains(s.logTail(), "could not create any TCP/IP sockets") {
				return fmt.Errorf("%s: %w", s.Addr, errPortTaken)
			}
			return fmt.Errorf("postgres exited (%v): %w", s.proc.WaitErr(), err)
		default:
			_ = s.Stop()
			return err
		}
	}
	return nil
}

// waitReady polls with a connect and a query until they succeed, the
// server exits or readyTimeout passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("server exited before accepting connections: %v", last)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		last = ping(ctx, s.dsn("postgres"))
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not accepting connections on %s within %v: %w", s.Addr, readyTimeout, last)
}

func ping(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// CreateDatabase creates an empty database name on the server and returns
// its DSN. Tests that need isolation on one server (cheaper than a server
// each) create a database per test.
func (s *Server) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", s.Addr, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	return s.dsn(name)
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", Superuser, s.password, s.Addr, db)
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and
// waits for it; after stopTimeout it is killed. Stopping again is a no-op.
// Start's cleanup calls it; a test may call it earlier, e.g. to see how its
// code behaves when the database goes away.
func (s *Server) Stop() error {
	if s.proc.Stop(syscall.SIGINT, stopTimeout) { // the postmaster and its backends
		return fmt.Errorf("postgres on %s did not stop within %v: killed", s.Addr, stopTimeout)
	}
	return nil
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, "server.log") }

// logTail is the end of the server log, for failure messages.
func (s *Server) logTail() string { return hosttool.Tail(s.logPath(), 4000) }

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random password: %v", err)
	}
	return hex.EncodeToString(b)
}
