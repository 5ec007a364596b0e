package payswitch_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/pgtest"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/storage"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/switchd"
)

// TestPostgresOutageClosesTheGate: a switch on the PostgreSQL store whose
// database becomes unreachable fails /readyz and refuses new sales (91)
// without sending them to the issuer; once the database is reachable
// again it is ready and approves, and every approval is in the journal.
// A reload of journal.group_wait says the store ignores it.
func TestPostgresOutageClosesTheGate(t *testing.T) {
	srv := pgtest.Start(t)
	link := srv.NewLink(t)
	dsn := link.DSN(srv.CreateDatabase(t, "outage"))
	h := newHarness(t, "", func(c *config.Config) {
		c.InstanceName, c.Store.Lease = "sw-pg", 3*time.Second
		c.Store.Backend, c.Store.DSN, c.Store.MigrateAtStart = "postgres", dsn, true
		c.Store.StatementTimeout = 2 * time.Second
	})
	waitFor(t, 5*time.Second, "card-a link", func() bool { return h.linksUp("card-a") })
	opened := h.logs.FilterMessage("store open").All()
	if len(opened) != 1 {
		t.Fatalf("%d \"store open\" log lines", len(opened))
	}
	if logged := fmt.Sprint(opened[0].ContextMap()); !strings.Contains(logged, "xxxxx") || strings.Contains(logged, password(dsn)) {
		t.Fatalf("the DSN is not masked in the log: %s", logged)
	}
	term := h.terminal()
	ctx := context.Background()
	res, err := term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("a sale on the PostgreSQL store: %+v %v", res, err)
	}
	// The group hold is the embedded journal's: a reload changing it is
	// told it is ignored here.
	cfg, wait := h.cfg, 2*time.Millisecond
	cfg.Journal.GroupWait = &wait
	if sum, err := h.sw.Reload(ctx, reparse(t, cfg)); err != nil || !strings.HasPrefix(sum.GroupHold, "ignored: the postgres store") {
		t.Fatalf("reload of journal.group_wait on PostgreSQL: %+v %v", sum, err)
	}
	link.Cut()
	waitFor(t, 15*time.Second, "/readyz failing while the database is unreachable", func() bool { return !h.readiness(t).Ready })
	iss := h.issuers["card-a"]
	sales := received(iss, specs.MTIFinancialRequest)
	res, err = term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil || res.ResponseCode != "91" {
		t.Fatalf("a sale while the database is unreachable: %+v %v; want 91", res, err)
	}
	if got := received(iss, specs.MTIFinancialRequest); got != sales {
		t.Fatal("a sale reached the issuer while the database was unreachable")
	}
	link.Restore()
	waitFor(t, 20*time.Second, "/readyz ready again", func() bool { return h.readiness(t).Ready })
	res, err = term.Purchase(ctx, terminal.Purchase{PAN: cardA, Amount: 1000})
	if err != nil || res.ResponseCode != "00" {
		t.Fatalf("a sale once the database is back: %+v %v", res, err)
	}
	st, err := storage.Open(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	approved, err := st.Lookup().InState(ctx, store.Approved)
	if err != nil || len(approved) != 2 {
		t.Fatalf("%d approved sales journaled (%v), want 2", len(approved), err)
	}
}

// TestMigrateCommand: `switchd migrate --config F` brings an empty
// database to this build's schema (DSN from $SWITCH_STORE_DSN, password
// never printed), and a switch then starts on it without migrating, with
// an instance number the database assigned.
func TestMigrateCommand(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t, "migrated")
	t.Setenv("SWITCH_STORE_DSN", dsn)
	dir := t.TempDir()
	path := filepath.Join(dir, "switchd.yaml")
	if err := os.WriteFile(path, []byte("data_dir: "+dir+"\nstore: {backend: postgres}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := switchd.Main([]string{"migrate", "--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("switchd migrate exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "schema version") || strings.Contains(out.String()+errOut.String(), password(dsn)) {
		t.Fatalf("switchd migrate said %q", out.String())
	}
	for _, name := range []string{"sw-a", "sw-b"} {
		cfg, err := config.Parse([]byte("data_dir: " + t.TempDir() + "\ninstance_name: " + name + "\nstore: {backend: postgres}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.InstanceIDFromStore() {
			t.Fatalf("instance_id %d without instance_id in the file", cfg.InstanceID)
		}
		st, err := storage.Open(cfg)
		if err != nil {
			t.Fatalf("opening the migrated store as %s: %v", name, err)
		}
		_ = st.Close()
	}
}

// password is the password in a postgres://user:password@... DSN.
func password(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		panic("DSN without a password")
	}
	return pw
}
