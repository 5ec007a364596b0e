package paycrypto

import (
	"bytes"
	"strings"
	"testing"
)

// ANSI X9.24-1:2009 annex A.4 test data: BDK, initial KSN, and the clear
// format 0 PIN block for PIN 1234, PAN 4012345678909.
const (
	x924BDK  = "0123456789ABCDEFFEDCBA9876543210"
	x924IKSN = "FFFF9876543210E00000"
	x924IPEK = "6AC292FAA1315B4D858AB3A3D7D5933A"
	x924PAN  = "4012345678909"
)

func TestTDESIPEK(t *testing.T) {
	bdk := unhex(x924BDK)
	// X9.24-1:2009 A.4: the IPEK; the counter bits of the KSN are ignored.
	for _, ksn := range []string{x924IKSN, "FFFF9876543210E00001", "FFFF9876543210E00008", "FFFF9876543210FFFFFF", "FFFF9876543210F00000"} {
		got, err := TDESIPEK(bdk, unhex(ksn))
		if err != nil {
			t.Fatal(err)
		}
		if upperHex(got) != x924IPEK {
			t.Errorf("TDESIPEK(%s) = %X, want %s", ksn, got, x924IPEK)
		}
	}
}

// tdesSequence is a KSN, the transaction (current) key the annex lists for
// it, and the clear PIN block 041274EDCBA9876F encrypted under that key's
// PIN variant.
type tdesSequence struct{ ksn, key, pinBlock string }

// X9.24-1:2009 A.4.2, initial sequence (transaction counters 1 to 0x15).
// Transcribed in openemv/dukpt test/dukpt_tdes_test.c; the first five also
// in moov-io/dukpt pkg/des/des_test.go.
var tdesInitialSequence = []tdesSequence{
	{"FFFF9876543210E00001", "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A"},
	{"FFFF9876543210E00002", "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107"},
	{"FFFF9876543210E00003", "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466"},
	{"FFFF9876543210E00004", "279C0F6AEED0BE652B2C733E1383AE91", "0BC79509D5645DF7"},
	{"FFFF9876543210E00005", "5F8DC6D2C845C125508DDC048093B83F", "5BC0AF22AD87B327"},
	{"FFFF9876543210E00006", "5E415CB0BAF9F03CD0C14B63FB62FF43", "A16DF70AE36158D8"},
	{"FFFF9876543210E00007", "0C8F780B7C8B49D0AE84A9EB2A6CE660", "27711C16CB257F8E"},
	{"FFFF9876543210E00008", "27F66D5244FF62E1AA6F6120EDEB4280", "50E55547A5027551"},
	{"FFFF9876543210E00009", "27E31064FDC565698900E2057F658E7E", "536CF7F678ACFC8D"},
	{"FFFF9876543210E0000A", "6CF2500A22507C7CC776CEADC1E33014", "EDABBA23221833FE"},
	{"FFFF9876543210E0000B", "3E8260BA04B2D620C01482B3819A18B7", "2328981C57B4BDBA"},
	{"FFFF9876543210E0000C", "B716E1E11CF53D80726CAEE75C3A624F", "038D03CC926CF286"},
	{"FFFF9876543210E0000D", "E072EDF95340535FB6C581C58FBF2533", "6C8AA97088B62C68"},
	{"FFFF9876543210E0000E", "A80046087F5B8F245AAD95E18429084F", "F17C9E1D72CD4950"},
	{"FFFF9876543210E0000F", "93DD5B956C4878472E453AAEFD32A5AA", "B170F6E7F7F2F64A"},
	{"FFFF9876543210E00010", "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6"},
	{"FFFF9876543210E00011", "2B5F01F4F0CC05EA639D523231BF1BA2", "D544F8CDD292C863"},
	{"FFFF9876543210E00012", "9CF640F279C2AEE615F725EEEAC2CBAF", "7A21BD10F36DC41D"},
	{"FFFF9876543210E00013", "C3DF489FDF1153B4F03DE97C27DC4C2F", "78649BD17D0DFA60"},
	{"FFFF9876543210E00014", "658488507721B3F14737FA93F923CBD2", "7E7E16EA0C31AD56"},
	{"FFFF9876543210E00015", "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6"},
}

// X9.24-1:2009 A.4.3, rollover sequence, including the counter 0x100000
// (one bit, the highest). Transcribed in openemv/dukpt
// test/dukpt_tdes_test.c.
var tdesRolloverSequence = []tdesSequence{
	{"FFFF9876543210EFF800", "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35"},
	{"FFFF9876543210EFF801", "5BEE92627E97825C911BF619DF72CA3B", "3A86BF003F835C9D"},
	{"FFFF9876543210EFF802", "64CA2F8AB93F61B01620B00BF77C7301", "3DB977D05C36DF3F"},
	{"FFFF9876543210EFF804", "35A168695B3BA83307E871C42021DD37", "BA83243305712099"},
	{"FFFF9876543210EFF808", "12C380FCB72ED3C26FC6079AF63F4787", "B0DA04AC90A36D85"},
	{"FFFF9876543210EFF810", "D8007C833A1E3C49C6889B97A68C54FF", "2CF02BD9C309EEDA"},
	{"FFFF9876543210EFF820", "A9C9FF9B735FDD49591F296B0BF0FD70", "9D1E2F77AEEE81C6"},
	{"FFFF9876543210EFF840", "0E3E221062CB5E03A384602783A004FA", "40870B0F8BA2011C"},
	{"FFFF9876543210EFF880", "CA8225C587124DFBB87F279C0BE29727", "22E340D6ABB40981"},
	{"FFFF9876543210EFF900", "906AAC1751D4971A144D52C76C6E1F97", "1A4C10AFBA03A430"},
	{"FFFF9876543210EFFA00", "2B9E2CE7C2750337E10B54D2989EA6AF", "849763B43E5F9CFF"},
	{"FFFF9876543210EFFC00", "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71"},
	{"FFFF9876543210F00000", "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E"},
}

func TestTDESDUKPTSequences(t *testing.T) {
	bdk := unhex(x924BDK)
	for name, seq := range map[string][]tdesSequence{"A.4.2": tdesInitialSequence, "A.4.3": tdesRolloverSequence} {
		for _, tt := range seq {
			t.Run(name+"/"+tt.ksn, func(t *testing.T) {
				ksn := unhex(tt.ksn)
				key, err := TDESTransactionKey(bdk, ksn)
				if err != nil {
					t.Fatal(err)
				}
				if upperHex(key) != tt.key {
					t.Errorf("TDESTransactionKey = %X, want %s", key, tt.key)
				}
				pinKey, err := TDESPINKey(bdk, ksn)
				if err != nil {
					t.Fatal(err)
				}
				// The PIN variant flips the last byte of each half.
				want := unhex(tt.key)
				want[7] ^= 0xFF
				want[15] ^= 0xFF
				if !bytes.Equal(pinKey, want) {
					t.Errorf("TDESPINKey = %X, want %X", pinKey, want)
				}
				block, err := EncryptISO0(pinKey, "1234", x924PAN)
				if err != nil {
					t.Fatal(err)
				}
				if upperHex(block) != tt.pinBlock {
					t.Errorf("encrypted PIN block = %X, want %s", block, tt.pinBlock)
				}
				pin, err := DecryptISO0(pinKey, block, x924PAN)
				if err != nil || pin != "1234" {
					t.Errorf("DecryptISO0 = %q, %v", pin, err)
				}
			})
		}
	}
}

func TestTDESPINKeyFirstTransaction(t *testing.T) {
	// Spelled out for KSN ...E00001: the annex's current key
	// 042666B49184CFA368DE9628D0397BC9 is the transaction key; the PIN key is
	// that XOR 00000000000000FF00000000000000FF.
	got, err := TDESPINKey(unhex(x924BDK), unhex("FFFF9876543210E00001"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "042666B49184CF5C68DE9628D0397B36"; upperHex(got) != want {
		t.Errorf("TDESPINKey = %X, want %s", got, want)
	}
}

func TestTDESMACKey(t *testing.T) {
	// X9.24-1:2009 A.4 request MACs over the ASCII data "4012345678909D987"
	// with the request MAC variant and the ISO 9797-1 algorithm 3 retail MAC
	// (padding method 1). Transcribed in moov-io/dukpt pkg/des/des_test.go
	// (RequestMac).
	tests := []struct{ ksn, mac string }{
		{"FFFF9876543210E00001", "9CCC78173FC4FB64"},
		{"FFFF9876543210E00002", "F608A9BCA6FFC311"},
		{"FFFF9876543210E00003", "20B59A4FEAC937E3"},
		{"FFFF9876543210E00004", "C7BFA6CC44161828"},
		{"FFFF9876543210E00005", "0202B96339022058"},
	}
	bdk := unhex(x924BDK)
	for _, tt := range tests {
		t.Run(tt.ksn, func(t *testing.T) {
			key, err := TDESMACKey(bdk, unhex(tt.ksn))
			if err != nil {
				t.Fatal(err)
			}
			txn, _ := TDESTransactionKey(bdk, unhex(tt.ksn))
			txn[6] ^= 0xFF
			txn[14] ^= 0xFF
			if !bytes.Equal(key, txn) {
				t.Errorf("TDESMACKey = %X, want transaction key ^ MAC variant %X", key, txn)
			}
			mac, err := RetailMAC(key, []byte("4012345678909D987"))
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(mac) != tt.mac {
				t.Errorf("RetailMAC = %X, want %s", mac, tt.mac)
			}
		})
	}
}

func TestTDESDUKPTErrors(t *testing.T) {
	bdk := unhex(x924BDK)
	tests := []struct {
		name     string
		bdk, ksn []byte
		msg      string
	}{
		{"bdk-8", bdk[:8], unhex("FFFF9876543210E00001"), "BDK must be 16 bytes"},
		{"bdk-24", append(append([]byte(nil), bdk...), bdk[:8]...), unhex("FFFF9876543210E00001"), "BDK must be 16 bytes"},
		{"ksn-8", bdk, unhex("9876543210E00001"), "KSN must be 10 bytes"},
		{"ksn-12", bdk, unhex("FFFF9876543210E0000100"), "KSN must be 10 bytes"},
		{"counter-0", bdk, unhex("FFFF9876543210E00000"), "counter is zero"},
		// 0x0007FF has 11 one bits; a device never uses it.
		{"counter-11-bits", bdk, unhex("FFFF9876543210E007FF"), "11 one bits"},
		{"counter-21-bits", bdk, unhex("FFFF9876543210FFFFFF"), "21 one bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for fn, f := range map[string]func([]byte, []byte) ([]byte, error){
				"TDESTransactionKey": TDESTransactionKey, "TDESPINKey": TDESPINKey, "TDESMACKey": TDESMACKey,
			} {
				if _, err := f(tt.bdk, tt.ksn); err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("%s: err = %v, want %q", fn, err, tt.msg)
				}
			}
		})
	}
	if _, err := TDESIPEK(bdk[:8], unhex(x924IKSN)); err == nil {
		t.Errorf("TDESIPEK accepted an 8-byte BDK")
	}
	if _, err := TDESIPEK(bdk, unhex("9876543210E00000")); err == nil {
		t.Errorf("TDESIPEK accepted an 8-byte KSN")
	}
	// Ten one bits is the most allowed.
	if _, err := TDESTransactionKey(bdk, unhex("FFFF9876543210E003FF")); err != nil {
		t.Errorf("counter 0x3FF: %v", err)
	}
}

func TestTDESDUKPTDoesNotModifyInputs(t *testing.T) {
	bdk := unhex(x924BDK)
	ksn := unhex("FFFF9876543210EFF801")
	bdk0, ksn0 := append([]byte(nil), bdk...), append([]byte(nil), ksn...)
	if _, err := TDESPINKey(bdk, ksn); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bdk, bdk0) || !bytes.Equal(ksn, ksn0) {
		t.Errorf("inputs modified")
	}
}
