package hsm

import (
	"fmt"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/payshield"
)

// ProvisionKeyStore is the emulator's key ceremony for tests and demos:
// it forms each key at the console under the LMK and writes them, in
// order (a repeated label adds a version), as the key-store file of the
// switch's payshield backend. The file holds LMK key blocks only.
func (s *Server) ProvisionKeyStore(path string, keys []hsm.ImportKeyRequest) error {
	stored, err := payshield.ReadKeyStore(path)
	if err != nil {
		return err
	}
	versions := map[string]int{}
	for _, k := range stored {
		versions[k.Label] = k.Version
	}
	for _, req := range keys {
		h, err := hsm.KeyBlockHeader(req.Usage, req.Algorithm)
		if err != nil {
			return fmt.Errorf("hsmsim: key %s: %w", req.Label, err)
		}
		key, kcv, err := s.FormKey(h, req.Material)
		if err != nil {
			return fmt.Errorf("hsmsim: key %s: %w", req.Label, err)
		}
		versions[req.Label]++
		stored = append(stored, payshield.StoredKey{Label: req.Label, Version: versions[req.Label], Usage: req.Usage,
			Algorithm: req.Algorithm, KCV: kcv, Block: key.String()})
	}
	return payshield.WriteKeyStore(path, stored)
}
