package paycrypto

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// AES DUKPT, ANSI X9.24-3:2017.
//
// The 96-bit KSN is the 64-bit initial key ID (32-bit BDK ID then 32-bit
// derivation ID) followed by a 32-bit transaction counter. Every key is
// derived by AES-ECB-encrypting 16-byte derivation data blocks under the
// parent key:
//
//	byte 0     version, 01
//	byte 1     key block counter, 01 for the first 16 bytes of output, 02 for the next
//	bytes 2-3  key usage indicator (AESKeyUsage)
//	bytes 4-5  algorithm indicator of the derived key (AESKeyType)
//	bytes 6-7  length of the derived key in bits
//	bytes 8-15 initial key ID (initial key), or derivation ID | counter
//
// The initial key is derived from the BDK; the intermediate derivation key
// for a counter from the initial key, one step per one bit of the counter
// from the most significant down; the working key from the intermediate
// derivation key.

// AESKeyType is an X9.24-3 key type; its value is the standard's algorithm
// indicator. BDKs and derivation keys are AES; working keys may also be TDES.
type AESKeyType int

// The X9.24-3 key types, with the standard's algorithm indicator values.
const (
	TDES2  AESKeyType = 0 // double-length TDES (2TDEA), 128 bits
	TDES3  AESKeyType = 1 // triple-length TDES (3TDEA), 192 bits
	AES128 AESKeyType = 2
	AES192 AESKeyType = 3
	AES256 AESKeyType = 4
)

func (t AESKeyType) String() string {
	switch t {
	case TDES2:
		return "TDES2"
	case TDES3:
		return "TDES3"
	case AES128:
		return "AES128"
	case AES192:
		return "AES192"
	case AES256:
		return "AES256"
	default:
		return fmt.Sprintf("AESKeyType(%d)", int(t))
	}
}

// bits returns the key length in bits, or 0 for an unknown type.
func (t AESKeyType) bits() int {
	switch t {
	case TDES2, AES128:
		return 128
	case TDES3, AES192:
		return 192
	case AES256:
		return 256
	default:
		return 0
	}
}

func (t AESKeyType) isAES() bool { return t == AES128 || t == AES192 || t == AES256 }

// AESKeyUsage is an X9.24-3 key usage; its value is the standard's key
// usage indicator.
type AESKeyUsage int

// The X9.24-3 key usage indicators.
const (
	KeyEncryptionKey        AESKeyUsage = 0x0002
	PINEncryption           AESKeyUsage = 0x1000
	MACGeneration           AESKeyUsage = 0x2000
	MACVerification         AESKeyUsage = 0x2001
	MACBoth                 AESKeyUsage = 0x2002
	DataEncryptEncrypt      AESKeyUsage = 0x3000
	DataEncryptDecrypt      AESKeyUsage = 0x3001
	DataEncryptBoth         AESKeyUsage = 0x3002
	KeyDerivation           AESKeyUsage = 0x8000 // intermediate derivation keys; not a working key usage
	KeyDerivationInitialKey AESKeyUsage = 0x8001 // the initial key; not a working key usage
)

func (u AESKeyUsage) String() string {
	switch u {
	case KeyEncryptionKey:
		return "KeyEncryptionKey"
	case PINEncryption:
		return "PINEncryption"
	case MACGeneration:
		return "MACGeneration"
	case MACVerification:
		return "MACVerification"
	case MACBoth:
		return "MACBoth"
	case DataEncryptEncrypt:
		return "DataEncryptEncrypt"
	case DataEncryptDecrypt:
		return "DataEncryptDecrypt"
	case DataEncryptBoth:
		return "DataEncryptBoth"
	case KeyDerivation:
		return "KeyDerivation"
	case KeyDerivationInitialKey:
		return "KeyDerivationInitialKey"
	default:
		return fmt.Sprintf("AESKeyUsage(%#04x)", int(u))
	}
}

func (u AESKeyUsage) isWorking() bool {
	switch u {
	case KeyEncryptionKey, PINEncryption, MACGeneration, MACVerification, MACBoth,
		DataEncryptEncrypt, DataEncryptDecrypt, DataEncryptBoth:
		return true
	}
	return false
}

// AESKSNLen is the length of an AES DUKPT KSN in bytes.
const AESKSNLen = 12

const (
	aesKeyIDLen     = 8
	aesMaxOneBits   = 16 // an originating device never uses a counter with more
	aesDerivDataLen = 16
)

// AESKeyTypeOf returns the AES key type of a BDK of keyLen bytes.
func AESKeyTypeOf(keyLen int) (AESKeyType, error) {
	switch keyLen {
	case 16:
		return AES128, nil
	case 24:
		return AES192, nil
	case 32:
		return AES256, nil
	}
	return 0, fmt.Errorf("paycrypto: an AES DUKPT BDK must be 16, 24 or 32 bytes, got %d", keyLen)
}

// checkBDK checks that keyType is an AES type and key has its length.
func checkBDK(key []byte, keyType AESKeyType) error {
	if !keyType.isAES() {
		return fmt.Errorf("paycrypto: AES DUKPT BDK type must be AES128, AES192 or AES256, got %v", keyType)
	}
	if len(key)*8 != keyType.bits() {
		return fmt.Errorf("paycrypto: AES DUKPT BDK of type %v must be %d bytes, got %d", keyType, keyType.bits()/8, len(key))
	}
	return nil
}

// AESDerivation is one step of an X9.24-3 walk: the key it derives is
// Data AES-ECB-enciphered under the key the step before derived (the BDK
// for the first step), truncated to KeyLen bytes. Data is not secret (it
// comes from the KSN), so it needs no wiping. A caller that keeps the BDK
// elsewhere runs the steps there: a PKCS#11 token does each with
// C_DeriveKey and CKM_AES_ECB_ENCRYPT_DATA, so no key reaches host memory.
type AESDerivation struct {
	Usage  AESKeyUsage // KeyDerivationInitialKey, KeyDerivation, or the working key's usage
	Type   AESKeyType  // the derived key's type
	KeyLen int         // the derived key's length in bytes
	Data   []byte      // derivation data: one 16-byte block per 16 bytes of key
}

// aesDerivation returns the step deriving a key of keyType for usage, from
// the 8 trailing bytes of derivation data (initial key ID, or derivation
// ID and counter).
func aesDerivation(usage AESKeyUsage, keyType AESKeyType, tail []byte) AESDerivation {
	n := keyType.bits() / 8
	data := make([]byte, aesDerivDataLen*((n+aesDerivDataLen-1)/aesDerivDataLen))
	for i := 0; i < len(data); i += aesDerivDataLen {
		b := data[i : i+aesDerivDataLen]
		b[0] = 0x01
		b[1] = byte(i/aesDerivDataLen + 1) // the key block counter
		binary.BigEndian.PutUint16(b[2:], uint16(usage))
		binary.BigEndian.PutUint16(b[4:], uint16(keyType))
		binary.BigEndian.PutUint16(b[6:], uint16(keyType.bits()))
		copy(b[8:], tail)
	}
	return AESDerivation{Usage: usage, Type: keyType, KeyLen: n, Data: data}
}

// aesDerive runs one step under the AES key; the result is the caller's.
func aesDerive(key []byte, d AESDerivation) ([]byte, error) {
	c, err := aesCipher(key)
	if err != nil {
		return nil, err
	}
	out, err := EncryptBlocks(c)(d.Data)
	if err != nil {
		return nil, err
	}
	Wipe(out[d.KeyLen:])
	return out[:d.KeyLen], nil
}

// aesWalk runs the steps from key; every key but the last is wiped.
func aesWalk(key []byte, steps []AESDerivation) ([]byte, error) {
	for i, d := range steps {
		next, err := aesDerive(key, d)
		if i > 0 {
			Wipe(key)
		}
		if err != nil {
			return nil, err
		}
		key = next
	}
	return key, nil
}

// AESInitialKey derives the initial key (same type and length as the BDK)
// from the BDK and the 8-byte initial key ID.
func AESInitialKey(bdk, initialKeyID []byte, keyType AESKeyType) ([]byte, error) {
	if err := checkBDK(bdk, keyType); err != nil {
		return nil, err
	}
	if len(initialKeyID) != aesKeyIDLen {
		return nil, fmt.Errorf("paycrypto: AES DUKPT initial key ID must be %d bytes, got %d", aesKeyIDLen, len(initialKeyID))
	}
	return aesDerive(bdk, aesDerivation(KeyDerivationInitialKey, keyType, initialKeyID))
}

// aesCounter checks the KSN and returns its transaction counter, which must
// be non-zero and have at most 16 one bits.
func aesCounter(ksn []byte) (uint32, error) {
	if len(ksn) != AESKSNLen {
		return 0, fmt.Errorf("paycrypto: AES DUKPT KSN must be %d bytes, got %d", AESKSNLen, len(ksn))
	}
	counter := binary.BigEndian.Uint32(ksn[aesKeyIDLen:])
	if counter == 0 {
		return 0, fmt.Errorf("paycrypto: AES DUKPT transaction counter is zero")
	}
	if n := bits.OnesCount32(counter); n > aesMaxOneBits {
		return 0, fmt.Errorf("paycrypto: AES DUKPT transaction counter %#x has %d one bits, at most %d allowed", counter, n, aesMaxOneBits)
	}
	return counter, nil
}

// aesIntermediateDerivations returns the steps from the initial key (of
// type keyType) to the intermediate derivation key for the KSN's counter:
// one per one bit of the counter, most significant first, each with the
// derivation ID and the counter bits processed so far.
func aesIntermediateDerivations(ksn []byte, keyType AESKeyType) ([]AESDerivation, error) {
	counter, err := aesCounter(ksn)
	if err != nil {
		return nil, err
	}
	var steps []AESDerivation
	tail := make([]byte, 8)
	copy(tail, ksn[4:8])
	var working uint32
	for bit := uint32(1) << 31; bit != 0; bit >>= 1 {
		if counter&bit == 0 {
			continue
		}
		working |= bit
		binary.BigEndian.PutUint32(tail[4:], working)
		steps = append(steps, aesDerivation(KeyDerivation, keyType, tail))
	}
	return steps, nil
}

// aesIntermediateKey derives the intermediate derivation key for the KSN's
// counter from the initial key (of type keyType).
func aesIntermediateKey(ik, ksn []byte, keyType AESKeyType) ([]byte, error) {
	steps, err := aesIntermediateDerivations(ksn, keyType)
	if err != nil {
		return nil, err
	}
	return aesWalk(ik, steps)
}

// AESDerivations returns the X9.24-3 walk from a BDK of bdkType to the
// working key of workingType for usage, for the 12-byte KSN: the initial
// key from the KSN's initial key ID, one intermediate derivation key per
// one bit of its counter, then the working key (always the last step).
// The counter must be non-zero with at most 16 one bits. A working key may
// not be stronger than the BDK (strength order TDES2 < TDES3 < AES128 <
// AES192 < AES256), and usage must be a working key usage (not
// KeyDerivation or KeyDerivationInitialKey).
func AESDerivations(ksn []byte, bdkType AESKeyType, usage AESKeyUsage, workingType AESKeyType) ([]AESDerivation, error) {
	if !bdkType.isAES() {
		return nil, fmt.Errorf("paycrypto: AES DUKPT BDK type must be AES128, AES192 or AES256, got %v", bdkType)
	}
	if workingType.bits() == 0 {
		return nil, fmt.Errorf("paycrypto: unknown AES DUKPT working key type %v", workingType)
	}
	if workingType > bdkType {
		return nil, fmt.Errorf("paycrypto: AES DUKPT working key type %v is stronger than BDK type %v", workingType, bdkType)
	}
	if !usage.isWorking() {
		return nil, fmt.Errorf("paycrypto: %v is not an AES DUKPT working key usage", usage)
	}
	intermediate, err := aesIntermediateDerivations(ksn, bdkType)
	if err != nil {
		return nil, err
	}
	steps := make([]AESDerivation, 0, len(intermediate)+2)
	steps = append(steps, aesDerivation(KeyDerivationInitialKey, bdkType, ksn[:aesKeyIDLen]))
	steps = append(steps, intermediate...)
	return append(steps, aesDerivation(usage, workingType, ksn[4:])), nil
}

// AESWorkingKey derives the working key of workingType for usage from the
// BDK (of bdkType) and the 12-byte KSN, along AESDerivations; the initial
// and intermediate derivation keys are wiped. The caller wipes the result.
func AESWorkingKey(bdk, ksn []byte, bdkType AESKeyType, usage AESKeyUsage, workingType AESKeyType) ([]byte, error) {
	if err := checkBDK(bdk, bdkType); err != nil {
		return nil, err
	}
	steps, err := AESDerivations(ksn, bdkType, usage, workingType)
	if err != nil {
		return nil, err
	}
	return aesWalk(bdk, steps)
}
