// Package software is the embedded hsm backend: keys in a file wrapped under a master key, operations in process.
package software

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
)

// Options configures Open.
type Options struct {
	// KeyStore is the path of the key-store file. Required; no default. If
	// the file does not exist, Open creates an empty store there (and its
	// directory, mode 0700).
	KeyStore string
	// MasterKey is the 32-byte AES-256 key that wraps every key in the
	// store (see LoadMasterKey). Required; no default. Open keeps a copy
	// and Close zeroes it; the caller should zero its own.
	MasterKey []byte
}

// MasterKeySize is the length of Options.MasterKey in bytes.
const MasterKeySize = 32

// ErrMasterKeyMismatch is returned by Open when the master key is not the
// one the key store was written under.
var ErrMasterKeyMismatch = errors.New("master key does not match key store")

// errClosed is returned by every operation after Close.
var errClosed = errors.New("software hsm: closed")

// HSM is the software backend. It implements hsm.HSM and hsm.KeyManager
// and is safe for concurrent use.
//
// Lock order: wmu (serialises key-store writers) before mu. Operations
// hold mu for reading while they use key material, so Close (which holds
// it for writing) never zeroes a key in use.
type HSM struct {
	log  *zap.Logger
	path string

	wmu sync.Mutex // held by writers: ImportKey, GenerateKey, EnsureDevKeys, Close

	mu     sync.RWMutex
	master []byte
	wrap   cipher.AEAD       // AES-256-GCM under master, for key material
	keys   map[string][]*key // label -> versions, index version-1
	closed bool
}

var (
	_ hsm.HSM         = (*HSM)(nil)
	_ hsm.KeyManager  = (*HSM)(nil)
	_ hsm.KeyImporter = (*HSM)(nil)
)

// key is one version of a key: its description, clear material and the
// wrapped form written to the store.
type key struct {
	info     hsm.KeyInfo
	material []byte
	wrapped  []byte
	created  string      // RFC 3339, informational
	aead     cipher.AEAD // UsagePANData keys: AES-256-GCM, built once
}

// Open loads the key store at opts.KeyStore (creating an empty one if the
// file does not exist) and checks it against opts.MasterKey: a wrong master
// key, a key that does not unwrap or a store whose key list was changed
// outside the HSM is an error and nothing opens. log may be nil.
func Open(opts Options, log *zap.Logger) (*HSM, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.KeyStore == "" {
		return nil, errors.New("software hsm: no key store path")
	}
	if len(opts.MasterKey) != MasterKeySize {
		return nil, fmt.Errorf("software hsm: master key must be %d bytes, got %d", MasterKeySize, len(opts.MasterKey))
	}
	master := append([]byte(nil), opts.MasterKey...)
	wrap, err := newGCM(master)
	if err != nil {
		clear(master)
		return nil, fmt.Errorf("software hsm: master key: %w", err)
	}
	h := &HSM{
		log:    log.With(zap.String("key_store", opts.KeyStore)),
		path:   opts.KeyStore,
		master: master,
		wrap:   wrap,
		keys:   map[string][]*key{},
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		h.zero()
		return nil, fmt.Errorf("software hsm: creating key store directory: %w", err)
	}
	data, err := os.ReadFile(h.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := h.save(nil); err != nil {
			h.zero()
			return nil, err
		}
		h.log.Info("created empty key store")
	case err != nil:
		h.zero()
		return nil, fmt.Errorf("software hsm: reading key store: %w", err)
	default:
		if err := h.load(data); err != nil {
			h.zero()
			return nil, err
		}
		h.log.Info("opened key store", zap.Int("labels", len(h.keys)), zap.Int("keys", h.count()))
	}
	return h, nil
}

// Close zeroes the master key and all key material. Every later call
// fails; Close itself may be called again.
func (h *HSM) Close() error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.zero()
		h.closed = true
	}
	return nil
}

// zero wipes the master key and all key material; callers hold mu (or own
// h exclusively). The cached AEADs keep their own expanded key schedules,
// which Go cannot wipe; dropping them lets the collector reclaim them.
func (h *HSM) zero() {
	clear(h.master)
	h.master, h.wrap = nil, nil
	for _, versions := range h.keys {
		for _, k := range versions {
			clear(k.material)
			k.material, k.aead = nil, nil
		}
	}
	h.keys = nil
}

func (h *HSM) count() int {
	n := 0
	for _, v := range h.keys {
		n += len(v)
	}
	return n
}

// lookup returns the key ref names (version 0: the current one) if its
// usage is one of usages; callers hold mu for reading.
func (h *HSM) lookup(ref hsm.KeyRef, usages ...hsm.Usage) (*key, error) {
	if h.closed {
		return nil, errClosed
	}
	versions := h.keys[ref.Label]
	if len(versions) == 0 {
		return nil, fmt.Errorf("key %q: %w", ref.Label, hsm.ErrKeyNotFound)
	}
	v := ref.Version
	if v == 0 {
		v = len(versions)
	}
	if v < 0 || v > len(versions) {
		return nil, fmt.Errorf("key %q version %d: %w", ref.Label, ref.Version, hsm.ErrKeyNotFound)
	}
	k := versions[v-1]
	for _, u := range usages {
		if k.info.Usage == u {
			return k, nil
		}
	}
	return nil, fmt.Errorf("key %q version %d has usage %s, not %v: %w", ref.Label, v, k.info.Usage, usages, hsm.ErrWrongUsage)
}

// ref returns the key's label and version.
func (k *key) ref() hsm.KeyRef { return hsm.KeyRef{Label: k.info.Label, Version: k.info.Version} }

// Keys lists every version of every key, by label then version.
func (h *HSM) Keys(ctx context.Context) ([]hsm.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, errClosed
	}
	labels := make([]string, 0, len(h.keys))
	for l := range h.keys {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	out := make([]hsm.KeyInfo, 0, h.count())
	for _, l := range labels {
		for _, k := range h.keys[l] {
			out = append(out, cloneInfo(k.info))
		}
	}
	return out, nil
}

// EnsureDevKeys creates the keys the switch expects, if absent: the PAN
// data key hsm.LabelPANData (AES-256) and the PAN hash key
// hsm.LabelPANHash (HMAC-SHA-256, 32 bytes). It returns the keys it
// created (none when both exist). For development and demos: production
// keys come from a key ceremony.
func (h *HSM) EnsureDevKeys(ctx context.Context) ([]hsm.KeyInfo, error) {
	want := []hsm.GenerateKeyRequest{
		{Label: hsm.LabelPANData, Usage: hsm.UsagePANData, Algorithm: hsm.AES, Size: 32},
		{Label: hsm.LabelPANHash, Usage: hsm.UsagePANHash, Algorithm: hsm.HMAC, Size: 32},
	}
	var created []hsm.KeyInfo
	for _, req := range want {
		info, made, err := h.generate(ctx, req, true)
		if err != nil {
			return created, fmt.Errorf("software hsm: ensuring development key %q: %w", req.Label, err)
		}
		if made {
			h.log.Warn("created development key; production keys come from a key ceremony",
				zap.String("label", info.Label), zap.Int("version", info.Version),
				zap.String("usage", string(info.Usage)), zap.String("kcv", fmt.Sprintf("%X", info.KCV)))
			created = append(created, info)
		}
	}
	return created, nil
}
