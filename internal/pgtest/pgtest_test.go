package pgtest_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kbpay/switch/internal/pgtest"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// TestStartServesQueries starts a server, checks the DSN's shape and the
// settings the store relies on, and writes and reads a row.
func TestStartServesQueries(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t, pgtest.WithSetting("max_connections", "50"))
	if !strings.HasPrefix(s.DSN, "postgres://postgres:") || !strings.HasSuffix(s.DSN, "@"+s.Addr+"/"+pgtest.DefaultDatabase+"?sslmode=disable") {
		t.Fatalf("DSN %q does not have the documented shape", s.DSN)
	}
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("server listens on %s, want loopback", s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := connect(t, s.DSN)
	for setting, want := range map[string]string{
		"fsync": "on", "listen_addresses": "127.0.0.1", "max_connections": "50",
		"server_encoding": "UTF8",
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatalf("reading %s: %v", setting, err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != pgtest.DefaultDatabase {
		t.Fatalf("current_database() = %q, %v; want %s", db, err, pgtest.DefaultDatabase)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE sale (stan text PRIMARY KEY, amount bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO sale VALUES ($1, $2)", "000001", int64(1250)); err != nil {
		t.Fatal(err)
	}
	var amount int64
	if err := conn.QueryRow(ctx, "SELECT amount FROM sale WHERE stan = $1", "000001").Scan(&amount); err != nil || amount != 1250 {
		t.Fatalf("amount = %d, %v; want 1250", amount, err)
	}
}

// TestParallelServersAreIndependent runs two servers at once: different
// ports, separate data, and a wrong password is refused.
func TestParallelServersAreIndependent(t *testing.T) {
	t.Parallel()
	type started struct {
		s    *pgtest.Server
		name string
	}
	servers := make(chan started, 2)
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := pgtest.Start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn := connect(t, s.DSN)
			if _, err := conn.Exec(ctx, "CREATE TABLE marker (name text)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO marker VALUES ($1)", name); err != nil {
				t.Fatal(err)
			}
			var got []string
			rows, err := conn.Query(ctx, "SELECT name FROM marker")
			if err != nil {
				t.Fatal(err)
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(got) != 1 || got[0] != name {
				t.Fatalf("markers = %v, %v; want only %q (servers must not share data)", got, err, name)
			}
			servers <- started{s, name}
		})
	}
	t.Cleanup(func() {
		close(servers)
		var addrs []string
		for st := range servers {
			addrs = append(addrs, st.s.Addr)
		}
		if len(addrs) == 2 && addrs[0] == addrs[1] {
			t.Errorf("both servers on %s", addrs[0])
		}
	})
}

// TestWrongPasswordRefused: TCP connections authenticate (scram), so a
// store configured with a bad DSN fails loudly instead of connecting.
func TestWrongPasswordRefused(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	u, err := url.Parse(s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(pgtest.Superuser, "wrong")
	bad := u.String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, bad)
	if err == nil {
		_ = conn.Close(ctx)
		t.Fatal("connected with a wrong password")
	}
	if !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("error %v, want a password authentication failure", err)
	}
}

// TestStopRemovesEverything: Stop ends the server (connections fail) and
// the cleanup removes its folder.
func TestStopRemovesEverything(t *testing.T) {
	t.Parallel()
	var dir string
	t.Run("server", func(t *testing.T) {
		s := pgtest.Start(t)
		dir = s.Dir
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, s.DSN); err == nil {
			_ = conn.Close(ctx)
			t.Fatal("connected after Stop")
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster folder %s still there after the test: %v", dir, err)
	}
}

// TestCreateDatabase gives a test its own database on a shared server.
func TestCreateDatabase(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	dsn := s.CreateDatabase(t, "instance_b")
	conn := connect(t, dsn)
	var db string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil || db != "instance_b" {
		t.Fatalf("current_database() = %q, %v; want instance_b", db, err)
	}
}

// TestTMPDIRClosedToThePostgresUser: run as root, the server runs as the
// postgres user, which cannot enter a $TMPDIR such as one under /root;
// the cluster then goes to /tmp instead of initdb failing.
func TestTMPDIRClosedToThePostgresUser(t *testing.T) {
	closed := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", closed)
	s := pgtest.Start(t)
	conn := connect(t, s.DSN)
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}
