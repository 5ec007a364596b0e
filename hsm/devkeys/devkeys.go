// Package devkeys holds the DEMO keys shared by switchd (in development
// mode), the issuer emulator and the terminal simulator: publicly known test
// values, never for production. Production keys come from a key ceremony or
// TR-31 key blocks into the HSM.
package devkeys

import (
	"encoding/hex"

	"github.com/kbpay/switch/hsm"
)

// Labels of the demo keys in the switch's HSM.
const (
	TPK    = "tpk-demo"     // terminal PIN key, TDES, ISO format 0
	BDK    = "bdk-demo"     // TDES DUKPT base derivation key (X9.24-1 test BDK)
	BDKAES = "bdk-aes-demo" // AES DUKPT base derivation key (X9.24-3 test BDK)
	ZPK    = "zpk-demo"     // issuer zone PIN key, TDES, ISO format 0
	ZPKAES = "zpk-aes-demo" // issuer zone PIN key, AES, ISO format 4
	MAC    = "mac-demo"     // TDES retail MAC key
	MACAES = "mac-aes-demo" // AES CMAC key
)

// Clear values (hex). Terminals and the issuer emulator hold their side of
// these as real devices hold theirs.
const (
	TPKHex    = "A1B2C3D4E5F6071829304A5B6C7D8E9F"
	BDKHex    = "0123456789ABCDEFFEDCBA9876543210"
	BDKAESHex = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
	ZPKHex    = "C1D0F8FB4958670DBA40AB1F3752EF0D"
	ZPKAESHex = "3F2A5C7E9B1D4F6A8C0E2B4D6F8A1C3E"
	MACHex    = "2315208C9110AD402315208C9110AD40"
	MACAESHex = "7B1E4A9C3D2F6E8A0B5C7D9E1F3A5C7E"
	// DemoPIN is every demo account's PIN at the issuer emulator.
	DemoPIN = "1234"
	// KSNPrefixTDES is the demo DUKPT device's initial KSN without its
	// counter (X9.24-1 test KSN FFFF9876543210E00000).
	KSNPrefixTDES = "FFFF9876543210E"
	// InitialKeyIDAES is the demo AES DUKPT device's initial key ID
	// (X9.24-3 test vector).
	InitialKeyIDAES = "1234567890123456"
)

// Bytes decodes one of the hex constants.
func Bytes(h string) []byte {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic("devkeys: bad constant: " + err.Error())
	}
	return b
}

// Imports lists the demo keys as HSM import requests.
func Imports() []hsm.ImportKeyRequest {
	return []hsm.ImportKeyRequest{
		{Label: TPK, Usage: hsm.UsageTerminalPIN, Algorithm: hsm.TDES, Material: Bytes(TPKHex)},
		{Label: BDK, Usage: hsm.UsageBDK, Algorithm: hsm.TDES, Material: Bytes(BDKHex)},
		{Label: BDKAES, Usage: hsm.UsageBDK, Algorithm: hsm.AES, Material: Bytes(BDKAESHex)},
		{Label: ZPK, Usage: hsm.UsageZonePIN, Algorithm: hsm.TDES, Material: Bytes(ZPKHex)},
		{Label: ZPKAES, Usage: hsm.UsageZonePIN, Algorithm: hsm.AES, Material: Bytes(ZPKAESHex)},
		{Label: MAC, Usage: hsm.UsageMAC, Algorithm: hsm.TDES, Material: Bytes(MACHex)},
		{Label: MACAES, Usage: hsm.UsageMAC, Algorithm: hsm.AES, Material: Bytes(MACAESHex)},
	}
}
