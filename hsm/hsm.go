// Package hsm is the boundary around every key the switch uses: PAN
// encryption and hashing, PIN block translation and MACs, at the level of a
// payment HSM's host commands. The switch never holds a key; backends
// (software, pkcs11, payshield) implement HSM, and KeyManager where they
// can; a Registry opens them by name for one of two roles (Role: PIN/MAC,
// data protection), and Instrument adds their latency and error metrics.
package hsm

import (
	"context"
	"errors"
	"fmt"
)

// Usage is what a key may be used for. A key is never used outside its
// usage (a PIN key cannot encrypt PANs, a data key cannot MAC).
type Usage string

const (
	// UsagePANData encrypts and decrypts PANs at rest (AES-256-GCM).
	UsagePANData Usage = "pan-data"
	// UsagePANHash computes keyed PAN hashes for look-ups (HMAC-SHA-256).
	UsagePANHash Usage = "pan-hash"
	// UsageTerminalPIN is a static terminal PIN key (TPK): TDES or AES.
	UsageTerminalPIN Usage = "tpk"
	// UsageBDK is a DUKPT base derivation key: TDES (X9.24-1) or AES
	// (X9.24-3). Terminal PIN blocks under DUKPT name it with their KSN.
	UsageBDK Usage = "bdk"
	// UsageZonePIN is an issuer zone PIN key (ZPK): TDES or AES.
	UsageZonePIN Usage = "zpk"
	// UsageMAC is a message authentication key: TDES double-length for the
	// ISO 9797-1 algorithm 3 retail MAC, AES for CMAC.
	UsageMAC Usage = "mac"
)

// Algorithm is a key's cipher.
type Algorithm string

const (
	TDES Algorithm = "tdes" // 16 bytes (double length) or 24 (triple)
	AES  Algorithm = "aes"  // 16, 24 or 32 bytes
	// HMAC is an HMAC-SHA-256 secret (32 bytes), for UsagePANHash.
	HMAC Algorithm = "hmac-sha256"
)

// Labels of the keys the switch uses for PANs at rest; the software
// backend's EnsureDevKeys creates them for development.
const (
	LabelPANData = "pan-data" // a UsagePANData key (AES-256)
	LabelPANHash = "pan-hash" // a UsagePANHash key (HMAC-SHA-256)
)

// KeyRef names a key by label and version; version 0 means the current one.
type KeyRef struct {
	Label   string
	Version int
}

// PINFormat is an ISO 9564-1 PIN block format.
type PINFormat int

const (
	// ISO0 is format 0: 8 bytes, PIN XOR PAN, under TDES.
	ISO0 PINFormat = 0
	// ISO4 is format 4: 16 bytes, under AES.
	ISO4 PINFormat = 4
)

// PINKey says how a PIN block is encrypted: under a static key (TPK, ZPK)
// or under the DUKPT key derived from a BDK for the given KSN.
type PINKey struct {
	Key    KeyRef
	Format PINFormat
	// KSN is the DUKPT key serial number (10 bytes TDES, 12 bytes AES);
	// set only when Key is a BDK.
	KSN []byte
}

// TranslatePINRequest re-encrypts a PIN block from one key and format to
// another without the PIN leaving the HSM.
type TranslatePINRequest struct {
	PINBlock []byte
	// PAN is the card number the block is bound to (formats 0 and 4): the
	// real PAN, after detokenization.
	PAN  string
	From PINKey
	To   PINKey
}

// MACAlgorithm is how a MAC is computed.
type MACAlgorithm string

const (
	// RetailMAC is ISO 9797-1 MAC algorithm 3 (ANSI X9.19) with a
	// double-length TDES key, padding method 1; 8 bytes.
	RetailMAC MACAlgorithm = "retail"
	// CMAC is AES-CMAC (NIST SP 800-38B), truncated to 8 bytes for DE 64/128.
	CMAC MACAlgorithm = "cmac"
)

// MACRequest computes a MAC over Data.
type MACRequest struct {
	Key       KeyRef
	Algorithm MACAlgorithm
	Data      []byte
}

// VerifyMACRequest checks MAC over Data.
type VerifyMACRequest struct {
	MACRequest
	MAC []byte
}

// EncryptedPAN is a PAN at rest: ciphertext under a versioned data key.
type EncryptedPAN struct {
	Key        KeyRef // always with its version
	Ciphertext []byte
}

// PANHash is a keyed hash of a PAN under a versioned hash key.
type PANHash struct {
	Key  KeyRef
	Hash []byte
}

// HSM is the operation-level interface the switch uses. Implementations are
// safe for concurrent use.
type HSM interface {
	// EncryptPAN encrypts pan under the current version of the data key
	// labelled key.Label (key.Version is ignored).
	EncryptPAN(ctx context.Context, key KeyRef, pan string) (EncryptedPAN, error)
	// DecryptPAN decrypts a PAN; the only way a PAN comes out of rest.
	DecryptPAN(ctx context.Context, enc EncryptedPAN) (string, error)
	// HashPAN computes HMAC-SHA-256 of pan under the hash key (version 0 =
	// current), for look-ups by PAN without decrypting anything.
	HashPAN(ctx context.Context, key KeyRef, pan string) (PANHash, error)
	// TranslatePIN re-encrypts a PIN block (terminal key or DUKPT ->
	// issuer zone key). ErrInvalidPINBlock when the block does not decode
	// under From for this PAN.
	TranslatePIN(ctx context.Context, req TranslatePINRequest) ([]byte, error)
	// GenerateMAC returns the 8-byte MAC.
	GenerateMAC(ctx context.Context, req MACRequest) ([]byte, error)
	// VerifyMAC returns ErrMACMismatch when the MAC is wrong.
	VerifyMAC(ctx context.Context, req VerifyMACRequest) error
	// Close releases sessions and key material.
	Close() error
}

// KeyInfo describes a key without revealing it.
type KeyInfo struct {
	Label     string
	Version   int
	Usage     Usage
	Algorithm Algorithm
	// KCV is the key check value: the first 3 bytes of encrypting zeros
	// (TDES) or of the AES-CMAC of zeros (AES, per X9.24).
	KCV []byte
}

// ImportKeyRequest imports clear key material (development and tests; in
// production keys arrive as TR-31 key blocks or by key ceremony).
type ImportKeyRequest struct {
	Label     string
	Usage     Usage
	Algorithm Algorithm
	Material  []byte
}

// GenerateKeyRequest creates a random key of Size bytes.
type GenerateKeyRequest struct {
	Label     string
	Usage     Usage
	Algorithm Algorithm
	Size      int
}

// KeyManager is the optional key lifecycle ability of a backend. Importing
// or generating under an existing label adds a new version and makes it
// current (rotation); older versions stay usable for decryption.
type KeyManager interface {
	ImportKey(ctx context.Context, req ImportKeyRequest) (KeyInfo, error)
	GenerateKey(ctx context.Context, req GenerateKeyRequest) (KeyInfo, error)
	Keys(ctx context.Context) ([]KeyInfo, error)
}

// Errors callers decide on.
var (
	ErrKeyNotFound     = errors.New("hsm: key not found")
	ErrWrongUsage      = errors.New("hsm: key not permitted for this operation")
	ErrMACMismatch     = errors.New("hsm: MAC verification failed")
	ErrInvalidPINBlock = errors.New("hsm: PIN block does not decode")
	ErrDecrypt         = errors.New("hsm: ciphertext does not decrypt")
	ErrUnsupported     = errors.New("hsm: operation not supported by this backend")
	ErrNoCGO           = errors.New("hsm: pkcs11 backend needs a binary built with cgo")
)

// CheckPINKey checks that a key suits a PINKey: a KSN exactly with a BDK,
// and the cipher the block format needs (ISO 0: TDES, ISO 4: AES). Every
// backend calls it before it touches the key.
func CheckPINKey(info KeyInfo, pk PINKey) error {
	switch {
	case info.Usage == UsageBDK && len(pk.KSN) == 0:
		return fmt.Errorf("a BDK needs a KSN: %w", ErrWrongUsage)
	case info.Usage != UsageBDK && len(pk.KSN) != 0:
		return fmt.Errorf("a KSN was given for a %s key, not a BDK: %w", info.Usage, ErrWrongUsage)
	}
	var want Algorithm
	switch pk.Format {
	case ISO0:
		want = TDES
	case ISO4:
		want = AES
	default:
		return fmt.Errorf("PIN block format %d: %w", pk.Format, ErrUnsupported)
	}
	if info.Algorithm != want {
		return fmt.Errorf("format %d needs a %s key, this one is %s: %w", pk.Format, want, info.Algorithm, ErrWrongUsage)
	}
	return nil
}

// CheckMACKey checks that a key suits a MAC algorithm (retail MAC: TDES,
// CMAC: AES); every backend calls it before it touches the key.
func CheckMACKey(info KeyInfo, alg MACAlgorithm) error {
	var want Algorithm
	switch alg {
	case RetailMAC:
		want = TDES
	case CMAC:
		want = AES
	default:
		return fmt.Errorf("MAC with key %q: algorithm %q: %w", info.Label, alg, ErrUnsupported)
	}
	if info.Algorithm != want {
		return fmt.Errorf("MAC with key %q version %d: %s needs a %s key, this one is %s: %w",
			info.Label, info.Version, alg, want, info.Algorithm, ErrWrongUsage)
	}
	return nil
}

// MaxLabel is the longest key label.
const MaxLabel = 64

// CheckLabel accepts 1 to 64 characters of A-Z a-z 0-9 . _ - starting with
// a letter or digit, so a label never contains the separators the backends
// use in AADs ('|') and object names ('/', '#').
func CheckLabel(label string) error {
	if label == "" || len(label) > MaxLabel {
		return fmt.Errorf("label must be 1 to %d characters, got %d", MaxLabel, len(label))
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

// Errors of a device the switch reaches over the network (a payment HSM):
// the switch answers 91 when it cannot reach it in time and 96 when it
// answers with an error, and never approves what it could not check.
var (
	// ErrHSMUnavailable: no connection to the HSM could be used.
	ErrHSMUnavailable = errors.New("hsm: HSM unavailable")
	// ErrHSMTimeout: the HSM did not answer in time.
	ErrHSMTimeout = errors.New("hsm: HSM did not answer in time")
	// ErrHSMFault: the HSM answered with an error code (see DeviceError).
	ErrHSMFault = errors.New("hsm: HSM answered with an error")
	// ErrClearKeyRefused: the backend imports keys only under a KEK or
	// as components (ImportWrappedKey), never in clear.
	ErrClearKeyRefused = fmt.Errorf("hsm: clear key import refused, import under a KEK: %w", ErrUnsupported)
)

// DeviceError is an HSM's own error code for a command; errors.Is matches
// ErrHSMFault.
type DeviceError struct {
	Backend string // "payshield"
	Command string // the host command, "CA"
	Code    string // the device's error code, "15"
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("%s: command %s answered error %s", e.Backend, e.Command, e.Code)
}

// Is makes errors.Is(err, ErrHSMFault) true.
func (e *DeviceError) Is(target error) bool { return target == ErrHSMFault }

// ImportWrappedKeyRequest imports a key that arrives encrypted under a
// key-encryption key the HSM already holds (a ZMK): a TR-31 key block
// (ANSI X9.143) whose header must agree with Usage and Algorithm.
type ImportWrappedKeyRequest struct {
	Label     string
	Usage     Usage
	Algorithm Algorithm
	// KEK is the key-encryption key (UsageKEK) the block is wrapped under.
	KEK KeyRef
	// Block is the TR-31 key block, as ASCII.
	Block string
}

// WrappedKeyImporter is the optional ability to import keys under a KEK;
// backends that refuse clear import (ErrClearKeyRefused) offer it.
type WrappedKeyImporter interface {
	ImportWrappedKey(ctx context.Context, req ImportWrappedKeyRequest) (KeyInfo, error)
}

// UsageKEK is a key-encryption key (a zone master key, ZMK): keys are
// exchanged with other parties and imported under it.
const UsageKEK Usage = "zmk"

// ImportUnderKEKRequest imports a key exchanged with another party in the
// variant-free form issuers send in a key-change 0800 (DE 70 = 161): the
// key encrypted with TDES in ECB mode under a TDES zone master key (KEK,
// UsageKEK) the HSM already holds, with its key check value. The KCV is
// mandatory: a key whose KCV does not match is refused (ErrKCVMismatch)
// and nothing is stored.
type ImportUnderKEKRequest struct {
	KEK       KeyRef
	Label     string
	Usage     Usage
	Algorithm Algorithm
	// Wrapped is the key (16 or 24 bytes) encrypted under the KEK.
	Wrapped []byte
	// KCV is the clear key's check value (3 bytes or more; the first 3
	// are compared).
	KCV []byte
}

// KeyImporter is the optional ability to import a key sent under a zone
// master key (ImportUnderKEKRequest); the clear key exists only inside the
// HSM. Backends without it leave ImportUnderKEK to answer ErrUnsupported.
type KeyImporter interface {
	ImportUnderKEK(ctx context.Context, req ImportUnderKEKRequest) (KeyInfo, error)
}

// ErrKCVMismatch: an imported key's check value is not the one sent with it.
var ErrKCVMismatch = errors.New("hsm: key check value does not match")

// ImportUnderKEK imports req with b's KeyImporter (looking through
// Instrument's wrapper), or answers ErrUnsupported when b has none.
func ImportUnderKEK(ctx context.Context, b HSM, req ImportUnderKEKRequest) (KeyInfo, error) {
	for b != nil {
		if ki, ok := b.(KeyImporter); ok {
			return ki.ImportUnderKEK(ctx, req)
		}
		u, ok := b.(interface{ Unwrap() HSM })
		if !ok {
			break
		}
		b = u.Unwrap()
	}
	return KeyInfo{}, fmt.Errorf("import key %q under %q: %w", req.Label, req.KEK.Label, ErrUnsupported)
}
