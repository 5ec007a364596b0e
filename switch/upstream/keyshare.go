package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/store"
)

// Several switch instances share a store (docs/links.md, "Several
// instances"): an issuer's key change reaches one instance's link, and
// every other instance must translate PINs under the new key too. The
// instance that imports a key change records it in the store as received
// (the key under the ZMK and its KCV, never clear); every instance polls
// the latest record of its routes (AdoptRecordedKeys, at each heartbeat)
// and imports a key its HSM does not hold yet through its own HSM under
// its own ZMK, KCV checked. Until then it keeps the old key.

// KeyStore is the part of the store key changes are shared through.
type KeyStore interface {
	ZoneKeys() store.ZoneKeys
	Instance() store.Instance
}

// KeyChangeAdopted is the outcome label of a key change another instance
// recorded and this one imported.
const KeyChangeAdopted = "adopted"

// WithKeyStore shares the link's key changes with the other instances on
// the store ks returns (nil before the store is open): each one the link
// imports is recorded, and AdoptRecordedKey imports those recorded by
// others.
func WithKeyStore(ks func() KeyStore) Option {
	return func(l *Link) { l.shared.store = ks }
}

// keyShare is a link's side of shared key changes.
type keyShare struct {
	store func() KeyStore
	mu    sync.Mutex // one import of the route's key at a time
	seen  int64      // the last record this link has checked against its HSM
}

func (k *keyShare) keyStore() KeyStore {
	if k.store == nil {
		return nil
	}
	return k.store()
}

// recordKeyChange records a key change this link imported (info) for the
// other instances; the caller holds l.shared.mu. A failure is logged:
// this instance uses the new key either way, and the others keep the old
// one until a record reaches them.
func (l *Link) recordKeyChange(ctx context.Context, info hsm.KeyInfo, wrapped, kcv []byte) {
	ks := l.shared.keyStore()
	if ks == nil {
		return
	}
	me := ks.Instance().Name
	err := ks.ZoneKeys().Record(ctx, store.ZoneKey{Route: l.cfg.Name, Label: l.cfg.PIN.Key, ZMK: l.cfg.PIN.ZMK,
		Version: info.Version, Wrapped: wrapped, KCV: kcv[:3], Instance: me, At: time.Now()})
	if err != nil {
		l.log.Error("issuer key change not recorded: other instances keep the old zone PIN key", zap.String("zpk", info.Label),
			zap.Int("version", info.Version), zap.String("kcv", fmt.Sprintf("%X", info.KCV)), zap.Error(err))
		return
	}
	// This instance holds it: not imported again at the next poll.
	if rec, err := ks.ZoneKeys().Latest(ctx, l.cfg.Name); err == nil && string(rec.KCV) == string(kcv[:3]) {
		l.shared.seen = rec.ID
	}
}

// AdoptRecordedKey imports the route's latest recorded key change when
// this instance's HSM does not hold that key yet (another instance's link
// took it), and makes it current; nil when there is nothing to do. A key
// that does not import (KCV, ZMK) leaves the old key current and is tried
// again at the next call.
func (l *Link) AdoptRecordedKey(ctx context.Context) error {
	pin := l.cfg.PIN
	ks := l.shared.keyStore()
	if pin == nil || pin.ZMK == "" || ks == nil || l.keys == nil {
		return nil
	}
	// Read under the lock: a key change this link takes meanwhile is
	// never overtaken by an older record.
	l.shared.mu.Lock()
	defer l.shared.mu.Unlock()
	rec, err := ks.ZoneKeys().Latest(ctx, l.cfg.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("route %s: reading recorded key changes: %w", l.cfg.Name, err)
	}
	if rec.ID == l.shared.seen {
		return nil
	}
	h := l.keys()
	if h == nil {
		return nil
	}
	fields := []zap.Field{zap.String("zpk", pin.Key), zap.String("from_instance", rec.Instance),
		zap.Int("recorded_version", rec.Version), zap.String("kcv", fmt.Sprintf("%X", rec.KCV))}
	if rec.Label != pin.Key || rec.ZMK != pin.ZMK {
		l.shared.seen = rec.ID
		l.log.Warn("recorded key change is for other key labels than the route's: not imported",
			append(fields, zap.String("recorded_zpk", rec.Label), zap.String("recorded_zmk", rec.ZMK))...)
		return nil
	}
	held, err := holdsKey(ctx, h, pin.Key, rec.KCV)
	if err != nil {
		return fmt.Errorf("route %s: listing the HSM's keys: %w", l.cfg.Name, err)
	}
	if held {
		// This instance's own key change, or a shared HSM that has it.
		l.shared.seen = rec.ID
		return nil
	}
	info, err := hsm.ImportUnderKEK(ctx, h, hsm.ImportUnderKEKRequest{
		KEK: hsm.KeyRef{Label: pin.ZMK}, Label: pin.Key, Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES,
		Wrapped: rec.Wrapped, KCV: rec.KCV,
	})
	if err != nil {
		l.metrics.keyChanges.changes.WithLabelValues(l.cfg.Name, KeyChangeRefused).Inc()
		return fmt.Errorf("route %s: importing the key change recorded by %s (KCV %X): old key stays: %w", l.cfg.Name, rec.Instance, rec.KCV, err)
	}
	l.shared.seen = rec.ID
	l.metrics.keyChanges.changes.WithLabelValues(l.cfg.Name, KeyChangeAdopted).Inc()
	l.log.Info("issuer key change recorded by another instance: new zone PIN key current", append(fields, zap.Int("version", info.Version))...)
	return nil
}

// holdsKey reports whether any version of label in h has check value
// kcv; false when h cannot list its keys (the key is imported then).
func holdsKey(ctx context.Context, h hsm.HSM, label string, kcv []byte) (bool, error) {
	for h != nil {
		if km, ok := h.(hsm.KeyManager); ok {
			keys, err := km.Keys(ctx)
			if err != nil {
				return false, err
			}
			for _, k := range keys {
				if k.Label == label && len(k.KCV) >= 3 && len(kcv) >= 3 && string(k.KCV[:3]) == string(kcv[:3]) {
					return true, nil
				}
			}
			return false, nil
		}
		u, ok := h.(interface{ Unwrap() hsm.HSM })
		if !ok {
			break
		}
		h = u.Unwrap()
	}
	return false, nil
}

// AdoptRecordedKeys is AdoptRecordedKey over links: the poll each
// instance runs at its heartbeat.
func AdoptRecordedKeys(ctx context.Context, links map[string]*Link) error {
	var errs []error
	for _, l := range links {
		if err := l.AdoptRecordedKey(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
