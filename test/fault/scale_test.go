package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/haproxytest"
	"github.com/kbpay/switch/internal/pgtest"
	"github.com/kbpay/switch/simulator/issuer"
	"github.com/kbpay/switch/simulator/terminal"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/postgres"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// scaleLease is the instances' store lease: a killed instance's work is
// taken over this long after its last heartbeat (plus up to a heartbeat).
// Not shorter: the keeper heartbeats on a 1 s tick, so the renewals of a
// lease of L come every L/3 rounded up to the next tick or two, and a busy
// machine must not see a live instance lapse.
const scaleLease = 6 * time.Second

// sharedStore configures a switchd as instance name on the PostgreSQL
// database dsn, with the HSM key store file in keys shared by every
// instance (each decrypts the others' PAN ciphertexts; the master key
// under it is shared with shareMasterKey). instance_id is left out: the
// database numbers the instances.
func sharedStore(name, dsn, keys string) switchdOption {
	return switchdOption{
		hsm: fmt.Sprintf("  key_store: %q\n", filepath.Join(keys, "keystore.json")),
		top: fmt.Sprintf("instance_name: %s\nstore:\n  backend: postgres\n  dsn: %q\n  lease: %s\n", name, dsn, scaleLease),
	}
}

// shareMasterKey gives to the development master key from's first start
// generated in its data folder (a production deployment points every
// instance at the same master key Secret instead; a configured key file
// would leave development mode).
func shareMasterKey(t *testing.T, from, to *switchd) {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(from.dataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to.dataDir, "master.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startPair starts switchd sw-a and then sw-b on the PostgreSQL database
// dsn, sharing one HSM key store and master key: one after the other, so
// the first generates the development master key and key store and the
// second reads them.
func startPair(t *testing.T, routes []routeSpec, dsn string) (a, b *switchd) {
	t.Helper()
	keys := t.TempDir()
	a = newSwitchd(t, routes, sharedStore("sw-a", dsn, keys))
	a.start()
	if err := a.waitReady(30*time.Second, "card-a", "card-b", "prepaid"); err != nil {
		t.Fatal(err)
	}
	b = newSwitchd(t, routes, sharedStore("sw-b", dsn, keys))
	shareMasterKey(t, a, b)
	b.start()
	if err := b.waitReady(30*time.Second, "card-a", "card-b", "prepaid"); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// balance starts HAProxy over the terminal listeners of sws, checking
// each one's /readyz, and waits until it sees them all up.
func balance(t *testing.T, sws ...*switchd) *haproxytest.Proxy {
	t.Helper()
	var backends []haproxytest.Backend
	for i, sw := range sws {
		backends = append(backends, haproxytest.Backend{Name: fmt.Sprintf("sw-%c", 'a'+i), Addr: sw.termAddr, CheckPort: adminPort(t, sw.adminAddr)})
	}
	lb := haproxytest.Start(t, backends, haproxytest.Options{HTTPCheck: "/readyz"})
	for _, be := range backends {
		lb.WaitStatus(t, be.Name, "UP", 30*time.Second)
	}
	return lb
}

func adminPort(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTwoInstancesBehindHAProxy runs the fault test's terminal fleet
// through HAProxy against two switchd processes sharing one PostgreSQL
// store, and SIGKILLs one of them mid-load. Terminals reconnect through
// the balancer to the survivor; the dead instance's in-flight sales and
// SAF items are completed by the survivor once its lease lapsed; a
// one-time token used through both instances at the same moment is
// approved once; every card is charged exactly what its terminals were
// told and every approval a terminal saw is journaled.
func TestTwoInstancesBehindHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-instance test: starts PostgreSQL, HAProxy and two switchd; skipped with -short")
	}
	began := time.Now()
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t, "switch")
	if _, err := postgres.Migrate(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	issuers, routes := startIssuers(t, bigBalance)
	a, b := startPair(t, routes, dsn)
	lb := balance(t, a, b)

	var cards []card
	for _, rb := range routeBINs {
		cards = append(cards, makeCards(rb.route, rb.bin, 3)...)
	}
	killDone := make(chan struct{})
	f := &fleet{
		addr: lb.Addr, cards: cards, total: totalSales, cancelPct: cancelPct, timeout: posTimeout,
		gate: newGate(), seed: uint64(time.Now().UnixNano()),
		// Later sales wait for the kill, so it lands mid-load.
		holds:       []hold{{400, killDone}},
		probeClaims: make(chan probeClaim, 1),
	}
	t.Logf("seed %d", f.seed)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	loadDone := f.run(ctx, terminals)
	stopLoad := func() { cancel(); <-loadDone }
	waitCompleted := func(n int64) {
		t.Helper()
		for f.completed.Load() < n {
			select {
			case <-loadDone:
				stopLoad()
				t.Fatalf("load ended after %d sales, before mark %d", f.completed.Load(), n)
			case <-ctx.Done():
				stopLoad()
				t.Fatalf("load stuck at %d sales before mark %d", f.completed.Load(), n)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	// A one-time token used through both instances at the same moment.
	waitCompleted(100)
	tokenCard := makeCards("card-b", "9420", 4)[3] // not one of the fleet's cards
	tokenRCs := useOneTimeTokenTwice(t, a, b, tokenCard)

	// SIGKILL sw-a mid-load. card-a charges and does not answer for longer
	// than the route timeout first, so that sw-a dies with sales in flight
	// and with reversals queued that card-a has not acknowledged.
	waitCompleted(300)
	issuers["card-a"].SetFault(issuer.Fault{ChargeWhenSilent: true})
	issuers["card-a"].SetMode(issuer.Silent)
	time.Sleep(800 * time.Millisecond)
	inFlightAtKill := f.next.Load() - f.completed.Load()
	a.kill()
	killedAt := time.Now()
	issuers["card-a"].SetMode(issuer.Normal)
	issuers["card-a"].SetFault(issuer.Fault{})
	leftSales, leftSAF := workOf(t, dsn, "sw-a")
	if len(leftSales)+len(leftSAF) == 0 {
		t.Error("sw-a died with no sale in flight and no SAF item: the kill proved nothing")
	}
	f.restarted.Store(true)
	close(killDone)
	lb.WaitStatus(t, "sw-a", "DOWN", 30*time.Second)

	select {
	case <-loadDone:
	case <-ctx.Done():
		t.Fatalf("load did not finish: %d of %d sales", f.completed.Load(), totalSales)
	}
	loadTook := time.Since(began)
	for _, msg := range f.errs {
		t.Error(msg)
	}
	if err := b.failure(); err != nil {
		t.Fatal(err)
	}
	survivor := &env{sw: b, issuers: issuers}
	survivor.settle(t, cards)
	settledAfter := time.Since(killedAt)
	balances := map[string]int64{}
	for _, c := range cards {
		balances[c.pan] = issuers[c.route].Balance(c.pan)
	}
	approvals := map[string][]issuer.Approval{}
	var tokenApprovals []issuer.Approval
	for _, rb := range routeBINs {
		for _, ap := range issuers[rb.route].Approvals() {
			if ap.PAN == tokenCard.pan { // the one-time token's sale, not the fleet's
				tokenApprovals = append(tokenApprovals, ap)
				continue
			}
			approvals[rb.route] = append(approvals[rb.route], ap)
		}
	}
	tokenBalance := issuers["card-b"].Balance(tokenCard.pan)
	b.stop()
	if r := b.raceReports() + a.raceReports(); r != "" {
		t.Errorf("switchd's race detector reported:\n%s", r)
	}
	j, err := b.openStore()
	if err != nil {
		t.Fatalf("opening the shared store: %v", err)
	}
	defer j.Close()
	jctx := context.Background()

	// The one-time token: approved once, charged once.
	if tokenRCs["00"] != 1 || tokenRCs["33"] != 1 {
		t.Errorf("one-time token used through both instances at once: %v, want one 00 and one 33", tokenRCs)
	}
	if got := bigBalance - tokenBalance; got != 700 || len(tokenApprovals) != 1 {
		t.Errorf("the token's card was charged %d in %d approvals, want 700 in one", got, len(tokenApprovals))
	}

	// The dead instance's work was completed by the survivor.
	for _, id := range leftSales {
		if row, err := j.Lookup().Get(jctx, id); err != nil || row.State == store.Forwarded || row.Owner != "sw-b" {
			t.Errorf("sw-a's in-flight transaction %d: %s owner %q (%v); want settled by sw-b", id, row.State, row.Owner, err)
		}
	}
	if items, err := j.Queue().List(jctx, store.SAFDone); err == nil {
		done := map[int64]store.SAFItem{}
		for _, it := range items {
			done[it.ID] = it
		}
		for _, id := range leftSAF {
			if it, ok := done[id]; !ok || it.Owner != "sw-b" {
				t.Errorf("sw-a's SAF item %d not acknowledged through sw-b: %+v", id, it)
			}
		}
	}
	if left, err := j.Lookup().InState(jctx, store.Forwarded); err != nil || len(left) != 0 {
		t.Errorf("%d transactions still in flight after the take-over (%v): %+v", len(left), err, left)
	}
	if pending, err := j.Queue().List(jctx, store.SAFPending); err != nil || len(pending) != 0 {
		t.Errorf("%d SAF items still pending (%v)", len(pending), err)
	}
	all, err := j.Lookup().Between(jctx, began.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Rows by owner, and the RRN prefixes (instance numbers the database
	// assigned) each instance put on the sales it sent itself.
	byOwner, takenOver, prefixes := map[string]int{}, 0, map[string]map[string]bool{}
	for _, row := range all {
		byOwner[row.Owner]++
		events, _ := j.Lookup().Events(jctx, row.ID)
		taken := false
		for _, ev := range events {
			if strings.HasPrefix(ev, "taken_over") {
				takenOver++
				taken = true
			}
		}
		if !taken && row.MTI == "0200" && len(row.RRN) == 12 {
			if prefixes[row.Owner] == nil {
				prefixes[row.Owner] = map[string]bool{}
			}
			prefixes[row.Owner][row.RRN[:2]] = true
			// Each instance's issuer STANs lie in its own partition
			// (instance number mod store.stan_partitions, 10 by default).
			if n, err := strconv.Atoi(row.IssuerSTAN); err == nil && row.RRN[1:2] != strconv.Itoa(n%10) {
				t.Errorf("%s sent issuer STAN %s as instance %s: outside its STAN partition", row.Owner, row.IssuerSTAN, row.RRN[:2])
			}
		}
	}
	if byOwner["sw-a"] == 0 || byOwner["sw-b"] == 0 {
		t.Errorf("the balancer did not spread the load: rows by owner %v", byOwner)
	}
	if len(prefixes["sw-a"]) != 1 || len(prefixes["sw-b"]) != 1 || fmt.Sprint(prefixes["sw-a"]) == fmt.Sprint(prefixes["sw-b"]) {
		t.Errorf("RRN instance prefixes by instance %v: want one each, distinct (neither configures instance_id)", prefixes)
	}
	found := checkMoney(t, f.sales, cards, balances, approvals, j)

	approved, unanswered, afterKill := 0, 0, 0
	for _, s := range f.sales {
		if s.afterRestart && s.approved() {
			afterKill++
		}
		switch {
		case s.approved():
			approved++
		case s.rc == noAnswer:
			unanswered++
		}
	}
	if afterKill == 0 {
		t.Error("no sale was approved after the kill: the terminals never came back through HAProxy")
	}
	t.Logf("load: %d terminals through HAProxy, %d sales: %d approved (%d after the kill), %d without answer; %d in flight at the kill",
		terminals, len(f.sales), approved, afterKill, unanswered, inFlightAtKill)
	t.Logf("sw-a died holding %d forwarded transactions and %d pending SAF items; sw-b completed them", len(leftSales), len(leftSAF))
	t.Logf("journal rows by owner %v; RRN prefixes %v; %d rows taken over from sw-a; %d of %d terminal-seen approvals journaled",
		byOwner, prefixes, takenOver, found, approved)
	t.Logf("timing: load %v, settled %v after the kill", loadTook.Round(time.Millisecond), settledAfter.Round(time.Millisecond))
	took, leaseUntil := takeOverTime(t, b)
	t.Logf("sw-b took sw-a's work over %v after the kill, %v after sw-a's lease ended (lease %v)",
		took.Sub(killedAt).Round(time.Millisecond), took.Sub(leaseUntil).Round(time.Millisecond), scaleLease)
	if took.Before(leaseUntil) {
		t.Errorf("sw-b took sw-a's work over at %v, before sw-a's lease ended at %v", took, leaseUntil)
	}
}

// workOf lists what instance name holds in the store: its forwarded
// transactions and pending SAF items (read as an observer that owns
// nothing).
func workOf(t *testing.T, dsn, name string) (sales, saf []int64) {
	t.Helper()
	ctx := context.Background()
	obs, err := postgres.Open(ctx, postgres.Options{DSN: dsn, Instance: store.Instance{Name: "observer"}})
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	rows, err := obs.Lookup().InState(ctx, store.Forwarded)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Owner == name {
			sales = append(sales, r.ID)
		}
	}
	items, err := obs.Queue().List(ctx, store.SAFPending)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Owner == name {
			saf = append(saf, it.ID)
		}
	}
	return sales, saf
}

// takeOverTime is when sw's log says it took over a lapsed instance's
// work, and until when that instance's lease ran.
func takeOverTime(t *testing.T, sw *switchd) (took, leaseUntil time.Time) {
	t.Helper()
	raw, err := os.ReadFile(sw.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, "took over a lapsed instance") {
			continue
		}
		var entry struct {
			TS         any `json:"time"`
			LeaseUntil any `json:"lease_until"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("take-over log line %q: %v", line, err)
		}
		if took, err = logTime(entry.TS); err != nil {
			t.Fatalf("take-over log line %q: ts: %v", line, err)
		}
		if leaseUntil, err = logTime(entry.LeaseUntil); err != nil {
			t.Fatalf("take-over log line %q: lease_until: %v", line, err)
		}
		return took, leaseUntil
	}
	t.Fatalf("%s never logged a take-over", sw.logPath)
	return
}

// logTime reads a time zap logged: ISO 8601 text, or seconds since the
// epoch as a number.
func logTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case float64:
		return time.Unix(0, int64(v*1e9)), nil
	case string:
		return time.Parse(time.RFC3339Nano, v)
	}
	return time.Time{}, fmt.Errorf("not a time: %v", v)
}

// useOneTimeTokenTwice issues a one-time token on a's admin API and pays
// with it on a's and b's terminal listeners at the same moment; it
// returns the answers by DE 39.
func useOneTimeTokenTwice(t *testing.T, a, b *switchd, c card) map[string]int {
	t.Helper()
	ctx := context.Background()
	tok, err := (&tokenapi.Client{Admin: a.adminAddr, Bearer: adminToken}).Issue(ctx, c.pan, "3012", tokenapi.IssueOptions{Kind: store.OneTimeToken})
	if err != nil {
		t.Fatalf("issuing a one-time token: %v", err)
	}
	var clients []*terminal.Client
	for i, sw := range []*switchd{a, b} {
		opts := terminal.DefaultOptions()
		opts.Addr, opts.TerminalID, opts.Timeout = sw.termAddr, fmt.Sprintf("TOKEN%03d", i+1), posTimeout
		cl, err := terminal.Dial(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
	}
	rcs := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := cl.Purchase(ctx, terminal.Purchase{PAN: tok.Token, Amount: 700})
			rc := res.ResponseCode
			if err != nil {
				rc = "error " + err.Error()
			}
			mu.Lock()
			rcs[rc]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return rcs
}
