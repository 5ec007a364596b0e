//go:build cgo

package pkcs11

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	p11 "github.com/miekg/pkcs11"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
)

// Key objects. Every version of a key is one or more token objects
// (CKO_SECRET_KEY, CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not
// CKA_EXTRACTABLE, not CKA_MODIFIABLE, CKA_ALLOWED_MECHANISMS set):
//
//	CKA_LABEL  <label>/v<version>          the key ("key" part)
//	           <label>/v<version>#<part>   a hidden companion object
//	CKA_ID     kbpay1|<usage>|<algorithm>|<size>|<part>
//
// Parts: "key"; "k2" and "key" of a TDES MAC key are its halves K2 and K1
// as single-DES keys (the retail MAC is single-DES CBC under K1, then
// decipher under K2 and encipher under K1: no PKCS#11 mechanism does it in
// one go); "variant" of a TDES BDK is the BDK XOR
// C0C0C0C000000000C0C0C0C000000000, the key that enciphers the right half
// of the DUKPT initial key. Labels are letters, digits, '.', '_' and '-',
// so "/v" and "#" are unambiguous.

const idPrefix = "kbpay1"

const (
	partKey     = "key"
	partK2      = "k2"
	partVariant = "variant"
)

// tdesKeyVariant is the X9.24-1 key variant XORed into a TDES BDK.
var tdesKeyVariant = [16]byte{0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0}

// key is one version of a key: its description and object handles.
type key struct {
	info    hsm.KeyInfo
	size    int
	obj     p11.ObjectHandle // the key; K1 of a TDES MAC key
	k2      p11.ObjectHandle // TDES MAC key: K2
	variant p11.ObjectHandle // TDES BDK: BDK XOR the key variant
}

func (k *key) ref() hsm.KeyRef { return hsm.KeyRef{Label: k.info.Label, Version: k.info.Version} }

// tdesMAC reports whether k is stored as two single-DES halves.
func (k *key) tdesMAC() bool { return k.info.Usage == hsm.UsageMAC && k.info.Algorithm == hsm.TDES }

// versions are the versions of one label.
type versions struct {
	byVersion map[int]*key
	current   int
}

// objectSpec describes one token object of a key version.
type objectSpec struct {
	part     string
	keyType  uint
	genMech  uint
	valueLen int // CKA_VALUE_LEN for generation (AES, generic secret)
	value    func(material []byte) []byte
	attrs    []uint // boolean attributes set true
	allowed  []uint // CKA_ALLOWED_MECHANISMS
}

// whole is the value of a one-object key: a copy of the material.
func whole(m []byte) []byte { return slices.Clone(m) }

// specs returns the objects of a key of usage, algorithm and size. Every
// object may also do what its KCV needs (AES: CMAC; TDES: ECB; HMAC: HMAC).
func specs(u hsm.Usage, alg hsm.Algorithm, size int) ([]objectSpec, error) {
	enc, dec := []uint{p11.CKA_ENCRYPT, p11.CKA_DECRYPT}, []uint{p11.CKA_ENCRYPT, p11.CKA_DECRYPT, p11.CKA_SIGN}
	tdes := func(attrs ...uint) objectSpec {
		if size == 24 {
			return objectSpec{part: partKey, keyType: p11.CKK_DES3, genMech: p11.CKM_DES3_KEY_GEN, value: whole, attrs: attrs, allowed: []uint{p11.CKM_DES3_ECB}}
		}
		return objectSpec{part: partKey, keyType: p11.CKK_DES2, genMech: p11.CKM_DES2_KEY_GEN, value: whole, attrs: attrs, allowed: []uint{p11.CKM_DES3_ECB}}
	}
	aes := func(attrs []uint, allowed ...uint) objectSpec {
		return objectSpec{part: partKey, keyType: p11.CKK_AES, genMech: p11.CKM_AES_KEY_GEN, valueLen: size, value: whole,
			attrs: attrs, allowed: append(allowed, p11.CKM_AES_CMAC)}
	}
	switch {
	case u == hsm.UsagePANData && alg == hsm.AES:
		return []objectSpec{aes(dec, p11.CKM_AES_GCM)}, nil
	case u == hsm.UsagePANHash && alg == hsm.HMAC:
		return []objectSpec{{part: partKey, keyType: p11.CKK_GENERIC_SECRET, genMech: p11.CKM_GENERIC_SECRET_KEY_GEN, valueLen: size,
			value: whole, attrs: []uint{p11.CKA_SIGN, p11.CKA_VERIFY}, allowed: []uint{p11.CKM_SHA256_HMAC}}}, nil
	case (u == hsm.UsageTerminalPIN || u == hsm.UsageZonePIN) && alg == hsm.TDES:
		return []objectSpec{tdes(enc...)}, nil
	case (u == hsm.UsageTerminalPIN || u == hsm.UsageZonePIN) && alg == hsm.AES:
		return []objectSpec{aes(dec, p11.CKM_AES_ECB)}, nil
	case u == hsm.UsageBDK && alg == hsm.TDES:
		variant := tdes(p11.CKA_ENCRYPT)
		variant.part, variant.genMech = partVariant, 0 // cannot be generated: see GenerateKey
		variant.value = func(m []byte) []byte {
			v := slices.Clone(m)
			xorInto(v, tdesKeyVariant[:])
			return v
		}
		return []objectSpec{tdes(p11.CKA_ENCRYPT), variant}, nil
	case u == hsm.UsageBDK && alg == hsm.AES:
		return []objectSpec{aes([]uint{p11.CKA_DERIVE, p11.CKA_SIGN}, p11.CKM_AES_ECB_ENCRYPT_DATA)}, nil
	case u == hsm.UsageMAC && alg == hsm.TDES:
		return []objectSpec{
			{part: partKey, keyType: p11.CKK_DES, genMech: p11.CKM_DES_KEY_GEN, value: func(m []byte) []byte { return slices.Clone(m[:8]) },
				attrs: []uint{p11.CKA_ENCRYPT}, allowed: []uint{p11.CKM_DES_CBC, p11.CKM_DES_ECB}},
			{part: partK2, keyType: p11.CKK_DES, genMech: p11.CKM_DES_KEY_GEN, value: func(m []byte) []byte { return slices.Clone(m[8:]) },
				attrs: []uint{p11.CKA_DECRYPT}, allowed: []uint{p11.CKM_DES_ECB}},
		}, nil
	case u == hsm.UsageMAC && alg == hsm.AES:
		return []objectSpec{aes([]uint{p11.CKA_SIGN, p11.CKA_VERIFY})}, nil
	}
	return nil, fmt.Errorf("algorithm %q for usage %s: %w", alg, u, hsm.ErrWrongUsage)
}

// keySizes lists the permitted sizes of each usage and algorithm (the same
// as the software backend's); the first is GenerateKey's default.
var keySizes = map[hsm.Usage]map[hsm.Algorithm][]int{
	hsm.UsagePANData:     {hsm.AES: {32}},
	hsm.UsagePANHash:     {hsm.HMAC: {32}},
	hsm.UsageTerminalPIN: {hsm.TDES: {16, 24}, hsm.AES: {16, 24, 32}},
	hsm.UsageZonePIN:     {hsm.TDES: {16, 24}, hsm.AES: {16, 24, 32}},
	hsm.UsageBDK:         {hsm.TDES: {16}, hsm.AES: {16, 24, 32}},
	hsm.UsageMAC:         {hsm.TDES: {16}, hsm.AES: {16, 24, 32}},
}

func checkKey(label string, u hsm.Usage, alg hsm.Algorithm, size int) error {
	if err := checkLabel(label); err != nil {
		return err
	}
	algs, ok := keySizes[u]
	if !ok {
		return fmt.Errorf("unknown key usage %q", u)
	}
	sizes, ok := algs[alg]
	if !ok {
		return fmt.Errorf("algorithm %q for usage %s: %w", alg, u, hsm.ErrWrongUsage)
	}
	if !slices.Contains(sizes, size) {
		return fmt.Errorf("%s key for usage %s must be %v bytes, got %d", alg, u, sizes, size)
	}
	return nil
}

// checkLabel accepts 1 to 64 letters, digits, '.', '_' and '-', starting
// with a letter or digit.
func checkLabel(label string) error {
	if label == "" || len(label) > 64 {
		return fmt.Errorf("label must be 1 to 64 characters, got %d", len(label))
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("label %q: only letters, digits, '.', '_' and '-' (not first) are allowed", label)
		}
	}
	return nil
}

func objectLabel(label string, version int, part string) string {
	l := label + "/v" + strconv.Itoa(version)
	if part != partKey {
		l += "#" + part
	}
	return l
}

func objectID(u hsm.Usage, alg hsm.Algorithm, size int, part string) []byte {
	return []byte(strings.Join([]string{idPrefix, string(u), string(alg), strconv.Itoa(size), part}, "|"))
}

// template is the attribute template of one object of a new key version.
func template(sp objectSpec, label string, version int, u hsm.Usage, alg hsm.Algorithm, size int) []*p11.Attribute {
	t := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, sp.keyType),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_MODIFIABLE, false),
		p11.NewAttribute(p11.CKA_LABEL, objectLabel(label, version, sp.part)),
		p11.NewAttribute(p11.CKA_ID, objectID(u, alg, size, sp.part)),
		p11.NewAttribute(p11.CKA_ALLOWED_MECHANISMS, ulongs(sp.allowed)),
	}
	for _, a := range []uint{p11.CKA_ENCRYPT, p11.CKA_DECRYPT, p11.CKA_SIGN, p11.CKA_VERIFY, p11.CKA_DERIVE, p11.CKA_WRAP, p11.CKA_UNWRAP} {
		t = append(t, p11.NewAttribute(a, slices.Contains(sp.attrs, a)))
	}
	return t
}

// ImportKey creates the key's objects with C_CreateObject from the clear
// material (development and tests; production keys arrive by key ceremony
// or TR-31) as the next version of req.Label. The material passes through
// host memory, as an import must; the copies made here are zeroed.
func (h *HSM) ImportKey(ctx context.Context, req hsm.ImportKeyRequest) (hsm.KeyInfo, error) {
	info, err := h.add(ctx, req.Label, req.Usage, req.Algorithm, len(req.Material), req.Material)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("pkcs11 hsm: import key %q: %w", req.Label, err)
	}
	return info, nil
}

// GenerateKey creates the key inside the token with C_GenerateKey (size 0:
// 32 for AES and HMAC, 16 for TDES) as the next version of req.Label. A
// TDES MAC key is generated as two single-DES halves. A TDES BDK cannot be
// generated (hsm.ErrUnsupported): its DUKPT variant, BDK XOR
// C0C0C0C000000000C0C0C0C000000000, would need CKM_XOR_BASE_AND_DATA,
// which SoftHSM2 lacks, and no other mechanism derives it in the token;
// import it instead.
func (h *HSM) GenerateKey(ctx context.Context, req hsm.GenerateKeyRequest) (hsm.KeyInfo, error) {
	size := req.Size
	if size == 0 {
		if sizes := keySizes[req.Usage][req.Algorithm]; len(sizes) > 0 {
			size = sizes[0]
		}
	}
	if req.Usage == hsm.UsageBDK && req.Algorithm == hsm.TDES {
		return hsm.KeyInfo{}, fmt.Errorf("pkcs11 hsm: generate key %q: a TDES BDK's variant (BDK XOR C0C0C0C0...) cannot be derived inside the token without CKM_XOR_BASE_AND_DATA; import the BDK instead: %w",
			req.Label, hsm.ErrUnsupported)
	}
	info, err := h.add(ctx, req.Label, req.Usage, req.Algorithm, size, nil)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("pkcs11 hsm: generate key %q: %w", req.Label, err)
	}
	return info, nil
}

// add creates the objects of the next version of label, from material or
// (material nil) by generation, computes the KCV in the token and makes the
// version current.
func (h *HSM) add(ctx context.Context, label string, u hsm.Usage, alg hsm.Algorithm, size int, material []byte) (_ hsm.KeyInfo, err error) {
	if err := checkKey(label, u, alg, size); err != nil {
		return hsm.KeyInfo{}, err
	}
	sp, err := specs(u, alg, size)
	if err != nil {
		return hsm.KeyInfo{}, err
	}
	s, err := h.get(ctx)
	if err != nil {
		return hsm.KeyInfo{}, err
	}
	defer func() { h.put(s, err) }()

	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.mu.RLock()
	vs := h.keys[label]
	version := 1
	if vs != nil {
		cur := vs.byVersion[vs.current]
		if cur.info.Usage != u {
			h.mu.RUnlock()
			return hsm.KeyInfo{}, fmt.Errorf("label has usage %s, not %s: %w", cur.info.Usage, u, hsm.ErrWrongUsage)
		}
		version = vs.current + 1
	}
	h.mu.RUnlock()
	// Another process may have written versions since Open: skip them.
	for {
		found, err := h.findByLabel(s, objectLabel(label, version, partKey))
		if err != nil {
			return hsm.KeyInfo{}, fmt.Errorf("looking for version %d: %w", version, err)
		}
		if len(found) == 0 {
			break
		}
		version++
	}

	k := &key{info: hsm.KeyInfo{Label: label, Version: version, Usage: u, Algorithm: alg}, size: size}
	var created []p11.ObjectHandle
	defer func() {
		if err != nil {
			for _, o := range created {
				_ = h.ctx.DestroyObject(s, o)
			}
		}
	}()
	for _, o := range sp {
		t := template(o, label, version, u, alg, size)
		var obj p11.ObjectHandle
		if material != nil {
			v := o.value(material)
			obj, err = h.ctx.CreateObject(s, append(t, p11.NewAttribute(p11.CKA_VALUE, v)))
			clear(v)
		} else {
			if o.valueLen > 0 {
				t = append(t, p11.NewAttribute(p11.CKA_VALUE_LEN, o.valueLen))
			}
			obj, err = h.ctx.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(o.genMech, nil)}, t)
		}
		if err != nil {
			return hsm.KeyInfo{}, fmt.Errorf("creating the %s object of version %d: %w", o.part, version, err)
		}
		created = append(created, obj)
		k.setPart(o.part, obj)
	}
	if k.info.KCV, err = h.kcv(s, k); err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("computing the KCV of version %d: %w", version, err)
	}

	h.mu.Lock()
	h.insert(h.keys, k)
	h.mu.Unlock()
	how := "imported"
	if material == nil {
		how = "generated"
	}
	h.log.Info("key "+how, zap.String("token", h.token), zap.String("label", label), zap.Int("version", version),
		zap.String("usage", string(u)), zap.String("algorithm", string(alg)), zap.String("kcv", fmt.Sprintf("%X", k.info.KCV)))
	return cloneInfo(k.info), nil
}

func (k *key) setPart(part string, obj p11.ObjectHandle) {
	switch part {
	case partKey:
		k.obj = obj
	case partK2:
		k.k2 = obj
	case partVariant:
		k.variant = obj
	}
}

// insert adds k to m and makes it current if it is the newest.
func (h *HSM) insert(m map[string]*versions, k *key) {
	vs := m[k.info.Label]
	if vs == nil {
		vs = &versions{byVersion: map[int]*key{}}
		m[k.info.Label] = vs
	}
	vs.byVersion[k.info.Version] = k
	if k.info.Version > vs.current {
		vs.current = k.info.Version
	}
}

func cloneInfo(i hsm.KeyInfo) hsm.KeyInfo {
	i.KCV = slices.Clone(i.KCV)
	return i
}

// kcv computes the key check value inside the token: TDES, the first 3
// bytes of enciphering 8 zero bytes (for a TDES MAC key, E_K1(D_K2(E_K1(0))),
// the same value from its halves); AES, of the AES-CMAC of 16 zero bytes;
// HMAC, of HMAC-SHA-256 of 16 zero bytes (the software backend's choice).
func (h *HSM) kcv(s p11.SessionHandle, k *key) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch {
	case k.tdesMAC():
		zero := make([]byte, 8)
		if out, err = h.crypt(s, false, p11.NewMechanism(p11.CKM_DES_ECB, nil), k.obj, zero); err != nil {
			return nil, err
		}
		if out, err = h.crypt(s, true, p11.NewMechanism(p11.CKM_DES_ECB, nil), k.k2, out); err != nil {
			return nil, err
		}
		out, err = h.crypt(s, false, p11.NewMechanism(p11.CKM_DES_ECB, nil), k.obj, out)
	case k.info.Algorithm == hsm.TDES:
		out, err = h.crypt(s, false, p11.NewMechanism(p11.CKM_DES3_ECB, nil), k.obj, make([]byte, 8))
	case k.info.Algorithm == hsm.AES:
		out, err = h.sign(s, p11.CKM_AES_CMAC, k.obj, make([]byte, 16))
	case k.info.Algorithm == hsm.HMAC:
		out, err = h.sign(s, p11.CKM_SHA256_HMAC, k.obj, make([]byte, 16))
	default:
		return nil, fmt.Errorf("no KCV for algorithm %q", k.info.Algorithm)
	}
	if err != nil {
		return nil, err
	}
	if len(out) < 3 {
		return nil, fmt.Errorf("KCV operation returned %d bytes", len(out))
	}
	return slices.Clone(out[:3]), nil
}

// Keys lists every version of every key, by label then version.
func (h *HSM) Keys(ctx context.Context) ([]hsm.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-h.done:
		return nil, fmt.Errorf("pkcs11 hsm: list keys: %w", ErrClosed)
	default:
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []hsm.KeyInfo
	for _, vs := range h.keys {
		for _, k := range vs.byVersion {
			out = append(out, cloneInfo(k.info))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// lookup returns the key ref names (version 0: current) if its usage is
// one of usages: hsm.ErrKeyNotFound or hsm.ErrWrongUsage otherwise. A
// label or version this HSM does not know makes it re-read the token once,
// for versions another process added since Open.
func (h *HSM) lookup(s p11.SessionHandle, ref hsm.KeyRef, usages ...hsm.Usage) (*key, error) {
	k := h.cached(ref)
	if k == nil {
		h.wmu.Lock()
		err := h.reload(s)
		h.wmu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("re-reading key objects for key %q: %w", ref.Label, err)
		}
		if k = h.cached(ref); k == nil {
			if ref.Version == 0 {
				return nil, fmt.Errorf("key %q: %w", ref.Label, hsm.ErrKeyNotFound)
			}
			return nil, fmt.Errorf("key %q version %d: %w", ref.Label, ref.Version, hsm.ErrKeyNotFound)
		}
	}
	if !slices.Contains(usages, k.info.Usage) {
		return nil, fmt.Errorf("key %q version %d has usage %s, not %s: %w", k.info.Label, k.info.Version, k.info.Usage, usagesString(usages), hsm.ErrWrongUsage)
	}
	return k, nil
}

func usagesString(us []hsm.Usage) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = string(u)
	}
	return strings.Join(s, " or ")
}

func (h *HSM) cached(ref hsm.KeyRef) *key {
	h.mu.RLock()
	defer h.mu.RUnlock()
	vs := h.keys[ref.Label]
	if vs == nil {
		return nil
	}
	v := ref.Version
	if v == 0 {
		v = vs.current
	}
	return vs.byVersion[v]
}

// reload reads every key object of the token and replaces the cache;
// callers hold wmu (or own h exclusively, in Open). KCVs already known are
// kept; new versions get theirs computed in the token.
func (h *HSM) reload(s p11.SessionHandle) error {
	objs, err := h.find(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY)})
	if err != nil {
		return err
	}
	parts := map[string]map[int]map[string]p11.ObjectHandle{}
	metas := map[string]map[int][]string{}
	for _, o := range objs {
		attrs, err := h.ctx.GetAttributeValue(s, o, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_LABEL, nil), p11.NewAttribute(p11.CKA_ID, nil)})
		if err != nil {
			return fmt.Errorf("reading the label and ID of object %d: %w", o, err)
		}
		id := strings.Split(string(attrs[1].Value), "|")
		if len(id) != 5 || id[0] != idPrefix {
			continue // not ours
		}
		label, version, part, ok := parseObjectLabel(string(attrs[0].Value))
		if !ok || part != id[4] {
			h.log.Warn("pkcs11 key object with a malformed label ignored", zap.String("token", h.token), zap.Uint("handle", uint(o)))
			continue
		}
		if parts[label] == nil {
			parts[label], metas[label] = map[int]map[string]p11.ObjectHandle{}, map[int][]string{}
		}
		if parts[label][version] == nil {
			parts[label][version] = map[string]p11.ObjectHandle{}
		}
		parts[label][version][part] = o
		if part == partKey {
			metas[label][version] = id
		}
	}
	fresh := map[string]*versions{}
	for label, byVersion := range parts {
		for version, objs := range byVersion {
			id := metas[label][version]
			if id == nil {
				continue // a companion without its key
			}
			size, _ := strconv.Atoi(id[3])
			k := &key{info: hsm.KeyInfo{Label: label, Version: version, Usage: hsm.Usage(id[1]), Algorithm: hsm.Algorithm(id[2])}, size: size}
			for part, o := range objs {
				k.setPart(part, o)
			}
			if (k.tdesMAC() && k.k2 == 0) || (k.info.Usage == hsm.UsageBDK && k.info.Algorithm == hsm.TDES && k.variant == 0) {
				h.log.Warn("pkcs11 key version without its companion object ignored", zap.String("token", h.token),
					zap.String("label", label), zap.Int("version", version))
				continue
			}
			if old := h.cached(k.ref()); old != nil && old.obj == k.obj {
				k.info.KCV = old.info.KCV
			} else if k.info.KCV, err = h.kcv(s, k); err != nil {
				return fmt.Errorf("computing the KCV of key %q version %d: %w", label, version, err)
			}
			h.insert(fresh, k)
		}
	}
	h.mu.Lock()
	h.keys = fresh
	h.mu.Unlock()
	return nil
}

// parseObjectLabel splits "<label>/v<version>[#<part>]".
func parseObjectLabel(s string) (label string, version int, part string, ok bool) {
	part = partKey
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, part = s[:i], s[i+1:]
	}
	i := strings.LastIndex(s, "/v")
	if i <= 0 {
		return "", 0, "", false
	}
	version, err := strconv.Atoi(s[i+2:])
	if err != nil || version < 1 {
		return "", 0, "", false
	}
	return s[:i], version, part, true
}

// findByLabel returns the secret key objects labelled label.
func (h *HSM) findByLabel(s p11.SessionHandle, label string) ([]p11.ObjectHandle, error) {
	return h.find(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_LABEL, label)})
}

// find runs C_FindObjects to the end.
func (h *HSM) find(s p11.SessionHandle, t []*p11.Attribute) ([]p11.ObjectHandle, error) {
	if err := h.ctx.FindObjectsInit(s, t); err != nil {
		return nil, err
	}
	var all []p11.ObjectHandle
	for {
		objs, _, err := h.ctx.FindObjects(s, 256)
		if err != nil {
			_ = h.ctx.FindObjectsFinal(s)
			return nil, err
		}
		if len(objs) == 0 {
			break
		}
		all = append(all, objs...)
	}
	return all, h.ctx.FindObjectsFinal(s)
}
