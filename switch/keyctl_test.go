package payswitch_test

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbpay/switch/hsm/paycrypto"
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
