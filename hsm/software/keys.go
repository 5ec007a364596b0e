package software

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// checkLabel is hsm.CheckLabel.
func checkLabel(label string) error { return hsm.CheckLabel(label) }

// keySizes lists the permitted algorithms and sizes of each usage.
var keySizes = hsm.StandardKeySizes()

// checkKey checks that material fits usage and algorithm. A usage and
// algorithm that do not go together wrap hsm.ErrWrongUsage.
func checkKey(u hsm.Usage, alg hsm.Algorithm, material []byte) error {
	return keySizes.Check(u, alg, len(material))
}

// kcv is the key check value: paycrypto.KCV for TDES and AES; for HMAC
// keys the first 3 bytes of HMAC-SHA-256 over 16 zero bytes.
func kcv(alg hsm.Algorithm, material []byte) ([]byte, error) {
	if alg == hsm.HMAC {
		m := hmac.New(sha256.New, material)
		m.Write(make([]byte, 16))
		return m.Sum(nil)[:3], nil
	}
	return paycrypto.KCV(string(alg), material)
}

// newKey builds a key from checked material, which it takes over.
func newKey(label string, version int, u hsm.Usage, alg hsm.Algorithm, material []byte) (*key, error) {
	check, err := kcv(alg, material)
	if err != nil {
		return nil, err
	}
	k := &key{
		info:     hsm.KeyInfo{Label: label, Version: version, Usage: u, Algorithm: alg, KCV: check},
		material: material,
	}
	if u == hsm.UsagePANData {
		if k.aead, err = newGCM(material); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func cloneInfo(i hsm.KeyInfo) hsm.KeyInfo {
	i.KCV = slices.Clone(i.KCV)
	return i
}

func sortedLabels(m map[string][]*key) []string {
	labels := make([]string, 0, len(m))
	for l := range m {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	return labels
}

// ImportKey adds clear key material as a new version of req.Label (version
// 1 for a new label) and makes it current. A label keeps its usage across
// versions; the algorithm may change (a TDES ZPK migrating to AES).
func (h *HSM) ImportKey(ctx context.Context, req hsm.ImportKeyRequest) (hsm.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return hsm.KeyInfo{}, err
	}
	material := slices.Clone(req.Material)
	info, _, err := h.add(req.Label, req.Usage, req.Algorithm, material, false, "imported")
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("software hsm: import key %q: %w", req.Label, err)
	}
	return info, nil
}

// ImportUnderKEK decrypts req.Wrapped under the TDES zone master key
// req.KEK (TDES ECB, paycrypto.DecryptKeyECB), checks its KCV against
// req.KCV and adds it as a new version of req.Label. A key whose KCV does
// not match wraps hsm.ErrKCVMismatch and is not stored.
func (h *HSM) ImportUnderKEK(ctx context.Context, req hsm.ImportUnderKEKRequest) (hsm.KeyInfo, error) {
	fail := func(err error) (hsm.KeyInfo, error) {
		return hsm.KeyInfo{}, fmt.Errorf("software hsm: import key %q under %q: %w", req.Label, req.KEK.Label, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if req.Algorithm != hsm.TDES {
		return fail(fmt.Errorf("a key under a ZMK in ECB form is TDES, not %s: %w", req.Algorithm, hsm.ErrUnsupported))
	}
	if len(req.KCV) < 3 {
		return fail(fmt.Errorf("a key check value of at least 3 bytes is required, got %d: %w", len(req.KCV), hsm.ErrKCVMismatch))
	}
	h.mu.RLock()
	zmk, err := h.lookup(req.KEK, hsm.UsageKEK)
	var kekMaterial []byte
	if err == nil {
		if zmk.info.Algorithm != hsm.TDES {
			err = fmt.Errorf("ZMK is %s, the ECB form needs TDES: %w", zmk.info.Algorithm, hsm.ErrWrongUsage)
		} else {
			kekMaterial = slices.Clone(zmk.material)
		}
	}
	h.mu.RUnlock()
	if err != nil {
		return fail(err)
	}
	material, err := paycrypto.DecryptKeyECB(kekMaterial, req.Wrapped)
	clear(kekMaterial)
	if err != nil {
		return fail(err)
	}
	check, err := kcv(req.Algorithm, material)
	if err != nil {
		clear(material)
		return fail(err)
	}
	if !hmac.Equal(check, req.KCV[:3]) {
		clear(material)
		return fail(fmt.Errorf("KCV %X sent, key has another: %w", req.KCV[:3], hsm.ErrKCVMismatch))
	}
	info, _, err := h.add(req.Label, req.Usage, req.Algorithm, material, false, "imported under "+req.KEK.Label)
	if err != nil {
		return fail(err)
	}
	return info, nil
}

// GenerateKey creates a random key of req.Size bytes (0: 32 for AES and
// HMAC, 16 for TDES) as a new version of req.Label. Generated TDES keys
// have odd parity.
func (h *HSM) GenerateKey(ctx context.Context, req hsm.GenerateKeyRequest) (hsm.KeyInfo, error) {
	info, _, err := h.generate(ctx, req, false)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("software hsm: generate key %q: %w", req.Label, err)
	}
	return info, nil
}

// generate creates a random key; with ifAbsent it does nothing (made is
// false) when the label exists with the requested usage.
func (h *HSM) generate(ctx context.Context, req hsm.GenerateKeyRequest, ifAbsent bool) (info hsm.KeyInfo, made bool, err error) {
	if err := ctx.Err(); err != nil {
		return hsm.KeyInfo{}, false, err
	}
	size := cmp.Or(req.Size, keySizes.Default(req.Usage, req.Algorithm))
	if size <= 0 || size > 64 {
		return hsm.KeyInfo{}, false, fmt.Errorf("key size %d bytes is not valid", size)
	}
	material := make([]byte, size)
	if _, err := rand.Read(material); err != nil {
		return hsm.KeyInfo{}, false, fmt.Errorf("reading random key material: %w", err)
	}
	if req.Algorithm == hsm.TDES {
		paycrypto.SetOddParity(material)
	}
	return h.add(req.Label, req.Usage, req.Algorithm, material, ifAbsent, "generated")
}

// add stores material (which it takes over and zeroes on failure) as the
// next version of label: checked, wrapped, written to the key store, then
// made visible. ifAbsent returns the current key instead, unchanged, when
// the label exists.
func (h *HSM) add(label string, u hsm.Usage, alg hsm.Algorithm, material []byte, ifAbsent bool, how string) (info hsm.KeyInfo, made bool, err error) {
	defer func() {
		if !made {
			clear(material)
		}
	}()
	if err := checkLabel(label); err != nil {
		return hsm.KeyInfo{}, false, err
	}
	if err := checkKey(u, alg, material); err != nil {
		return hsm.KeyInfo{}, false, err
	}

	h.wmu.Lock()
	defer h.wmu.Unlock()
	// Writers hold wmu, so h.keys cannot change under us; reading it
	// without mu is safe (readers never write).
	if h.closed {
		return hsm.KeyInfo{}, false, errClosed
	}
	prev := h.keys[label]
	if len(prev) > 0 {
		if cur := prev[len(prev)-1].info; cur.Usage != u {
			return hsm.KeyInfo{}, false, fmt.Errorf("label has usage %s, not %s: %w", cur.Usage, u, hsm.ErrWrongUsage)
		} else if ifAbsent {
			return cloneInfo(cur), false, nil
		}
	}
	k, err := newKey(label, len(prev)+1, u, alg, material)
	if err != nil {
		return hsm.KeyInfo{}, false, err
	}
	k.created = time.Now().UTC().Format(time.RFC3339)
	if k.wrapped, err = h.wrapKey(k.info, material); err != nil {
		return hsm.KeyInfo{}, false, fmt.Errorf("wrapping: %w", err)
	}
	if err := h.save(k); err != nil {
		return hsm.KeyInfo{}, false, err
	}

	h.mu.Lock()
	h.keys[label] = append(h.keys[label], k)
	h.mu.Unlock()

	h.log.Info("key "+how, zap.String("label", label), zap.Int("version", k.info.Version),
		zap.String("usage", string(u)), zap.String("algorithm", string(alg)),
		zap.String("kcv", fmt.Sprintf("%X", k.info.KCV)))
	return cloneInfo(k.info), true, nil
}
