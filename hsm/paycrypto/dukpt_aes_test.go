package paycrypto

import (
	"bytes"
	"strings"
	"testing"
)

// ANSI X9.24-3:2017 annex B / supplement test vectors ("X9.24-3-2017 Test
// Vectors", x9.org): AES-128 BDK, the same bits twice as the AES-256 BDK,
// and the initial key ID. Transcribed in openemv/dukpt
// (test/dukpt_aes_test.c, test/dukpt_aes128_test.c), moov-io/dukpt
// (pkg/aes/aes_test.go), the CEX library's DUKPTTest KATs and the
// CryptoScript DukptAesWorkingKeyTests; every vector below appears in at
// least one of them and the derivation is pinned by vectors that appear in
// several.
const (
	x9243BDK128 = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
	x9243BDK256 = "FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210F1F1F1F1F1F1F1F1"
	x9243IKID   = "1234567890123456"
	x9243IK128  = "1273671EA26AC29AFA4D1084127652A1"
	x9243IK256  = "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F"
)

func ksnFor(counter string) []byte { return unhex(x9243IKID + counter) }

func TestAESInitialKey(t *testing.T) {
	tests := []struct {
		name, bdk  string
		typ        AESKeyType
		ikid, want string
	}{
		// X9.24-3:2017 B.1 (openemv/dukpt, moov-io/dukpt, CEX).
		{"X9.24-3/AES128", x9243BDK128, AES128, x9243IKID, x9243IK128},
		// X9.24-3:2017 supplement, AES-256 BDK (openemv/dukpt, CEX).
		{"X9.24-3/AES256", x9243BDK256, AES256, x9243IKID, x9243IK256},
		// Not a standard vector: an independent implementation's
		// cross-check of the two-block, truncated-to-24-bytes AES-192 case
		// (CryptoScript DukptAesInitialKey tests, generated with OpenSSL
		// AES-192-ECB), with the NIST AES-192 example key as the BDK.
		{"cross-check/AES192", "8E73B0F7DA0E6452C810F32B809079E562F8EAD2522C6B7B", AES192, x9243IKID,
			"3B1C5B8720988B8E0AD9E52642A92D5CE331ABBFD80DE1C6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AESInitialKey(unhex(tt.bdk), unhex(tt.ikid), tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(got) != tt.want {
				t.Errorf("AESInitialKey = %X, want %s", got, tt.want)
			}
		})
	}
}

func TestAESIntermediateKey(t *testing.T) {
	tests := []struct {
		name, ik string
		typ      AESKeyType
		counter  string
		want     string
	}{
		// X9.24-3:2017 supplement, AES-128: intermediate derivation keys
		// ("transaction keys") for the first eight counters (openemv/dukpt
		// dukpt_aes128_test.c, moov-io/dukpt CurrentKey).
		{"AES128", x9243IK128, AES128, "00000001", "4F21B565BAD9835E112B6465635EAE44"},
		{"AES128", x9243IK128, AES128, "00000002", "2F34D68DE10F68D38091A73B9E7C437C"},
		{"AES128", x9243IK128, AES128, "00000003", "031504E530365CF81264238540518318"},
		{"AES128", x9243IK128, AES128, "00000004", "0EEFC7ADA628BA68878DA9165A8A1887"},
		{"AES128", x9243IK128, AES128, "00000005", "C2A7AC328A5DA2D6002D62465BFC028B"},
		{"AES128", x9243IK128, AES128, "00000006", "D30F7D9351DA58448A2F5E92B4EE3B7D"},
		{"AES128", x9243IK128, AES128, "00000007", "A8253CEED9AC042C54F75D35C8352278"},
		{"AES128", x9243IK128, AES128, "00000008", "718EE6CF0B27E53D5F7AF99C4D8146A2"},
		// Counters around the 0x1FFFF rollover (openemv/dukpt; 0x1FFFF
		// itself has 17 one bits and is never used).
		{"AES128", x9243IK128, AES128, "0001FFFE", "E21E8C8D347F8561A2BE752DAA85A111"},
		{"AES128", x9243IK128, AES128, "00020000", "F7AE9025468A25D37B7249CFFED224C8"},
		{"AES128", x9243IK128, AES128, "00020001", "692C8EA4013645135B36497131DF9D2C"},
		// The last four counters (openemv/dukpt; the last three also CEX).
		{"AES128", x9243IK128, AES128, "FFFE2000", "48E585B694EB0B18D5C35443E163C0BA"},
		{"AES128", x9243IK128, AES128, "FFFE4000", "396C2C7CA1EA701C03B86B7D41F0C562"},
		{"AES128", x9243IK128, AES128, "FFFE8000", "0387625F189B58AE03EF0E8CCA41105E"},
		{"AES128", x9243IK128, AES128, "FFFF0000", "F6BA59389BD14A9855BE9727E7C52E3C"},
		// AES-256 (CEX DUKPTTest).
		{"AES256", x9243IK256, AES256, "00000001", "54AC2B32B145EA4A554CB8BC44B17467063A799856B1CCC2A138D36E8DBF78B3"},
		{"AES256", x9243IK256, AES256, "00000002", "5DD5A0253842BBBE1D7C0DA27021412C6F1FAB53FB928DEAE56DA06090A9DE97"},
		{"AES256", x9243IK256, AES256, "00000003", "8EEEF7C464AE415BB1D73FAED21993CD669F7999092A579EC6DD3CC680C65171"},
		{"AES256", x9243IK256, AES256, "FFFE4000", "FF20E1BB575539ACCB44E3111BE8757F83AE8549A2DD71B441A4A424F7FFD4B1"},
		{"AES256", x9243IK256, AES256, "FFFE8000", "630535C9C53E1EC6524016930B56F6728909C45403536B419AEBCB25B7351C07"},
		{"AES256", x9243IK256, AES256, "FFFF0000", "6D6DB7AAAE8B3EA90E57A39E4BBA71E173B21B446B30A78D64BFC6A8806C55EE"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.counter, func(t *testing.T) {
			got, err := aesIntermediateKey(unhex(tt.ik), ksnFor(tt.counter), tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(got) != tt.want {
				t.Errorf("intermediate key = %X, want %s", got, tt.want)
			}
		})
	}
}

func TestAESWorkingKey(t *testing.T) {
	tests := []struct {
		name    string
		bdk     string
		bdkType AESKeyType
		counter string
		usage   AESKeyUsage
		wType   AESKeyType
		want    string
	}{
		// AES-128 BDK, counter 1, every usage (CryptoScript
		// DukptAesWorkingKeyTests; PIN, MAC generation, data encrypt and
		// KEK also in a payment-HSM knowledge base transcription).
		{"PIN", x9243BDK128, AES128, "00000001", PINEncryption, AES128, "AF8CB133A78F8DC2D1359F18527593FB"},
		{"MACGen", x9243BDK128, AES128, "00000001", MACGeneration, AES128, "A2DC23DE6FDE0824A2BC321E08E4B8B7"},
		{"MACVer", x9243BDK128, AES128, "00000001", MACVerification, AES128, "DBB463945B286C07CD3AD82EE96FD9C9"},
		{"MACBoth", x9243BDK128, AES128, "00000001", MACBoth, AES128, "85675439D18D7F1158BD8E3EAA3D502B"},
		{"DataEnc", x9243BDK128, AES128, "00000001", DataEncryptEncrypt, AES128, "A35C412EFD41FDB98B69797C02DCD08F"},
		{"DataDec", x9243BDK128, AES128, "00000001", DataEncryptDecrypt, AES128, "16292C6EA8F64C5420A0584BFBC577BE"},
		{"DataBoth", x9243BDK128, AES128, "00000001", DataEncryptBoth, AES128, "A308E080DD15A1B741F1721BF67DE11C"},
		{"KEK", x9243BDK128, AES128, "00000001", KeyEncryptionKey, AES128, "36A724B7BEFA5A25F5E7B5782A4554A2"},
		// AES-128 PIN keys for more counters (CEX DUKPTTest; counter 2 is
		// also the PIN key of the format 4 example).
		{"PIN", x9243BDK128, AES128, "00000002", PINEncryption, AES128, "D30BDC73EC9714B000BEC66BDB7B6D09"},
		{"PIN", x9243BDK128, AES128, "00000003", PINEncryption, AES128, "7D69F01F3B45449F62C7816ECE723268"},
		{"PIN", x9243BDK128, AES128, "FFFE4000", PINEncryption, AES128, "6239A27F572DEDB17BCA1AC413EF9FE9"},
		{"PIN", x9243BDK128, AES128, "FFFE8000", PINEncryption, AES128, "F10C1404137A80718FCCE8BD90FF9F67"},
		{"PIN", x9243BDK128, AES128, "FFFF0000", PINEncryption, AES128, "27EFAC1D158632588F4AC69E45C247C4"},
		// Counter 8 (knowledge base transcription).
		{"PIN", x9243BDK128, AES128, "00000008", PINEncryption, AES128, "4D9DF3FBEE3448FC3E676D04320A90F5"},
		{"MACGen", x9243BDK128, AES128, "00000008", MACGeneration, AES128, "6FD572E5D59E618875F193484F9178FB"},
		{"DataEnc", x9243BDK128, AES128, "00000008", DataEncryptEncrypt, AES128, "650F34204ABD4E57764D61AC3D266FB1"},
		// TDES working keys from the AES-128 BDK (CryptoScript PIN keys;
		// MAC and data keys from the knowledge base transcription).
		{"PIN", x9243BDK128, AES128, "00000001", PINEncryption, TDES2, "630C706D9546E47D4449313F61C4D4AB"},
		{"MACGen", x9243BDK128, AES128, "00000001", MACGeneration, TDES2, "5D8FD787E8A796D07035FFCA9B5800BB"},
		{"DataEnc", x9243BDK128, AES128, "00000001", DataEncryptEncrypt, TDES2, "BD44121C223F831446A01EE3A4CB58D2"},
		{"PIN", x9243BDK128, AES128, "00000001", PINEncryption, TDES3, "EA8B3F37EB9B15831167EF2977FD8762D9B5913F35766F6A"},
		{"MACGen", x9243BDK128, AES128, "00000001", MACGeneration, TDES3, "2A1061A6EAC2C14FAC3758EA07B3648A624B24E942785BF1"},
		{"DataEnc", x9243BDK128, AES128, "00000001", DataEncryptEncrypt, TDES3, "F716DFBC6B2D2D5825B694EEEE181A013F2F1C09380BBE0C"},
		// AES-256 BDK (CEX DUKPTTest PIN keys; CryptoScript counter 1 PIN;
		// MAC and data keys from the knowledge base transcription).
		{"PIN", x9243BDK256, AES256, "00000001", PINEncryption, AES256, "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502"},
		{"PIN", x9243BDK256, AES256, "00000002", PINEncryption, AES256, "3583D6CD02FC38822CC71A8D7678E04F4A8556335E6CC66863D3DADC5AEE2C62"},
		{"PIN", x9243BDK256, AES256, "00000003", PINEncryption, AES256, "96A1AB5D37CB7CF81DDE64F66C46E0389B833E7AD5F4E44C791F04FAFDA6DA0E"},
		{"PIN", x9243BDK256, AES256, "FFFE4000", PINEncryption, AES256, "F388FF9FB1D66E8812BC67CA5B85CE5554063E09A2440EC1AF4EB433CCFBAF35"},
		{"PIN", x9243BDK256, AES256, "FFFE8000", PINEncryption, AES256, "FAC4E05A67AB1522505CF0E94E5977B99D0E5B116D76ABB6B8A64F0D785FF6DF"},
		{"PIN", x9243BDK256, AES256, "FFFF0000", PINEncryption, AES256, "88B82556AEF4A681E0687F443A4C4F305AF9203B114470DFC77C7F08BC43F9DA"},
		{"MACGen", x9243BDK256, AES256, "00000001", MACGeneration, AES256, "61DABDF4B340CF461EE860B1D1AB55357142BD2D6977306859CF49AEFE8F1549"},
		{"DataEnc", x9243BDK256, AES256, "00000001", DataEncryptEncrypt, AES256, "71EB36C9A6B7F801D1D1700C29741FC5A5C4E9B45D742DA7AF6992B8AA29AF58"},
	}
	for _, tt := range tests {
		t.Run(tt.bdkType.String()+"/"+tt.wType.String()+"/"+tt.name+"/"+tt.counter, func(t *testing.T) {
			got, err := AESWorkingKey(unhex(tt.bdk), ksnFor(tt.counter), tt.bdkType, tt.usage, tt.wType)
			if err != nil {
				t.Fatal(err)
			}
			if upperHex(got) != tt.want {
				t.Errorf("AESWorkingKey = %X, want %s", got, tt.want)
			}
		})
	}
}

func TestAESWorkingKeyCMAC(t *testing.T) {
	// AES-CMAC over the ASCII data "4012345678909D987" with the MAC
	// generation (request) and MAC verification (response) working keys of
	// the AES-128 BDK, counters 1-8: moov-io/dukpt pkg/aes/aes_test.go
	// (CMACRequest, CMACResponse).
	tests := []struct{ counter, req, resp string }{
		{"00000001", "A2EB5C1C35809E58404E873C3C411E31", "DD4E1895FD9BF53D8DAF25568ABF551D"},
		{"00000002", "4D104704C53491A60944193DCAF6B411", "008CEAAE2B913BEEE76209EE9406DAC1"},
		{"00000003", "6A18904AA8E966A03505F5EEBDAEBD82", "40CB2F0C2E043D060063FAA916A849E1"},
		{"00000004", "77BBD3FB827158B9B12880B0794D1C74", "51FDE192BC484F769AA0A86F8BC5CB30"},
		{"00000005", "C0CE6DA1F4434AD16EEEBF486C9616CD", "4B508F51104D184A9190061ED854200E"},
		{"00000006", "05222AE91471C590B3A9471523324C14", "ED90BD8AE4571C75CF08EA3EA195ABF8"},
		{"00000007", "37FA54258AAF805A44AA1273C0DF928C", "52D6C1D3A95B1D21761E20870D9A7E8C"},
		{"00000008", "85C7CA68F55F51E7DCAC969B8C111130", "B45399DB90C0BA75DB4B86605758695A"},
	}
	data := []byte("4012345678909D987")
	bdk := unhex(x9243BDK128)
	for _, tt := range tests {
		t.Run(tt.counter, func(t *testing.T) {
			for _, c := range []struct {
				usage AESKeyUsage
				want  string
			}{{MACGeneration, tt.req}, {MACVerification, tt.resp}} {
				key, err := AESWorkingKey(bdk, ksnFor(tt.counter), AES128, c.usage, AES128)
				if err != nil {
					t.Fatal(err)
				}
				mac, err := AESCMAC(key, data)
				if err != nil {
					t.Fatal(err)
				}
				if upperHex(mac) != c.want {
					t.Errorf("%v: CMAC = %X, want %s", c.usage, mac, c.want)
				}
			}
		})
	}
}

func TestAESDUKPTPINBlock(t *testing.T) {
	// The X9.24-3 format 4 example end to end: the PIN key for counter 1
	// from the BDK, then the PIN block (see TestEncryptISO4Vectors).
	key, err := AESWorkingKey(unhex(x9243BDK128), ksnFor("00000001"), AES128, PINEncryption, AES128)
	if err != nil {
		t.Fatal(err)
	}
	block, err := EncryptISO4(key, "1234", "4111111111111111", bytes.NewReader(unhex("2F69ADDE2E9E7ACE")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "A912150391AB65A67E52883D81CE2D15"; upperHex(block) != want {
		t.Errorf("PIN block = %X, want %s", block, want)
	}
}

func TestAESWorkingKeyStrength(t *testing.T) {
	bdks := map[AESKeyType][]byte{
		AES128: unhex(x9243BDK128),
		AES192: unhex(x9243BDK256)[:24],
		AES256: unhex(x9243BDK256),
	}
	all := []AESKeyType{TDES2, TDES3, AES128, AES192, AES256}
	for bdkType, bdk := range bdks {
		for _, w := range all {
			key, err := AESWorkingKey(bdk, ksnFor("00000001"), bdkType, MACGeneration, w)
			if w > bdkType {
				if err == nil || !strings.Contains(err.Error(), "stronger") {
					t.Errorf("%v from %v: err = %v, want stronger-than error", w, bdkType, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%v from %v: %v", w, bdkType, err)
				continue
			}
			if len(key)*8 != w.bits() {
				t.Errorf("%v from %v: %d-byte key", w, bdkType, len(key))
			}
		}
	}
}

func TestAESDUKPTErrors(t *testing.T) {
	bdk := unhex(x9243BDK128)
	ksn := ksnFor("00000001")
	tests := []struct {
		name    string
		bdk     []byte
		ksn     []byte
		bdkType AESKeyType
		usage   AESKeyUsage
		wType   AESKeyType
		msg     string
	}{
		{"bdk-type-tdes", bdk, ksn, TDES2, PINEncryption, TDES2, "BDK type must be AES"},
		{"bdk-type-unknown", bdk, ksn, AESKeyType(9), PINEncryption, AES128, "BDK type must be AES"},
		{"bdk-length", bdk, ksn, AES256, PINEncryption, AES128, "must be 32 bytes"},
		{"working-type-unknown", bdk, ksn, AES128, PINEncryption, AESKeyType(-1), "unknown"},
		{"usage-derivation", bdk, ksn, AES128, KeyDerivation, AES128, "not an AES DUKPT working key usage"},
		{"usage-initial", bdk, ksn, AES128, KeyDerivationInitialKey, AES128, "not an AES DUKPT working key usage"},
		{"usage-unknown", bdk, ksn, AES128, AESKeyUsage(0x4000), AES128, "not an AES DUKPT working key usage"},
		{"ksn-10", bdk, unhex("FFFF9876543210E00001"), AES128, PINEncryption, AES128, "KSN must be 12 bytes"},
		{"counter-0", bdk, ksnFor("00000000"), AES128, PINEncryption, AES128, "counter is zero"},
		// 0x1FFFF has 17 one bits: the supplement lists a key for it, but an
		// originating device never uses it.
		{"counter-17-bits", bdk, ksnFor("0001FFFF"), AES128, PINEncryption, AES128, "17 one bits"},
		{"counter-32-bits", bdk, ksnFor("FFFFFFFF"), AES128, PINEncryption, AES128, "32 one bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AESWorkingKey(tt.bdk, tt.ksn, tt.bdkType, tt.usage, tt.wType)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want %q", err, tt.msg)
			}
		})
	}
	if _, err := AESInitialKey(bdk, unhex("12345678901234"), AES128); err == nil {
		t.Errorf("AESInitialKey accepted a 7-byte initial key ID")
	}
	if _, err := AESInitialKey(bdk, unhex(x9243IKID), AES192); err == nil {
		t.Errorf("AESInitialKey accepted a 16-byte BDK as AES192")
	}
	// Sixteen one bits is the most allowed.
	if _, err := AESWorkingKey(bdk, ksnFor("0000FFFF"), AES128, PINEncryption, AES128); err != nil {
		t.Errorf("counter 0xFFFF: %v", err)
	}
}

func TestAESTypeStrings(t *testing.T) {
	if s := AES256.String(); s != "AES256" {
		t.Errorf("AES256.String() = %q", s)
	}
	if s := PINEncryption.String(); s != "PINEncryption" {
		t.Errorf("PINEncryption.String() = %q", s)
	}
	if s := AESKeyUsage(0x4000).String(); s != "AESKeyUsage(0x4000)" {
		t.Errorf("unknown usage String() = %q", s)
	}
}
