package hsm

import (
	"fmt"
	"slices"
)

// KeySizes lists the algorithms each key usage permits and their sizes in
// bytes; the first size of each is GenerateKey's default.
type KeySizes map[Usage]map[Algorithm][]int

// StandardKeySizes are the usages, algorithms and sizes a backend holds
// unless it says otherwise (a fresh map the caller may change).
func StandardKeySizes() KeySizes {
	return KeySizes{
		UsagePANData:     {AES: {32}},
		UsagePANHash:     {HMAC: {32}},
		UsageTerminalPIN: {TDES: {16, 24}, AES: {16, 24, 32}},
		UsageZonePIN:     {TDES: {16, 24}, AES: {16, 24, 32}},
		UsageBDK:         {TDES: {16}, AES: {16, 24, 32}},
		UsageMAC:         {TDES: {16}, AES: {16, 24, 32}},
		UsageKEK:         {TDES: {16, 24}, AES: {16, 24, 32}},
	}
}

// Default is GenerateKey's size for usage and algorithm (0: none listed).
func (ks KeySizes) Default(u Usage, alg Algorithm) int {
	if sizes := ks[u][alg]; len(sizes) > 0 {
		return sizes[0]
	}
	return 0
}

// Check checks that a key of size bytes fits usage and algorithm. A usage
// and algorithm that do not go together wrap ErrWrongUsage.
func (ks KeySizes) Check(u Usage, alg Algorithm, size int) error {
	algs, ok := ks[u]
	if !ok {
		return fmt.Errorf("unknown key usage %q", u)
	}
	sizes, ok := algs[alg]
	if !ok {
		return fmt.Errorf("algorithm %q for usage %s: %w", alg, u, ErrWrongUsage)
	}
	if !slices.Contains(sizes, size) {
		return fmt.Errorf("%s key for usage %s must be %v bytes, got %d", alg, u, sizes, size)
	}
	return nil
}
