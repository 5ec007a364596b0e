package hsmtest

import "encoding/hex"

// Published test vectors the suite uses as fixed inputs and known answers.
// Every key below is public test material: never use it outside tests.

// ANSI X9.24-1:2009 Annex A (TDES DUKPT): the BDK, the initial KSN and the
// enciphered ISO format 0 PIN blocks of PIN 1234 for PAN 4012345678909
// under the PIN keys of the first transaction counters.
const (
	x924BDK = "0123456789ABCDEFFEDCBA9876543210"
	x924PAN = "4012345678909"
	x924PIN = "1234"
)

var x924Blocks = []struct{ ksn, block string }{
	{"FFFF9876543210E00001", "1B9C1845EB993A7A"},
	{"FFFF9876543210E00002", "10A01C8D02C69107"},
	{"FFFF9876543210E00003", "18DC07B94797B466"},
	{"FFFF9876543210E00004", "0BC79509D5645DF7"},
}

// x924KCV is the classic key check value of the double-length TDES key
// 0123456789ABCDEF FEDCBA9876543210 (the X9.24-1 BDK): TDES of zeros.
const x924KCV = "08D7B4"

// ANSI X9.24-3:2017 (AES DUKPT) sample data: the AES-128 BDK, the
// initial key ID and the initial key derived from them; KSN = initial key
// ID | 32-bit transaction counter.
const (
	x9243BDK        = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
	x9243KeyID      = "1234567890123456"
	x9243InitialKey = "1273671EA26AC29AFA4D1084127652A1"
)

var x9243KSNs = []string{
	"123456789012345600000001",
	"123456789012345600000002",
	"1234567890123456000000FF",
}

// ANSI X9.19 retail MAC (ISO 9797-1 MAC algorithm 3) of the ASCII text
// "Now is the time for all " under K1 = 0123456789ABCDEF,
// K2 = FEDCBA9876543210.
const (
	x919Key  = "0123456789ABCDEFFEDCBA9876543210"
	x919Data = "Now is the time for all "
	x919MAC  = "A1C72E74EA3FA9B6"
)

// RFC 4493 / NIST SP 800-38B AES-CMAC examples: the AES-128 key, the
// 64-byte message M and the full tags of the first 0, 16, 40 and 64 bytes
// of M. The HSM's CMAC is the first 8 bytes of the tag.
const (
	rfc4493Key = "2B7E151628AED2A6ABF7158809CF4F3C"
	rfc4493Msg = "6BC1BEE22E409F96E93D7E117393172A" +
		"AE2D8A571E03AC9C9EB76FAC45AF8E51" +
		"30C81C46A35CE411E5FBC1191A0A52EF" +
		"F69F2445DF4F9B17AD2B417BE66C3710"
)

var rfc4493Tags = []struct {
	n   int
	tag string
}{
	{0, "BB1D6929E95937287FA37D129B756746"},
	{16, "070A16B46B4D4144F79BDD9DD04A287C"},
	{40, "DFA66747DE9AE63030CA32611497C827"},
	{64, "51F0BEBF7E3B9D92FC49741779363CFE"},
}

// NIST SP 800-38B AES-256 CMAC key (examples D.3) and the tag of M[:16].
const (
	sp80038BKey256 = "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4"
	sp80038BTag256 = "28A7023F452E8F82BD4BF28D8C37C35C"
)

// Static PIN and MAC keys of the suite (arbitrary, fixed so that results
// are reproducible).
const (
	tdesTPK  = "0123456789ABCDEF0123456789ABCDEF"
	tdesZPK  = "89ABCDEF0123456776543210FEDCBA98"
	tdesZPK3 = "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123"
	aesTPK   = "00112233445566778899AABBCCDDEEFF"
	aesZPK   = "FFEEDDCCBBAA99887766554433221100"
	aesZPK32 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
)

// testPANs are the fixture's cards of every length the HSM must handle.
var testPANs = cards.Lengths

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("hsmtest: bad hex constant: " + err.Error())
	}
	return b
}
