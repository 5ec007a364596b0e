package software

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/internal/keyfile"
	"github.com/kbpay/switch/hsm/paycrypto"
)

// The key-store file is JSON:
//
//	{"format": 1, "master_kcv": "A1B2C3", "keys": [{"label": ..., "version": 1,
//	  "usage": ..., "algorithm": ..., "kcv": ..., "wrapped": base64, "created": ...}],
//	 "seal": hex}
//
// wrapped is nonce|ciphertext|tag of the clear key under AES-256-GCM with
// the master key, AAD label|version|usage|algorithm, so no field of a key
// can be changed without its unwrap failing. seal is HMAC-SHA-256, under a
// key derived from the master key, over the format, the master KCV and
// every key's fields in order: keys cannot be removed, reordered or
// replayed from another store either. created is informational and not
// sealed.
const storeFormat = 1

type storeFile struct {
	Format    int         `json:"format"`
	MasterKCV string      `json:"master_kcv"`
	Keys      []storedKey `json:"keys"`
	Seal      string      `json:"seal"`
}

type storedKey struct {
	Label     string        `json:"label"`
	Version   int           `json:"version"`
	Usage     hsm.Usage     `json:"usage"`
	Algorithm hsm.Algorithm `json:"algorithm"`
	KCV       string        `json:"kcv"`
	Wrapped   []byte        `json:"wrapped"`
	Created   string        `json:"created,omitempty"`
}

// sealInfo is the HKDF info that derives the seal key from the master key.
const sealInfo = "kbpay/switch software hsm key store seal v1"

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// wrapAAD binds wrapped material to its key's identity.
func wrapAAD(label string, version int, u hsm.Usage, alg hsm.Algorithm) []byte {
	return []byte(label + "|" + strconv.Itoa(version) + "|" + string(u) + "|" + string(alg))
}

// wrapKey encrypts material under the master key for the store.
func (h *HSM) wrapKey(info hsm.KeyInfo, material []byte) ([]byte, error) {
	nonce := make([]byte, h.wrap.NonceSize(), h.wrap.NonceSize()+len(material)+h.wrap.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return h.wrap.Seal(nonce, nonce, material, wrapAAD(info.Label, info.Version, info.Usage, info.Algorithm)), nil
}

// seal computes the store's seal over everything but created.
func (h *HSM) seal(f *storeFile) (string, error) {
	sk, err := hkdf.Key(sha256.New, h.master, nil, sealInfo, 32)
	if err != nil {
		return "", fmt.Errorf("software hsm: deriving the key store seal key: %w", err)
	}
	defer clear(sk)
	m := hmac.New(sha256.New, sk)
	field := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	field(strconv.Itoa(f.Format))
	field(f.MasterKCV)
	for _, k := range f.Keys {
		field(k.Label)
		field(strconv.Itoa(k.Version))
		field(string(k.Usage))
		field(string(k.Algorithm))
		field(k.KCV)
		field(string(k.Wrapped))
	}
	return hex.EncodeToString(m.Sum(nil)), nil
}

func (h *HSM) masterKCV() (string, error) {
	kcv, err := paycrypto.KCV("aes", h.master)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(kcv), nil
}

// save writes the store: the keys in h.keys plus extra (a new key not yet
// installed). Callers hold wmu, or own h exclusively.
func (h *HSM) save(extra *key) error {
	mkcv, err := h.masterKCV()
	if err != nil {
		return fmt.Errorf("software hsm: master key KCV: %w", err)
	}
	f := storeFile{Format: storeFormat, MasterKCV: mkcv, Keys: []storedKey{}}
	add := func(k *key) {
		f.Keys = append(f.Keys, storedKey{
			Label: k.info.Label, Version: k.info.Version, Usage: k.info.Usage, Algorithm: k.info.Algorithm,
			KCV: hex.EncodeToString(k.info.KCV), Wrapped: k.wrapped, Created: k.created,
		})
	}
	for _, l := range sortedLabels(h.keys) {
		for _, k := range h.keys[l] {
			add(k)
		}
	}
	if extra != nil {
		add(extra)
	}
	if f.Seal, err = h.seal(&f); err != nil {
		return err
	}
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return fmt.Errorf("software hsm: encoding key store: %w", err)
	}
	if err := keyfile.WriteAtomic(h.path, append(data, '\n')); err != nil {
		return fmt.Errorf("software hsm: writing key store: %w", err)
	}
	return nil
}

// load parses and checks a store file into h.keys; h is not shared yet.
func (h *HSM) load(data []byte) error {
	var f storeFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("software hsm: key store %s is malformed: %w", h.path, err)
	}
	if dec.More() {
		return fmt.Errorf("software hsm: key store %s is malformed: data after the JSON object", h.path)
	}
	if f.Format != storeFormat {
		return fmt.Errorf("software hsm: key store %s has format %d, this build reads format %d", h.path, f.Format, storeFormat)
	}
	mkcv, err := h.masterKCV()
	if err != nil {
		return fmt.Errorf("software hsm: master key KCV: %w", err)
	}
	if !strings.EqualFold(f.MasterKCV, mkcv) {
		return fmt.Errorf("software hsm: %w %s: KCV mismatch", ErrMasterKeyMismatch, h.path)
	}
	for i, sk := range f.Keys {
		k, err := h.unwrapKey(sk)
		if err != nil {
			return fmt.Errorf("software hsm: key store %s: key %d (%q version %d): %w", h.path, i+1, sk.Label, sk.Version, err)
		}
		if want := len(h.keys[sk.Label]) + 1; sk.Version != want {
			clear(k.material)
			return fmt.Errorf("software hsm: key store %s: key %q has version %d where version %d was expected", h.path, sk.Label, sk.Version, want)
		}
		if prev := h.keys[sk.Label]; len(prev) > 0 && prev[0].info.Usage != sk.Usage {
			clear(k.material)
			return fmt.Errorf("software hsm: key store %s: key %q version %d has usage %s, version 1 has %s", h.path, sk.Label, sk.Version, sk.Usage, prev[0].info.Usage)
		}
		h.keys[sk.Label] = append(h.keys[sk.Label], k)
	}
	want, err := h.seal(&f)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(strings.ToLower(f.Seal)), []byte(want)) {
		return fmt.Errorf("software hsm: key store %s: seal mismatch: keys were added, removed or reordered outside the HSM", h.path)
	}
	return nil
}

// unwrapKey checks one stored key and returns it with its clear material.
func (h *HSM) unwrapKey(sk storedKey) (*key, error) {
	if err := checkLabel(sk.Label); err != nil {
		return nil, err
	}
	if sk.Version < 1 {
		return nil, fmt.Errorf("version %d is not positive", sk.Version)
	}
	if len(sk.Wrapped) < h.wrap.NonceSize()+h.wrap.Overhead() {
		return nil, errors.New("failed to unwrap: wrapped material is too short")
	}
	ns := h.wrap.NonceSize()
	material, err := h.wrap.Open(nil, sk.Wrapped[:ns], sk.Wrapped[ns:], wrapAAD(sk.Label, sk.Version, sk.Usage, sk.Algorithm))
	if err != nil {
		return nil, errors.New("failed to unwrap: the key or its label, version, usage or algorithm was modified")
	}
	if err := checkKey(sk.Usage, sk.Algorithm, material); err != nil {
		clear(material)
		return nil, err
	}
	k, err := newKey(sk.Label, sk.Version, sk.Usage, sk.Algorithm, material)
	if err != nil {
		clear(material)
		return nil, err
	}
	if !strings.EqualFold(sk.KCV, hex.EncodeToString(k.info.KCV)) {
		clear(material)
		return nil, errors.New("KCV mismatch: the stored KCV is not that of the unwrapped key")
	}
	k.wrapped, k.created = sk.Wrapped, sk.Created
	return k, nil
}

// LoadMasterKey reads the 32-byte master key as 64 hex characters
// (surrounding whitespace ignored) from file, or, if file is "", from the
// environment variable envVar. Errors name the source, never the key.
func LoadMasterKey(file, envVar string) ([]byte, error) {
	var src, text string
	switch {
	case file != "":
		src = "file " + file
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("software hsm: reading master key %s: %w", src, err)
		}
		text = string(b)
		clear(b)
	case envVar != "":
		src = "environment variable " + envVar
		v, ok := os.LookupEnv(envVar)
		if !ok {
			return nil, fmt.Errorf("software hsm: master key %s is not set", src)
		}
		text = v
	default:
		return nil, errors.New("software hsm: no master key file or environment variable configured")
	}
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, fmt.Errorf("software hsm: master key %s is empty", src)
	case len(text) != 2*MasterKeySize:
		return nil, fmt.Errorf("software hsm: master key %s must be %d hex characters (%d bytes), got %d characters",
			src, 2*MasterKeySize, MasterKeySize, len(text))
	}
	key, err := hex.DecodeString(text)
	if err != nil {
		// hex errors quote the offending character; do not pass them on.
		return nil, fmt.Errorf("software hsm: master key %s is not hexadecimal", src)
	}
	return key, nil
}
