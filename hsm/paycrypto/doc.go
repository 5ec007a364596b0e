// Package paycrypto implements payment cryptography primitives: ISO 9564-1 PIN blocks, TDES and AES DUKPT, the retail MAC, AES-CMAC and key check values.
//
// Two layers. The string functions (PINBlockISO0, EncryptISO4, ...) take
// and return the PIN as a Go string, which cannot be wiped. Under them is
// an API on byte slices for callers that must wipe what they hold, or that
// keep keys elsewhere (a PKCS#11 token) and run only the block cipher
// there: the PIN-field and PAN-field codec with the cipher passed in as a
// BlockFunc (pinfield.go), the TDES DUKPT walk from an IPEK
// (TDESPINKeyFromIPEK) and the AES DUKPT walk as a list of derivation
// steps (AESDerivations). Its rule: arguments are only read; every slice
// returned is fresh and the caller's to Wipe; intermediates are wiped
// inside.
package paycrypto
