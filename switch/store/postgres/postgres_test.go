package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbpay/switch/internal/pgtest"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/storetest"
)

var dbSeq atomic.Int64

// freshDatabase creates an empty, migrated database on srv for one test.
func freshDatabase(t *testing.T, srv *pgtest.Server) string {
	t.Helper()
	dsn := srv.CreateDatabase(t, fmt.Sprintf("store_%d", dbSeq.Add(1)))
	if _, err := Migrate(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	return dsn
}

func openOn(t *testing.T, dsn string, inst store.Instance) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{DSN: dsn, Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformance runs the store conformance suite on PostgreSQL: one
// server, a database per test; each Open is another instance's pool on it.
func TestConformance(t *testing.T) {
	srv := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) storetest.Open {
		dsn := freshDatabase(t, srv)
		return func(inst store.Instance) store.Store { return openOn(t, dsn, inst) }
	})
}

func sale(stan string) store.Txn {
	return store.Txn{Key: store.Key{TerminalID: "TERM0001", STAN: stan, TxTime: "1125101500", MTI: "0200"}, ProcCode: "000000",
		Amount: 10000, Currency: "410", Route: "card-a", State: store.Forwarded}
}

// TestGroupCommitAndDuplicatesInOneGroup: many concurrent writers, some
// repeating a key, all become durable; each repeat is ErrDuplicate with
// the stored row and does not fail the others of its group; with one
// group in flight and with several.
func TestGroupCommitAndDuplicatesInOneGroup(t *testing.T) {
	srv := pgtest.Start(t)
	for _, committers := range []int{1, 4} {
		t.Run(fmt.Sprintf("committers=%d", committers), func(t *testing.T) {
			s, err := Open(context.Background(), Options{DSN: freshDatabase(t, srv), Instance: store.Instance{Name: "a"},
				Committers: committers})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			var wg sync.WaitGroup
			var dups atomic.Int64
			for i := 0; i < 300; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					key := sale(fmt.Sprintf("%06d", i%200+1))
					row, err := s.Sales().Begin(ctx, key)
					if errors.Is(err, store.ErrDuplicate) {
						dups.Add(1)
						if row.ID == 0 || row.Key != key.Key {
							t.Errorf("duplicate answered with %+v", row)
						}
					} else if err != nil {
						t.Error(err)
					}
				}(i)
			}
			wg.Wait()
			var n int
			if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM txns`).Scan(&n); err != nil || n != 200 {
				t.Fatalf("%d rows (%v)", n, err)
			}
			if dups.Load() != 100 {
				t.Fatalf("%d duplicates, want 100", dups.Load())
			}
		})
	}
}

// TestUniqueViolationIsTypedNotText: a token inserted twice is
// ErrDuplicate by SQLSTATE 23505; the message's language does not matter.
func TestUniqueViolationIsTypedNotText(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := freshDatabase(t, srv)
	s := openOn(t, dsn, store.Instance{Name: "a"})
	ctx := context.Background()
	// A server speaking another language words the error differently.
	if _, err := s.pool.Exec(ctx, `SET lc_messages = 'C'`); err != nil {
		t.Fatal(err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sequences (name, next) VALUES ('x', 1), ('x', 2)`)
	if !isUnique(err) {
		t.Fatalf("unique violation not recognised by code: %v", err)
	}
	if isUnique(errors.New(`duplicate key value violates unique constraint "x"`)) {
		t.Fatal("error text taken for a unique violation")
	}
}

// TestUnreachableIsUnavailable: once the database is gone, writes and
// reads fail with store.ErrUnavailable within the timeouts, not hang.
func TestUnreachableIsUnavailable(t *testing.T) {
	srv := pgtest.Start(t)
	s := openOn(t, freshDatabase(t, srv), store.Instance{Name: "a"})
	ctx := context.Background()
	if _, err := s.Sales().Begin(ctx, sale("000001")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Sales().Begin(ctx, sale("000002")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("begin with the database down: %v", err)
	}
	if err := s.Sales().Probe(ctx, "test"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("probe with the database down: %v", err)
	}
	if _, err := s.Lookup().Get(ctx, 1); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read with the database down: %v", err)
	}
	if err := s.Instances().Heartbeat(ctx, time.Now()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("heartbeat with the database down: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("failing took %s", d)
	}
}

// TestSchemaMustBeMigrated: Open refuses an empty database unless asked
// to migrate; migrating twice applies nothing the second time.
func TestSchemaMustBeMigrated(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t, "empty")
	ctx := context.Background()
	if _, err := Open(ctx, Options{DSN: dsn}); !errors.Is(err, ErrSchema) {
		t.Fatalf("open on an empty database: %v", err)
	}
	s, err := Open(ctx, Options{DSN: dsn, MigrateAtStart: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	applied, err := Migrate(ctx, dsn)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migration applied %v (%v)", applied, err)
	}
}

// TestMigrationsRacing: several migrators at once apply each version once.
func TestMigrationsRacing(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDatabase(t, "race")
	var wg sync.WaitGroup
	var total atomic.Int64
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied, err := Migrate(context.Background(), dsn)
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(len(applied)))
		}()
	}
	wg.Wait()
	if total.Load() != int64(Latest()) {
		t.Fatalf("%d migrations applied in all, want %d", total.Load(), Latest())
	}
}

// TestInstanceNumbers: each name keeps its number; names get distinct
// numbers; when all are taken a lapsed instance's number is reused.
func TestInstanceNumbers(t *testing.T) {
	srv := pgtest.Start(t)
	s := openOn(t, freshDatabase(t, srv), store.Instance{Name: "a"})
	ctx := context.Background()
	now := time.Now()
	seen := map[int]string{}
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("pod-%d", i)
		n, err := s.InstanceNumber(ctx, name, now)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[n]; dup {
			t.Fatalf("%s and %s both got %d", name, other, n)
		}
		seen[n] = name
	}
	if n, err := s.InstanceNumber(ctx, "pod-7", now); err != nil || seen[n] != "pod-7" {
		t.Fatalf("pod-7 again: %d %v", n, err)
	}
	if n, err := s.InstanceNumber(ctx, "pod-new", now); err != nil || n < 0 || n > 99 {
		t.Fatalf("a 101st instance: %d %v", n, err)
	}
}

func TestMaskDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://sw:s3cret@db:5432/switch?sslmode=disable", "postgres://sw:xxxxx@db:5432/switch?sslmode=disable"},
		{"host=db user=sw password=s3cret dbname=switch", "host=db user=sw password=xxxxx dbname=switch"},
		{"postgres://db/switch?password=s3cret", "postgres://db/switch?password=xxxxx"},
	} {
		if got := MaskDSN(tc.in); got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("MaskDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestGroupWithAFailingStatement: a statement the server rejects aborts
// its group's transaction; the others of the group are then written one
// by one and succeed, and only the bad one fails (not as ErrUnavailable:
// the database is fine).
func TestGroupWithAFailingStatement(t *testing.T) {
	srv := pgtest.Start(t)
	s := openOn(t, freshDatabase(t, srv), store.Instance{Name: "a"})
	var batch []*write
	for i, kind := range []string{"ok-1", "bad \xff not UTF-8", "ok-2"} {
		batch = append(batch, &write{op: store.OpEvent, sql: insertEvent, args: []any{int64(i + 1), int64(1), kind, "x"}, done: make(chan struct{})})
	}
	s.commit(batch)
	if batch[0].err != nil || batch[2].err != nil {
		t.Fatalf("good writes of the group failed: %v / %v", batch[0].err, batch[2].err)
	}
	if batch[1].err == nil || errors.Is(batch[1].err, store.ErrUnavailable) {
		t.Fatalf("the rejected statement: %v", batch[1].err)
	}
	for _, id := range []int64{1, 3} {
		if ev, err := s.Lookup().Events(context.Background(), id); err != nil || len(ev) != 1 {
			t.Fatalf("events of %d: %v %v", id, ev, err)
		}
	}
}

// TestOnCommitSeesEachGroupCommit: OnCommit is told of every commit with
// its writes (the journal commit-latency metric on PostgreSQL).
func TestOnCommitSeesEachGroupCommit(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := freshDatabase(t, srv)
	storetest.OnCommit(t, func(onCommit func(time.Duration, int, error)) store.Store {
		s, err := Open(context.Background(), Options{DSN: dsn, Instance: store.Instance{Name: "a"}, OnCommit: onCommit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
