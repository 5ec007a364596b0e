package upstream

import (
	"context"
	"sync"
	"testing"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/specs/codes"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/store"
)

// memZoneKeys is a KeyStore whose ZoneKeys live in memory.
type memZoneKeys struct {
	mu   sync.Mutex
	recs []store.ZoneKey
}

func (m *memZoneKeys) ZoneKeys() store.ZoneKeys { return m }
func (m *memZoneKeys) Instance() store.Instance { return store.Instance{Name: "sw-test"} }

func (m *memZoneKeys) Record(_ context.Context, k store.ZoneKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k.ID = int64(len(m.recs) + 1)
	m.recs = append(m.recs, k)
	return nil
}

func (m *memZoneKeys) Latest(_ context.Context, route string) (store.ZoneKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.recs) - 1; i >= 0; i-- {
		if m.recs[i].Route == route {
			return m.recs[i], nil
		}
	}
	return store.ZoneKey{}, store.ErrNotFound
}

// currentKey is label's current (highest) version in h.
func currentKey(t *testing.T, h hsm.KeyManager, label string) hsm.KeyInfo {
	t.Helper()
	keys, err := h.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var cur hsm.KeyInfo
	for _, k := range keys {
		if k.Label == label && k.Version > cur.Version {
			cur = k
		}
	}
	return cur
}

// TestAdoptRecordedKey: a key change another instance recorded (the key
// under the ZMK and its KCV) is imported through this instance's HSM and
// made current, once; a key the HSM holds already (its own key change, a
// shared HSM) is not imported again; a key that does not import leaves
// the old key current and is tried again; a record for other labels is
// skipped; no record, nothing.
func TestAdoptRecordedKey(t *testing.T) {
	newZPK := []byte("NEWZPK0123456789")
	record := func(t *testing.T, zmk []byte, mutate func(*store.ZoneKey)) store.ZoneKey {
		wrapped, err := paycrypto.EncryptKeyECB(zmk, newZPK)
		if err != nil {
			t.Fatal(err)
		}
		kcv, err := paycrypto.KCV(string(hsm.TDES), newZPK)
		if err != nil {
			t.Fatal(err)
		}
		k := store.ZoneKey{Route: "card-a", Label: "zpk-test", ZMK: "zmk-test", Version: 7, Wrapped: wrapped, KCV: kcv[:3], Instance: "sw-other"}
		if mutate != nil {
			mutate(&k)
		}
		return k
	}
	tests := []struct {
		name string
		// records are the store's key changes; held: the HSM has the new
		// key already.
		records     func(t *testing.T, zmk []byte) []store.ZoneKey
		held        bool
		wantErr     bool
		wantVersion int
		wantMetric  map[string]float64
	}{
		{name: "no record", records: func(*testing.T, []byte) []store.ZoneKey { return nil }, wantVersion: 1},
		{name: "recorded by another instance", records: func(t *testing.T, zmk []byte) []store.ZoneKey {
			return []store.ZoneKey{record(t, zmk, nil)}
		}, wantVersion: 2, wantMetric: map[string]float64{KeyChangeAdopted: 1}},
		{name: "held already", held: true, records: func(t *testing.T, zmk []byte) []store.ZoneKey {
			return []store.ZoneKey{record(t, zmk, nil)}
		}, wantVersion: 2},
		{name: "wrong KCV", records: func(t *testing.T, zmk []byte) []store.ZoneKey {
			return []store.ZoneKey{record(t, zmk, func(k *store.ZoneKey) { k.KCV = []byte{1, 2, 3} })}
		}, wantErr: true, wantVersion: 1, wantMetric: map[string]float64{KeyChangeRefused: 2}},
		{name: "other labels", records: func(t *testing.T, zmk []byte) []store.ZoneKey {
			return []store.ZoneKey{record(t, zmk, func(k *store.ZoneKey) { k.Label = "zpk-old" })}
		}, wantVersion: 1},
		{name: "other route", records: func(t *testing.T, zmk []byte) []store.ZoneKey {
			return []store.ZoneKey{record(t, zmk, func(k *store.ZoneKey) { k.Route = "card-b" })}
		}, wantVersion: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, zmk := keyChangeHSM(t)
			ks := &memZoneKeys{}
			for _, r := range tc.records(t, zmk) {
				_ = ks.Record(context.Background(), r)
			}
			if tc.held {
				if _, err := h.ImportKey(context.Background(), hsm.ImportKeyRequest{Label: "zpk-test", Usage: hsm.UsageZonePIN,
					Algorithm: hsm.TDES, Material: newZPK}); err != nil {
					t.Fatal(err)
				}
			}
			c := config.Default()
			rc := c.Routes[0]
			rc.Name, rc.PIN = "card-a", &config.PINKey{Key: "zpk-test", ZMK: "zmk-test"}
			m := NewMetrics(prometheus.NewRegistry())
			l, err := New(rc, zap.NewNop(), m, WithKeyExchange(func() hsm.HSM { return h }),
				WithKeyStore(func() KeyStore { return ks }))
			if err != nil {
				t.Fatal(err)
			}
			// Twice: the second poll finds nothing new, or tries again.
			for i := range 2 {
				err := AdoptRecordedKeys(context.Background(), map[string]*Link{rc.Name: l})
				if (err != nil) != tc.wantErr {
					t.Fatalf("poll %d: %v, want an error: %v", i+1, err, tc.wantErr)
				}
			}
			if got := currentKey(t, h, "zpk-test"); got.Version != tc.wantVersion {
				t.Errorf("zpk-test is at version %d, want %d", got.Version, tc.wantVersion)
			}
			for _, outcome := range []string{KeyChangeAdopted, KeyChangeRefused, KeyChangeImported} {
				if got := counterValue(t, m.keyChanges.changes.WithLabelValues(rc.Name, outcome)); got != tc.wantMetric[outcome] {
					t.Errorf("key changes %s: %v, want %v", outcome, got, tc.wantMetric[outcome])
				}
			}
		})
	}
}

// TestKeyChangeIsRecorded: an issuer key change the link imports is
// recorded as received (under the ZMK, with its KCV and the version the
// HSM gave it) for the other instances, and the next poll does not import
// it again.
func TestKeyChangeIsRecorded(t *testing.T) {
	h, zmk := keyChangeHSM(t)
	ks := &memZoneKeys{}
	c := config.Default()
	rc := c.Routes[0]
	rc.PIN = &config.PINKey{Key: "zpk-test", ZMK: "zmk-test"}
	l, err := New(rc, zap.NewNop(), NewMetrics(prometheus.NewRegistry()), WithKeyExchange(func() hsm.HSM { return h }),
		WithKeyStore(func() KeyStore { return ks }))
	if err != nil {
		t.Fatal(err)
	}
	newZPK := []byte("NEWZPK0123456789")
	field := keyChangeField(t, zmk, newZPK, false)
	msg := iso8583.NewMessage(l.Spec())
	if err := msg.Field(KeyExchangeField, field); err != nil {
		t.Fatal(err)
	}
	if rc := l.applyKeyChange(msg); rc != codes.Approved {
		t.Fatalf("key change answered %s, want 00", rc)
	}
	rec, err := ks.Latest(context.Background(), rc.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatKeyExchange(rec.Wrapped, rec.KCV); got != field || rec.Version != 2 || rec.Label != "zpk-test" ||
		rec.ZMK != "zmk-test" || rec.Instance != "sw-test" || rec.At.IsZero() {
		t.Fatalf("recorded %+v", rec)
	}
	if err := l.AdoptRecordedKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := currentKey(t, h, "zpk-test"); got.Version != 2 {
		t.Fatalf("zpk-test at version %d after its own record was polled, want 2", got.Version)
	}
}
