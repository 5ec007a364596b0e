//go:build cgo

package pkcs11

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	p11 "github.com/miekg/pkcs11"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// key is one version of a key: its description and object handles.
type key struct {
	info hsm.KeyInfo
	size int
	// tokenObj is the key's token object; obj, k1 and variant are the
	// session copies operations use (see workingCopies).
	tokenObj p11.ObjectHandle
	obj      p11.ObjectHandle // the key
	k1       p11.ObjectHandle // TDES MAC key K1|K2: K1|K1
	variant  p11.ObjectHandle // TDES BDK: BDK XOR the key variant
}

func (k *key) ref() hsm.KeyRef { return hsm.KeyRef{Label: k.info.Label, Version: k.info.Version} }

// tdesMAC reports whether k is a TDES MAC key (with a K1|K1 object).
func (k *key) tdesMAC() bool { return k.info.Usage == hsm.UsageMAC && k.info.Algorithm == hsm.TDES }

// versions are the versions of one label.
type versions struct {
	byVersion map[int]*key
	current   int
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
// TDES MAC key is derived in the token from a generated session key (see
// deriveTDESMAC), so that its K1|K1 companion exists too. A TDES BDK cannot be
// generated (hsm.ErrUnsupported): its DUKPT variant, BDK XOR
// C0C0C0C000000000C0C0C0C000000000, would need CKM_XOR_BASE_AND_DATA,
// which SoftHSM2 lacks, and no other mechanism derives it in the token;
// import it instead.
func (h *HSM) GenerateKey(ctx context.Context, req hsm.GenerateKeyRequest) (hsm.KeyInfo, error) {
	size := cmp.Or(req.Size, keySizes.Default(req.Usage, req.Algorithm))
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
func (h *HSM) add(ctx context.Context, label string, u hsm.Usage, alg hsm.Algorithm, size int, material []byte) (hsm.KeyInfo, error) {
	return h.addFrom(ctx, label, u, alg, size, keySource{material: material})
}

// keySource is where a new key version's value comes from: clear material,
// an unwrap in the token (see ImportUnderKEK) or, both nil, generation.
type keySource struct {
	material []byte
	// unwrap creates the key object from template t in session s.
	unwrap func(s p11.SessionHandle, t []*p11.Attribute) (p11.ObjectHandle, error)
	// kcv, when set, is the check value the new version must have: on a
	// mismatch its objects are destroyed (hsm.ErrKCVMismatch).
	kcv []byte
}

// addFrom is add from any keySource.
func (h *HSM) addFrom(ctx context.Context, label string, u hsm.Usage, alg hsm.Algorithm, size int, src keySource) (_ hsm.KeyInfo, err error) {
	material := src.material
	if err := checkKey(label, u, alg, size); err != nil {
		return hsm.KeyInfo{}, err
	}
	sp, err := specs(u, alg, size)
	if err != nil {
		return hsm.KeyInfo{}, err
	}
	if u == hsm.UsageKEK {
		sp[0].attrs = h.kekAttrs(sp[0].attrs)
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
	if material == nil && src.unwrap == nil && k.tdesMAC() {
		var objs []p11.ObjectHandle
		objs, err = h.deriveTDESMAC(s, template(sp[0], label, version, u, alg, size), template(sp[1], label, version, u, alg, size))
		created = append(created, objs...)
		if err != nil {
			return hsm.KeyInfo{}, fmt.Errorf("deriving version %d: %w", version, err)
		}
		k.obj, k.k1 = objs[0], objs[1]
	}
	for _, o := range sp {
		if material == nil && k.tdesMAC() {
			break
		}
		t := template(o, label, version, u, alg, size)
		var obj p11.ObjectHandle
		if src.unwrap != nil {
			obj, err = src.unwrap(s, t)
		} else if material != nil {
			var v []byte
			if v, err = o.value(material); err == nil {
				obj, err = h.ctx.CreateObject(s, append(t, p11.NewAttribute(p11.CKA_VALUE, v)))
				paycrypto.Wipe(v)
			}
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
	copies, err := h.workingCopies(k)
	created = append(created, copies...)
	if err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("copying version %d to session objects: %w", version, err)
	}
	if k.info.KCV, err = h.kcv(s, k); err != nil {
		return hsm.KeyInfo{}, fmt.Errorf("computing the KCV of version %d: %w", version, err)
	}
	if src.kcv != nil && subtle.ConstantTimeCompare(k.info.KCV, src.kcv[:3]) != 1 {
		err = fmt.Errorf("KCV %X sent, the key has another: %w", src.kcv[:3], hsm.ErrKCVMismatch)
		return hsm.KeyInfo{}, err
	}

	h.mu.Lock()
	h.insert(h.keys, k)
	h.mu.Unlock()
	how := "imported"
	switch {
	case src.unwrap != nil:
		how = "imported under a ZMK"
	case material == nil:
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
	case partK1:
		k.k1 = obj
	case partVariant:
		k.variant = obj
	}
}

// workingCopies copies k's token objects to session objects owned by
// h.owner and points k at them, keeping the token object in k.tokenObj.
// SoftHSM2's file object store re-validates a token object against its
// file at every use, which more than doubles the cost of an operation; a
// session copy (C_CopyObject with CKA_TOKEN false) is as sensitive and
// non-extractable as its original, lives in the token's memory and goes
// when h.owner closes. It returns the copies made, to destroy on error.
// Callers hold wmu.
func (h *HSM) workingCopies(k *key) ([]p11.ObjectHandle, error) {
	k.tokenObj = k.obj
	var made []p11.ObjectHandle
	for _, p := range []*p11.ObjectHandle{&k.obj, &k.k1, &k.variant} {
		if *p == 0 {
			continue
		}
		c, err := h.ctx.CopyObject(h.owner, *p, []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, false)})
		if err != nil {
			for _, m := range made {
				_ = h.ctx.DestroyObject(h.owner, m)
			}
			return nil, err
		}
		made = append(made, c)
		*p = c
	}
	return made, nil
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
	objs, err := h.find(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_TOKEN, true)})
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
			if (k.tdesMAC() && k.k1 == 0) || (k.info.Usage == hsm.UsageBDK && k.info.Algorithm == hsm.TDES && k.variant == 0) {
				h.log.Warn("pkcs11 key version without its companion object ignored", zap.String("token", h.token),
					zap.String("label", label), zap.Int("version", version))
				continue
			}
			if old := h.cached(k.ref()); old != nil && old.tokenObj == k.obj {
				h.insert(fresh, old) // known: keep its copies and KCV
				continue
			}
			if _, err := h.workingCopies(k); err != nil {
				return fmt.Errorf("copying key %q version %d to session objects: %w", label, version, err)
			}
			if k.info.KCV, err = h.kcv(s, k); err != nil {
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
