// Package payshield is the hsm backend for payment HSMs that speak the
// Thales payShield host-command protocol over TCP (and for the hsmsim
// emulator): PIN translation (CA, CC, G0) and MACs (M6, M8) run inside the
// HSM; the switch holds its keys only as key blocks under the HSM's LMK,
// in a key-store file, and sends them with each command. It serves the
// PIN/MAC role; PANs at rest stay on the software or PKCS#11 backend
// (EncryptPAN, DecryptPAN and HashPAN return hsm.ErrUnsupported).
//
// Key scheme: key-block LMK, X9.143 (TR-31) version D blocks under an
// AES-256 LMK, presented with the payShield key-block prefix 'S'; keys
// exchanged under a ZMK are version D blocks under an AES ZMK, prefix
// 'R'. Clear keys are refused (hsm.ErrClearKeyRefused): keys enter
// generated (A0), imported under a ZMK (A6, ImportWrappedKey; FA for a
// zone PIN key an issuer sends under a TDES ZMK, ImportUnderKEK) or as LMK
// blocks from a key ceremony (ImportLMKKey).
package payshield

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

// Name is the backend's registry name.
const Name = "payshield"

// Register adds the payshield backend (PIN/MAC role) to r; its options
// are Options.
func Register(r *hsm.Registry) {
	hsm.Register(r, Name, hsm.RolePINMAC, func(ctx context.Context, opts Options, deps hsm.Deps) (hsm.HSM, error) {
		h, err := Open(ctx, opts, deps)
		if err != nil {
			return nil, err
		}
		return h, nil
	})
}

// HSM is the payshield backend; safe for concurrent use.
type HSM struct {
	opts Options
	log  *zap.Logger
	pool *pool

	wmu  sync.Mutex // serialises key-store writers
	mu   sync.RWMutex
	keys map[string][]StoredKey
}

var (
	_ hsm.HSM                = (*HSM)(nil)
	_ hsm.KeyManager         = (*HSM)(nil)
	_ hsm.WrappedKeyImporter = (*HSM)(nil)
)

// Open reads the key store and prepares the pool; it checks the HSM with
// NC but does not fail when it cannot reach it (the switch answers 91
// until it can), only logs.
func Open(ctx context.Context, opts Options, deps hsm.Deps) (*HSM, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := deps.Log
	if log == nil {
		log = zap.NewNop()
	}
	stored, err := ReadKeyStore(opts.KeyStore)
	if err != nil {
		return nil, err
	}
	h := &HSM{opts: opts, log: log, keys: map[string][]StoredKey{}}
	for _, k := range stored {
		if k.Version != len(h.keys[k.Label])+1 {
			return nil, fmt.Errorf("payshield: key store %s: %s version %d out of order", opts.KeyStore, k.Label, k.Version)
		}
		h.keys[k.Label] = append(h.keys[k.Label], k)
	}
	if h.pool, err = newPool(opts, log, deps.Metrics); err != nil {
		return nil, err
	}
	if d, err := h.Diagnostics(ctx); err != nil {
		log.Warn("payment HSM not reachable yet; PIN and MAC operations fail until it is", zap.String("addr", opts.Addr), zap.Error(err))
	} else {
		log.Info("payment HSM answers", zap.String("addr", opts.Addr), zap.String("lmk_check", d.LMKCheck), zap.String("firmware", d.Firmware))
	}
	return h, nil
}

// Close closes the connections.
func (h *HSM) Close() error {
	h.pool.close()
	return nil
}

// Diagnostics sends NC: the HSM's LMK check value and firmware.
func (h *HSM) Diagnostics(ctx context.Context) (hostcmd.DiagnosticsAnswer, error) {
	body, err := h.command(ctx, &hostcmd.Diagnostics{})
	if err != nil {
		return hostcmd.DiagnosticsAnswer{}, err
	}
	return hostcmd.ParseDiagnostics(body)
}

// command runs a command: the answer's body when the error code is 00, a
// *hsm.DeviceError otherwise.
func (h *HSM) command(ctx context.Context, cmd hostcmd.Command) ([]byte, error) {
	resp, err := h.pool.do(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if resp.Error != hostcmd.OK {
		return nil, &hsm.DeviceError{Backend: Name, Command: cmd.Code(), Code: resp.Error}
	}
	return resp.Body, nil
}

// deviceCode returns the HSM's error code of err, "" if it is not one.
func deviceCode(err error) string {
	var de *hsm.DeviceError
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}

// lookup returns a key version (0: current) if its usage is one of usages.
func (h *HSM) lookup(ref hsm.KeyRef, usages ...hsm.Usage) (StoredKey, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	versions := h.keys[ref.Label]
	if len(versions) == 0 {
		return StoredKey{}, fmt.Errorf("key %q: %w", ref.Label, hsm.ErrKeyNotFound)
	}
	v := ref.Version
	if v == 0 {
		v = len(versions)
	}
	if v < 0 || v > len(versions) {
		return StoredKey{}, fmt.Errorf("key %q version %d: %w", ref.Label, ref.Version, hsm.ErrKeyNotFound)
	}
	k := versions[v-1]
	if !slices.Contains(usages, k.Usage) {
		return StoredKey{}, fmt.Errorf("key %q version %d has usage %s, not %v: %w", ref.Label, v, k.Usage, usages, hsm.ErrWrongUsage)
	}
	return k, nil
}

func (k StoredKey) info() hsm.KeyInfo {
	kcv, _ := hex.DecodeString(k.KCV)
	return hsm.KeyInfo{Label: k.Label, Version: k.Version, Usage: k.Usage, Algorithm: k.Algorithm, KCV: kcv}
}

func (k StoredKey) wire() hostcmd.Key {
	if k.Block == "" {
		return hostcmd.Key{}
	}
	return hostcmd.Key{Scheme: k.Block[0], Block: k.Block[1:]}
}

// Keys lists every version of every key, by label then version.
func (h *HSM) Keys(ctx context.Context) ([]hsm.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []hsm.KeyInfo
	for _, k := range h.snapshot() {
		out = append(out, k.info())
	}
	return out, nil
}

// add stores an LMK key block as the next version of label after checking
// that its header suits usage and algorithm.
func (h *HSM) add(label string, u hsm.Usage, alg hsm.Algorithm, key hostcmd.Key, kcv string) (hsm.KeyInfo, error) {
	if err := hsm.CheckLabel(label); err != nil {
		return hsm.KeyInfo{}, err
	}
	want, err := hsm.KeyBlockHeader(u, alg)
	if err != nil {
		return hsm.KeyInfo{}, err
	}
	got, err := paycrypto.ParseKeyBlockHeader(key.Block)
	if err != nil || key.Scheme != 'S' {
		return hsm.KeyInfo{}, fmt.Errorf("not a key block under the LMK: %w", paycrypto.ErrKeyBlock)
	}
	if got.Usage != want.Usage || got.Algorithm != want.Algorithm {
		return hsm.KeyInfo{}, fmt.Errorf("key block has usage %s algorithm %c, %s %s needs %s %c: %w",
			got.Usage, got.Algorithm, u, alg, want.Usage, want.Algorithm, hsm.ErrWrongUsage)
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.mu.RLock()
	prev := h.keys[label]
	h.mu.RUnlock()
	if len(prev) > 0 && prev[len(prev)-1].Usage != u {
		return hsm.KeyInfo{}, fmt.Errorf("label has usage %s, not %s: %w", prev[len(prev)-1].Usage, u, hsm.ErrWrongUsage)
	}
	k := StoredKey{Label: label, Version: len(prev) + 1, Usage: u, Algorithm: alg, KCV: strings.ToUpper(kcv), Block: key.String()}
	all := h.snapshot()
	all = append(all, k)
	if err := WriteKeyStore(h.opts.KeyStore, all); err != nil {
		return hsm.KeyInfo{}, err
	}
	h.mu.Lock()
	h.keys[label] = append(h.keys[label], k)
	h.mu.Unlock()
	h.log.Info("key stored under the LMK", zap.String("label", label), zap.Int("version", k.Version),
		zap.String("usage", string(u)), zap.String("kcv", k.KCV))
	return k.info(), nil
}

// snapshot returns every stored key in file order (label, version).
func (h *HSM) snapshot() []StoredKey {
	h.mu.RLock()
	defer h.mu.RUnlock()
	labels := make([]string, 0, len(h.keys))
	for l := range h.keys {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	var all []StoredKey
	for _, l := range labels {
		all = append(all, h.keys[l]...)
	}
	return all
}

// ImportKey refuses clear key material: hsm.ErrClearKeyRefused.
func (h *HSM) ImportKey(_ context.Context, req hsm.ImportKeyRequest) (hsm.KeyInfo, error) {
	return hsm.KeyInfo{}, fmt.Errorf("payshield: import key %q: %w", req.Label, hsm.ErrClearKeyRefused)
}

// ImportWrappedKey imports a key block under a ZMK the store holds (A6):
// the HSM re-encrypts it under its LMK.
func (h *HSM) ImportWrappedKey(ctx context.Context, req hsm.ImportWrappedKeyRequest) (hsm.KeyInfo, error) {
	zmk, err := h.lookup(req.KEK, hsm.UsageKEK)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import key %q: %w", req.Label, err)
	}
	if _, err := hsm.KeyBlockHeader(req.Usage, req.Algorithm); err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import key %q: %w", req.Label, err)
	}
	if err := hsm.CheckLabel(req.Label); err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import key: %w", err)
	}
	body, err := h.command(ctx, &hostcmd.ImportKey{KeyType: "FFF", ZMK: zmk.wire(), Key: hostcmd.Key{Scheme: 'R', Block: req.Block}, Scheme: 'S'})
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import key %q under %s: %w", req.Label, zmk.Label, err)
	}
	a, err := hostcmd.ParseKeyAnswer(body, true, false)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import key %q: answer: %w", req.Label, err)
	}
	info, err := h.add(req.Label, req.Usage, req.Algorithm, a.LMK, a.KCV)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import key %q: %w", req.Label, err)
	}
	return info, nil
}

// ImportLMKKey stores a key that is already under the LMK (from a key
// ceremony, or the HSM's console) after the HSM vouches for it (BU). When
// wantKCV is set, the HSM's check value must equal it or nothing is
// stored (hsm.ErrKCVMismatch).
func (h *HSM) ImportLMKKey(ctx context.Context, label string, u hsm.Usage, alg hsm.Algorithm, block, wantKCV string) (hsm.KeyInfo, error) {
	key := hostcmd.Key{}
	if block != "" {
		key = hostcmd.Key{Scheme: block[0], Block: block[1:]}
	}
	body, err := h.command(ctx, &hostcmd.KeyCheckValue{KeyTypeCode: "FF", LengthFlag: 'F', Key: key})
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import LMK key %q: %w", label, err)
	}
	a, err := hostcmd.ParseKeyAnswer(body, false, false)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import LMK key %q: answer: %w", label, err)
	}
	if wantKCV != "" && subtle.ConstantTimeCompare([]byte(strings.ToUpper(strings.TrimSpace(wantKCV))), []byte(strings.ToUpper(a.KCV))) != 1 {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import LMK key %q: the HSM's KCV %s is not %s: nothing stored: %w", label, a.KCV, wantKCV, hsm.ErrKCVMismatch)
	}
	info, err := h.add(label, u, alg, key, a.KCV)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import LMK key %q: %w", label, err)
	}
	return info, nil
}

// GenerateKey has the HSM generate a key (A0) and stores it under the LMK.
func (h *HSM) GenerateKey(ctx context.Context, req hsm.GenerateKeyRequest) (hsm.KeyInfo, error) {
	info, _, err := h.generate(ctx, req, nil)
	return info, err
}

// generate runs A0 (mode 1 with zmk) and stores the key under the LMK.
func (h *HSM) generate(ctx context.Context, req hsm.GenerateKeyRequest, zmk *StoredKey) (hsm.KeyInfo, hostcmd.KeyAnswer, error) {
	fail := func(err error) (hsm.KeyInfo, hostcmd.KeyAnswer, error) {
		return hsm.KeyInfo{}, hostcmd.KeyAnswer{}, fmt.Errorf("payshield: generate key %q: %w", req.Label, err)
	}
	hdr, err := hsm.KeyBlockHeader(req.Usage, req.Algorithm)
	if err != nil {
		return fail(err)
	}
	size := req.Size
	if size == 0 {
		size = map[byte]int{'T': 16, 'A': 32, 'H': 32}[hdr.Algorithm]
	}
	code := hostcmd.AlgorithmCode(hdr.Algorithm, size)
	if code == "" {
		return fail(fmt.Errorf("%d-byte %s key is not valid", size, req.Algorithm))
	}
	if err := hsm.CheckLabel(req.Label); err != nil {
		return fail(err)
	}
	cmd := &hostcmd.GenerateKey{Mode: '0', KeyType: "FFF", Scheme: 'S', Attr: hostcmd.KeyAttributes{
		Usage: hdr.Usage, Algorithm: code, ModeOfUse: hdr.ModeOfUse, Version: hdr.Version, Exportability: hdr.Exportability}}
	if zmk != nil {
		cmd.Mode, cmd.ZMK = '1', zmk.wire()
	}
	body, err := h.command(ctx, cmd)
	if err != nil {
		return fail(err)
	}
	a, err := hostcmd.ParseKeyAnswer(body, true, zmk != nil)
	if err != nil {
		return fail(fmt.Errorf("answer: %w", err))
	}
	info, err := h.add(req.Label, req.Usage, req.Algorithm, a.LMK, a.KCV)
	if err != nil {
		return fail(err)
	}
	return info, a, nil
}

// GenerateKeyForExport has the HSM generate a key and return it both
// under the LMK (stored, as GenerateKey) and under the ZMK zmk (A0 mode
// 1): the X9.143 block to send the other party, whose HSM imports it
// under the same ZMK. Only exportable usages (not BDKs) may leave.
func (h *HSM) GenerateKeyForExport(ctx context.Context, req hsm.GenerateKeyRequest, zmk hsm.KeyRef) (hsm.KeyInfo, string, error) {
	kek, err := h.lookup(zmk, hsm.UsageKEK)
	if err != nil {
		return hsm.KeyInfo{}, "", fmt.Errorf("payshield: generate key %q for export: %w", req.Label, err)
	}
	info, a, err := h.generate(ctx, req, &kek)
	if err != nil {
		return hsm.KeyInfo{}, "", err
	}
	return info, a.ZMK.Block, nil
}
