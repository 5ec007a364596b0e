package tsp

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm/software"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/embedded/embeddedtest"
)

const card = "9410000000000005"

func newService(t testing.TB) (*Service, store.Tokens) {
	t.Helper()
	dir := t.TempDir()
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	h, err := software.Open(software.Options{KeyStore: filepath.Join(dir, "keys.json"), MasterKey: mk}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.EnsureDevKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := embeddedtest.OpenIn(t, dir).Tokens()
	t.Cleanup(func() { _ = h.Close() })
	s, err := New(Config{BIN: "9999", DataKey: "pan-data", HashKey: "pan-hash"}, v, h, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestIssueStoresOnlyCiphertext(t *testing.T) {
	s, v := newService(t)
	ctx := context.Background()
	rec, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: store.DeviceToken})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.Token, "9999") || !pan.Luhn(rec.Token) || len(rec.Token) != 16 {
		t.Fatalf("token %s… not a Luhn-valid number of the token range", rec.Token[:6])
	}
	stored, _ := v.Get(ctx, rec.Token)
	if strings.Contains(string(stored.PANCiphertext), card) || stored.MaskedPAN != "941000******0005" {
		t.Fatal("PAN stored in clear")
	}
	if got, _ := v.FindByPANHash(ctx, stored.PANHash); len(got) != 1 {
		t.Fatalf("PAN hash look-up found %d", len(got))
	}
	if !rec.ExpiresAt.Equal(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("device token expires %v, want the end of the card's expiry month", rec.ExpiresAt)
	}
}

func TestDetokenizeRules(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	issue := func(kind store.TokenKind, d store.Domain) string {
		rec, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: kind, Domain: d})
		if err != nil {
			t.Fatal(err)
		}
		return rec.Token
	}
	chip := Use{MerchantID: "MERCHANT0000001", EntryMode: "051"}
	dev := issue(store.DeviceToken, store.Domain{Merchants: []string{"MERCHANT0000001"}, EntryModes: []string{"05", "07"}})
	one := issue(store.OneTimeToken, store.Domain{})
	suspended := issue(store.DeviceToken, store.Domain{})
	if _, err := s.SetStatus(ctx, suspended, store.TokenSuspended); err != nil {
		t.Fatal(err)
	}
	expiring := issue(store.OneTimeToken, store.Domain{})
	tests := []struct {
		name  string
		token string
		use   Use
		at    time.Time
		want  error
	}{
		{"device in domain", dev, chip, now, nil},
		{"device again", dev, chip, now, nil},
		{"other merchant", dev, Use{MerchantID: "OTHER", EntryMode: "051"}, now, ErrOutsideDomain},
		{"magstripe not allowed", dev, Use{MerchantID: "MERCHANT0000001", EntryMode: "901"}, now, ErrOutsideDomain},
		{"one-time first use", one, chip, now, nil},
		{"one-time second use", one, chip, now, ErrTokenUsed},
		{"suspended", suspended, chip, now, ErrSuspended},
		{"one-time after TTL", expiring, chip, now.Add(3*time.Minute + time.Second), ErrTokenExpired},
		{"never issued", "9999000000000009", chip, now, ErrUnknownToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.now = func() time.Time { return tt.at }
			got, err := s.Detokenize(ctx, tt.token, tt.use)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && (got.PAN != card || got.Expiry != "3012") {
				t.Fatalf("detokenized to %s exp %s", pan.Mask(got.PAN), got.Expiry)
			}
		})
	}
	s.now = func() time.Time { return now }
	if _, err := s.SetStatus(ctx, dev, store.TokenDeleted); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Detokenize(ctx, dev, chip); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("deleted token: %v", err)
	}
	if _, err := s.SetStatus(ctx, dev, store.TokenActive); !errors.Is(err, ErrFinal) {
		t.Fatalf("resume after delete: %v", err)
	}
}

func TestIssueValidation(t *testing.T) {
	s, _ := newService(t)
	for name, req := range map[string]IssueRequest{
		"luhn":        {PAN: "9410000000000006", Expiry: "3012", Kind: store.DeviceToken},
		"short":       {PAN: "941000005", Expiry: "3012", Kind: store.DeviceToken},
		"token range": {PAN: "9999000000000009", Expiry: "3012", Kind: store.DeviceToken},
		"expired":     {PAN: card, Expiry: "2001", Kind: store.DeviceToken},
		"month 13":    {PAN: card, Expiry: "3013", Kind: store.DeviceToken},
		"kind":        {PAN: card, Expiry: "3012", Kind: "forever"},
		"entry mode":  {PAN: card, Expiry: "3012", Kind: store.DeviceToken, Domain: store.Domain{EntryModes: []string{"chip"}}},
	} {
		_, err := s.Issue(context.Background(), req)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
		if err != nil && strings.Contains(err.Error(), req.PAN) && len(req.PAN) > 12 {
			t.Errorf("%s: error text contains the PAN", name)
		}
	}
}

func TestConcurrentOneTimeUse(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	rec, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: store.OneTimeToken})
	if err != nil {
		t.Fatal(err)
	}
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Detokenize(ctx, rec.Token, Use{})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrTokenUsed):
				used.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 49 {
		t.Fatalf("%d succeeded, %d refused as used", ok.Load(), used.Load())
	}
}

// BenchmarkDetokenize reports the process's CPU per detokenization
// (cpu-µs/op) beside wall time: on a shared machine the wall time moves
// with other processes, the CPU much less.
func BenchmarkDetokenize(b *testing.B) {
	benchDetokenize(b, func(detokenize func() error) error { return detokenize() })
}

// BenchmarkDetokenizeFreshGoroutine is BenchmarkDetokenize with each
// detokenization on a goroutine of its own, as the terminal server ran
// each request before its workers (its stack starts small).
func BenchmarkDetokenizeFreshGoroutine(b *testing.B) {
	done := make(chan error)
	benchDetokenize(b, func(detokenize func() error) error {
		go func() { done <- detokenize() }()
		return <-done
	})
}

// benchDetokenize detokenizes one device token b.N times through run.
func benchDetokenize(b *testing.B, run func(detokenize func() error) error) {
	s, _ := newService(b)
	ctx := context.Background()
	rec, err := s.Issue(ctx, IssueRequest{PAN: card, Expiry: "3012", Kind: store.DeviceToken})
	if err != nil {
		b.Fatal(err)
	}
	detokenize := func() error {
		_, err := s.Detokenize(ctx, rec.Token, Use{})
		return err
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if err := run(detokenize); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
