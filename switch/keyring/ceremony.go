package keyring

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/switch/config"
)

// openKeyHSM opens the HSM backends as switchd does at start and returns
// the PIN/MAC role's, where zone, terminal and MAC keys live, and what
// closes them all.
func openKeyHSM(ctx context.Context, cfg config.Config) (hsm.HSM, func() error, error) {
	h, err := Open(ctx, cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		return nil, nil, err
	}
	return h.Roles.PINMAC, h.Roles.Close, nil
}

// Main is `switchd keys`: the key ceremony without code (see
// docs/links.md). Clear components are read from in, one per line as
// "<hex> <kcv>", never from the command line (shell history, ps).
//
//	switchd keys list    --config F
//	switchd keys import  --config F --label L --usage zpk --algorithm tdes --components 3 [--kcv K] < components
//	switchd keys rotate  --config F --label L [--size N]
//	switchd keys import-lmk --config F --label L --usage zmk --algorithm tdes --kcv K < block
//
// import-lmk is for a payment HSM (payshield): the key was formed at the
// HSM's console and is given as the console printed it, under the LMK
// (one line on stdin); the HSM checks it and its KCV must equal --kcv.
func Main(args []string, in io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: switchd keys list|import|import-lmk|rotate [flags]")
		return 2
	}
	fs := flag.NewFlagSet("switchd keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file (default: built-in)")
	label := fs.String("label", "", "key `label` (import, rotate)")
	usage := fs.String("usage", "", "key `usage` for import: zpk, zmk, tpk, bdk or mac")
	alg := fs.String("algorithm", "tdes", "`algorithm` for import: tdes or aes")
	n := fs.Int("components", 0, "clear components to read from stdin (2 or 3), each \"<hex> <kcv>\"")
	kcv := fs.String("kcv", "", "expected `KCV` of the combined key (import)")
	size := fs.Int("size", 16, "key size in `bytes` for rotate")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			fmt.Fprintf(stderr, "switchd keys: %v\n", err)
			return 1
		}
	}
	ctx := context.Background()
	h, closeHSMs, err := openKeyHSM(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "switchd keys: %v\n", err)
		return 1
	}
	defer func() { _ = closeHSMs() }()
	if args[0] == "import-lmk" {
		if err := importUnderLMK(ctx, h, in, stdout, *label, hsm.Usage(*usage), hsm.Algorithm(*alg), *kcv); err != nil {
			fmt.Fprintf(stderr, "switchd keys %s: %v\n", args[0], err)
			return 1
		}
		return 0
	}
	km, ok := h.(hsm.KeyManager)
	if !ok {
		fmt.Fprintln(stderr, "switchd keys: this HSM backend does not manage keys here: use its own console")
		return 1
	}
	switch args[0] {
	case "list":
		err = listKeys(ctx, km, stdout)
	case "import":
		err = importComponents(ctx, km, in, stdout, hsm.ImportKeyRequest{Label: *label, Usage: hsm.Usage(*usage), Algorithm: hsm.Algorithm(*alg)}, *n, *kcv)
	case "rotate":
		err = rotateKey(ctx, km, stdout, *label, *size)
	default:
		err = fmt.Errorf("unknown command %q (want list, import, import-lmk or rotate)", args[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchd keys %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func listKeys(ctx context.Context, km hsm.KeyManager, w io.Writer) error {
	keys, err := km.Keys(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-20s %7s %-9s %-12s %s\n", "LABEL", "VERSION", "USAGE", "ALGORITHM", "KCV")
	for _, k := range keys {
		fmt.Fprintf(w, "%-20s %7d %-9s %-12s %X\n", k.Label, k.Version, k.Usage, k.Algorithm, k.KCV)
	}
	return nil
}

// importComponents reads n clear components with their KCVs, checks each
// KCV, XORs them, checks the combined KCV when given, and imports the key
// (a new version when the label exists). Components are wiped after use.
func importComponents(ctx context.Context, km hsm.KeyManager, in io.Reader, w io.Writer, req hsm.ImportKeyRequest, n int, wantKCV string) error {
	switch {
	case req.Label == "":
		return errors.New("--label is required")
	case req.Usage != hsm.UsageZonePIN && req.Usage != hsm.UsageKEK && req.Usage != hsm.UsageTerminalPIN && req.Usage != hsm.UsageBDK && req.Usage != hsm.UsageMAC:
		return fmt.Errorf("--usage %q: want zpk, zmk, tpk, bdk or mac", req.Usage)
	case n < 2 || n > 3:
		return fmt.Errorf("--components %d: a key ceremony takes 2 or 3 components", n)
	}
	sc := bufio.NewScanner(in)
	var key []byte
	defer func() { clear(key) }()
	for i := 1; i <= n; i++ {
		if !sc.Scan() {
			return fmt.Errorf("component %d: not given on stdin", i)
		}
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			return fmt.Errorf("component %d: want \"<hex> <kcv>\"", i)
		}
		comp, err := hex.DecodeString(fields[0])
		if err != nil {
			return fmt.Errorf("component %d: not hex", i)
		}
		got, err := paycrypto.KCV(string(req.Algorithm), comp)
		if err != nil {
			clear(comp)
			return fmt.Errorf("component %d: %w", i, err)
		}
		if !kcvEqual(got, fields[1]) {
			clear(comp)
			return fmt.Errorf("component %d: KCV %X does not match %s: re-enter the component", i, got, fields[1])
		}
		if key == nil {
			key = make([]byte, len(comp))
		} else if len(comp) != len(key) {
			clear(comp)
			return fmt.Errorf("component %d: %d bytes, the first had %d", i, len(comp), len(key))
		}
		subtle.XORBytes(key, key, comp)
		clear(comp)
		fmt.Fprintf(w, "component %d: KCV %X ok\n", i, got)
	}
	combined, err := paycrypto.KCV(string(req.Algorithm), key)
	if err != nil {
		return err
	}
	if wantKCV != "" && !kcvEqual(combined, wantKCV) {
		return fmt.Errorf("combined key KCV %X does not match --kcv %s: nothing imported", combined, wantKCV)
	}
	req.Material = key
	info, err := km.ImportKey(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "imported %s version %d (%s, %s), KCV %X\n", info.Label, info.Version, info.Usage, info.Algorithm, info.KCV)
	return nil
}

func kcvEqual(got []byte, want string) bool {
	return strings.EqualFold(hex.EncodeToString(got), strings.TrimSpace(want))
}

// rotateKey generates a new random version of a key the switch alone
// uses (PAN keys, a MAC or PIN key it then distributes); a zone key
// shared with a partner is rotated by importing the partner's new
// components under the same label instead.
func rotateKey(ctx context.Context, km hsm.KeyManager, w io.Writer, label string, size int) error {
	keys, err := km.Keys(ctx)
	if err != nil {
		return err
	}
	var cur *hsm.KeyInfo
	for i := range keys {
		if keys[i].Label == label && (cur == nil || keys[i].Version > cur.Version) {
			cur = &keys[i]
		}
	}
	if cur == nil {
		return fmt.Errorf("no key labelled %q", label)
	}
	info, err := km.GenerateKey(ctx, hsm.GenerateKeyRequest{Label: label, Usage: cur.Usage, Algorithm: cur.Algorithm, Size: size})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "rotated %s: version %d -> %d, KCV %X\n", label, cur.Version, info.Version, info.KCV)
	return nil
}

// lmkImporter is a payment HSM that stores keys already under its LMK.
type lmkImporter interface {
	ImportLMKKey(ctx context.Context, label string, u hsm.Usage, alg hsm.Algorithm, block, wantKCV string) (hsm.KeyInfo, error)
}

// importUnderLMK stores a key formed at the payment HSM's console (a ZMK
// before the first key exchange): the HSM vouches for the block and its
// KCV must be the one the ceremony recorded.
func importUnderLMK(ctx context.Context, h hsm.HSM, in io.Reader, w io.Writer, label string, u hsm.Usage, alg hsm.Algorithm, wantKCV string) error {
	li, ok := h.(lmkImporter)
	switch {
	case !ok:
		return errors.New("this HSM backend takes no keys under an LMK (import-lmk is for payshield)")
	case label == "":
		return errors.New("--label is required")
	case u != hsm.UsageZonePIN && u != hsm.UsageKEK && u != hsm.UsageTerminalPIN && u != hsm.UsageBDK && u != hsm.UsageMAC:
		return fmt.Errorf("--usage %q: want zpk, zmk, tpk, bdk or mac", u)
	case wantKCV == "":
		return errors.New("--kcv is required: the check value the key ceremony recorded")
	}
	sc := bufio.NewScanner(in)
	if !sc.Scan() || strings.TrimSpace(sc.Text()) == "" {
		return errors.New("the key under the LMK was not given on stdin")
	}
	info, err := li.ImportLMKKey(ctx, label, u, alg, strings.TrimSpace(sc.Text()), wantKCV)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "imported %s version %d (%s, %s), KCV %X\n", info.Label, info.Version, info.Usage, info.Algorithm, info.KCV)
	return nil
}
