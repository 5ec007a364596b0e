package payswitch_test

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	hsmsim "github.com/kbpay/switch/simulator/hsm"
	"github.com/kbpay/switch/switch/config"
	"github.com/kbpay/switch/switch/keyring"
)

func kcvHex(t *testing.T, key []byte) string {
	t.Helper()
	k, err := paycrypto.KCV("tdes", key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(k))
}

// TestKeyCeremony: switchd keys imports a zone PIN key from three clear
// components with their KCVs, refuses a mistyped component and a wrong
// combined KCV, lists keys with KCVs and rotates.
func TestKeyCeremony(t *testing.T) {
	file := filepath.Join(t.TempDir(), "switchd.yaml")
	writeConfig(t, file, testConfig(t))
	comps := [][]byte{
		[]byte("0123456789abcdef"), []byte("fedcba9876543210"), []byte("1111222233334444"),
	}
	key := make([]byte, 16)
	var lines []string
	for _, c := range comps {
		subtle.XORBytes(key, key, c)
		lines = append(lines, fmt.Sprintf("%X %s", c, kcvHex(t, c)))
	}
	run := func(stdin string, args ...string) (int, string) {
		var out, errOut strings.Builder
		code := keyring.Main(append(args, "--config", file), strings.NewReader(stdin), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	importArgs := []string{"import", "--label", "zpk-partner", "--usage", "zpk", "--algorithm", "tdes", "--components", "3"}
	mistyped := strings.Join([]string{lines[0], "00" + lines[1][2:], lines[2]}, "\n")
	if code, out := run(mistyped, importArgs...); code != 1 || !strings.Contains(out, "component 2: KCV") {
		t.Fatalf("a mistyped component: exit %d\n%s", code, out)
	}
	if code, out := run(strings.Join(lines, "\n"), append(importArgs, "--kcv", "000000")...); code != 1 || !strings.Contains(out, "nothing imported") {
		t.Fatalf("a wrong combined KCV: exit %d\n%s", code, out)
	}
	if code, out := run("", "list"); code != 0 || strings.Contains(out, "zpk-partner") {
		t.Fatalf("a refused import left a key: exit %d\n%s", code, out)
	}
	want := kcvHex(t, key)
	if code, out := run(strings.Join(lines, "\n"), append(importArgs, "--kcv", want)...); code != 0 || !strings.Contains(out, "KCV "+want) {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	for _, c := range comps {
		if code, out := run("", "list"); code != 0 || strings.Contains(out, fmt.Sprintf("%X", c)) {
			t.Fatalf("list shows key material or failed: exit %d\n%s", code, out)
		}
	}
	if code, out := run("", "list"); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, out := run("", "rotate", "--label", "zpk-partner"); code != 0 || !strings.Contains(out, "version 1 -> 2") {
		t.Fatalf("rotate: exit %d\n%s", code, out)
	}
}

// TestKeyCeremonyUnderLMK: on a payment HSM a ZMK formed at the HSM's
// console is stored with `switchd keys import-lmk` (the block under the
// LMK on stdin, the ceremony's KCV required); a wrong KCV stores nothing.
func TestKeyCeremonyUnderLMK(t *testing.T) {
	sim, err := hsmsim.New(hsmsim.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	dir := t.TempDir()
	store := filepath.Join(dir, "payshield-keys.json")
	if err := sim.ProvisionKeyStore(store, devkeys.Imports()); err != nil { // what development mode needs
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.HSM.PINMAC = "payshield"
	cfg.HSM.Payshield = config.Payshield{Addr: sim.Addr(), KeyStore: store, Timeout: 5 * time.Second}
	file := filepath.Join(dir, "switchd.yaml")
	writeConfig(t, file, cfg)
	h, err := hsm.KeyBlockHeader(hsm.UsageKEK, hsm.TDES)
	if err != nil {
		t.Fatal(err)
	}
	block, kcv, err := sim.FormKey(h, []byte("0123456789abcdef"), []byte("fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (int, string) {
		var out, errOut strings.Builder
		code := keyring.Main(append(args, "--config", file), strings.NewReader(stdin), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	importArgs := []string{"import-lmk", "--label", "zmk-partner", "--usage", "zmk", "--algorithm", "tdes"}
	if code, out := run(block.String(), append(importArgs, "--kcv", "000000")...); code != 1 || !strings.Contains(out, "nothing stored") {
		t.Fatalf("a wrong KCV: exit %d\n%s", code, out)
	}
	if code, out := run("", "list"); code != 0 || strings.Contains(out, "zmk-partner") {
		t.Fatalf("a refused import left a key: exit %d\n%s", code, out)
	}
	if code, out := run(block.String(), importArgs...); code != 1 || !strings.Contains(out, "--kcv is required") {
		t.Fatalf("no KCV: exit %d\n%s", code, out)
	}
	if code, out := run(block.String(), append(importArgs, "--kcv", kcv)...); code != 0 || !strings.Contains(out, "imported zmk-partner version 1") {
		t.Fatalf("import-lmk: exit %d\n%s", code, out)
	}
	if code, out := run("", "list"); code != 0 || !strings.Contains(out, "zmk-partner") || !strings.Contains(strings.ToUpper(out), strings.ToUpper(kcv)) {
		t.Fatalf("list after import-lmk: exit %d\n%s", code, out)
	}
}
