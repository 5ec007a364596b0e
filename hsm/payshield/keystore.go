package payshield

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/internal/keyfile"
)

// StoredKey is one key version in the key store: its description and the
// key as a key block under the HSM's LMK ("S" + X9.143 block). The store
// never holds a clear key.
type StoredKey struct {
	Label     string        `json:"label"`
	Version   int           `json:"version"`
	Usage     hsm.Usage     `json:"usage"`
	Algorithm hsm.Algorithm `json:"algorithm"`
	KCV       string        `json:"kcv"`
	Block     string        `json:"lmk_block"`
}

type keyStoreFile struct {
	Comment string      `json:"comment,omitempty"`
	Keys    []StoredKey `json:"keys"`
}

// ReadKeyStore reads a key-store file; a missing file is an empty store.
func ReadKeyStore(path string) ([]StoredKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("payshield: reading key store: %w", err)
	}
	var f keyStoreFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("payshield: key store %s: %w", path, err)
	}
	return f.Keys, nil
}

// WriteKeyStore replaces the key-store file atomically (mode 0600).
func WriteKeyStore(path string, keys []StoredKey) error {
	data, err := json.MarshalIndent(keyStoreFile{
		Comment: "keys under the payment HSM's LMK as X9.143 key blocks; no clear key material",
		Keys:    keys,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("payshield: key store directory: %w", err)
	}
	if err := keyfile.WriteAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("payshield: writing key store: %w", err)
	}
	return nil
}
