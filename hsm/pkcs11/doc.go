// Package pkcs11 is the hsm backend over a PKCS#11 token (SoftHSM2 in tests), needing cgo.
package pkcs11

// What runs in the token and what runs in host memory.
//
// Build. The backend uses github.com/miekg/pkcs11 and needs cgo. A binary
// built with CGO_ENABLED=0 still compiles; its Open returns an error
// wrapping hsm.ErrNoCGO.
//
// Keys. Every key version is one or more token objects (objects.go explains
// the labels and CKA_ID): CKO_SECRET_KEY, CKA_TOKEN, CKA_PRIVATE,
// CKA_SENSITIVE, not CKA_EXTRACTABLE, with only the CKA_ENCRYPT/DECRYPT/
// SIGN/VERIFY/DERIVE flags and CKA_ALLOWED_MECHANISMS the usage needs
// (plus the mechanism of its KCV). CKA_MODIFIABLE stays true: SoftHSM2
// copies only modifiable objects and refuses the attribute in C_DeriveKey.
// Operations use session copies of the token objects (C_CopyObject with
// CKA_TOKEN false, same sensitivity, owned by a session outside the pool):
// SoftHSM2's file store re-validates a token object at every use, which
// more than doubled the cost of each operation. The backend also checks
// usage itself and returns hsm.ErrWrongUsage. GenerateKey uses
// C_GenerateKey (a TDES MAC key: C_DeriveKey, see below), so a generated
// key never exists outside the token, with one exception it refuses
// rather than fakes: a TDES BDK (ErrUnsupported;
// its DUKPT variant would need CKM_XOR_BASE_AND_DATA, which SoftHSM2 does
// not have). ImportKey passes clear material to C_CreateObject: the
// material is in host memory by definition; the copies made here are
// zeroed. KCVs are computed in the token, at creation and at Open.
// ImportUnderKEK (an issuer's key change, a ZPK under a TDES ZMK in ECB
// form) uses C_UnwrapKey with CKM_DES3_ECB when the token lists
// CKF_UNWRAP for it, so the key never leaves the token; SoftHSM2 does not
// (it unwraps with AES key wrap and RSA only), and there the ZPK is
// deciphered under the ZMK in the token (C_Decrypt, the ZMK then carrying
// CKA_DECRYPT) and created with C_CreateObject: it is in host memory for
// those two calls and wiped (keyexchange.go).
//
// Operations, and what necessarily crosses into host memory:
//
//   - EncryptPAN/DecryptPAN: CKM_AES_GCM in the token, random 12-byte nonce
//     (from crypto/rand; the nonce is public), 128-bit tag, AAD
//     "pan|<label>|<version>"; output nonce|ciphertext|tag, the same layout
//     and AAD as the software backend. The clear PAN is in host memory
//     because the caller holds it; our []byte copies are wiped, the string
//     DecryptPAN returns cannot be.
//   - HashPAN: CKM_SHA256_HMAC in the token (CKK_GENERIC_SECRET key).
//   - TranslatePIN, static keys: the block is deciphered in the token
//     (CKM_DES3_ECB, or for ISO 4 two CKM_AES_ECB deciphers with the PAN
//     field XORed in between, here), decoded and re-encoded here, and
//     enciphered in the token. The PIN-field codec is paycrypto's []byte
//     API (DecipherISO0/4, EncipherISO0/4), given the token's cipher as a
//     paycrypto.BlockFunc. The clear PIN block, the ISO 4 intermediate
//     blocks and the PIN digits exist in host memory for the duration of
//     the call and are wiped (as []byte; the PIN is never a Go string).
//   - TranslatePIN, TDES DUKPT: the token enciphers the IPEK input under
//     the BDK and under a hidden variant object (BDK XOR
//     C0C0C0C000000000C0C0C0C000000000, created at import); so the IPEK,
//     the future keys walked to the KSN's counter, the PIN key, and the
//     clear PIN block are in host memory (the X9.24-1 walk XORs key
//     halves, which no SoftHSM2 mechanism does on objects; it is
//     paycrypto.TDESPINKeyFromIPEK). Byte slices are wiped; crypto/des key
//     schedules cannot be and are left to the collector. The BDK itself
//     never leaves the token.
//   - TranslatePIN, AES DUKPT: entirely in the token. Each X9.24-3 key is
//     C_DeriveKey with CKM_AES_ECB_ENCRYPT_DATA of the derivation data
//     (paycrypto.AESDerivations lists the steps) under its parent; the
//     initial, intermediate and working keys are sensitive session
//     objects destroyed after the call. Only the ISO 4 intermediate block
//     and the PIN digits are in host memory, as above.
//   - GenerateMAC/VerifyMAC, CMAC: CKM_AES_CMAC in the token, truncated to
//     8 bytes here; VerifyMAC compares here in constant time (SoftHSM2
//     has no CKM_AES_CMAC_GENERAL; the MAC is not secret).
//   - GenerateMAC/VerifyMAC, retail MAC (ISO 9797-1 algorithm 3): in the
//     token, with TDES mechanisms only (SoftHSM2 on OpenSSL 3 lists single
//     DES but cannot run it). The key K1|K2 has a hidden companion K1|K1,
//     which enciphers as single DES under K1: CKM_DES3_CBC under K1|K1
//     over all blocks but the last, then CKM_DES3_CBC under K1|K2 with the
//     chaining value as IV over the last block, which is exactly
//     E_K1(D_K2(E_K1(last XOR chaining value))). The chaining value, a
//     single-DES ciphertext under K1, passes through host memory between
//     the two calls (a payment HSM keeps it inside; PKCS#11 has no
//     retail-MAC mechanism) and is wiped. A generated TDES MAC key is
//     derived in the token (CKM_DES3_ECB_ENCRYPT_DATA from a session key:
//     E_S(d1)|E_S(d2) and E_S(d1)|E_S(d1)), so it never leaves it either.
// Buffers miekg/pkcs11 allocates in C for results are freed but not wiped.
//
// Sessions. Open opens Options.Sessions R/W sessions into a buffered
// channel and logs in once (the login belongs to the application); every
// operation takes one session and returns it. The module's C_Initialize,
// C_Finalize and the login are process-wide, so HSMs on the same module
// share them by reference count.
//
// Keys written by another process after Open are found on a miss (an
// unknown label or version makes the HSM re-read the token once); a new
// current version written elsewhere is seen after that or a re-open.
