package payshield

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

// errDataRole: PANs at rest are another backend's job.
func errDataRole(op string) error {
	return fmt.Errorf("payshield: %s: the payment HSM serves the PIN/MAC role only, PANs at rest need the software or pkcs11 backend: %w", op, hsm.ErrUnsupported)
}

// EncryptPAN checks the key, then returns hsm.ErrUnsupported.
func (h *HSM) EncryptPAN(_ context.Context, ref hsm.KeyRef, _ string) (hsm.EncryptedPAN, error) {
	if _, err := h.lookup(hsm.KeyRef{Label: ref.Label}, hsm.UsagePANData); err != nil {
		return hsm.EncryptedPAN{}, fmt.Errorf("payshield: encrypt PAN: %w", err)
	}
	return hsm.EncryptedPAN{}, errDataRole("encrypt PAN")
}

// DecryptPAN checks the key, then returns hsm.ErrUnsupported.
func (h *HSM) DecryptPAN(_ context.Context, enc hsm.EncryptedPAN) (string, error) {
	if _, err := h.lookup(enc.Key, hsm.UsagePANData); err != nil {
		return "", fmt.Errorf("payshield: decrypt PAN: %w", err)
	}
	return "", errDataRole("decrypt PAN")
}

// HashPAN checks the key, then returns hsm.ErrUnsupported.
func (h *HSM) HashPAN(_ context.Context, ref hsm.KeyRef, _ string) (hsm.PANHash, error) {
	if _, err := h.lookup(ref, hsm.UsagePANHash); err != nil {
		return hsm.PANHash{}, fmt.Errorf("payshield: hash PAN: %w", err)
	}
	return hsm.PANHash{}, errDataRole("hash PAN")
}

// formatCode is the host-command PIN block format code.
func formatCode(f hsm.PINFormat) string {
	if f == hsm.ISO4 {
		return hostcmd.FormatISO4
	}
	return hostcmd.FormatISO0
}

// account is the account number field: the whole PAN when a block is
// format 4, else the 12 right-most digits excluding the check digit. ok
// is false for a PAN no block can be bound to.
func account(pan string, full bool) (string, bool) {
	if len(pan) < 13 || len(pan) > 19 || strings.Trim(pan, "0123456789") != "" {
		return "", false
	}
	if full {
		return pan, true
	}
	return pan[len(pan)-13 : len(pan)-1], true
}

// TranslatePIN translates inside the HSM: CA from a TPK, CC from a ZPK,
// G0 from a TDES DUKPT BDK (10-byte KSN). AES DUKPT has no command here
// (hsm.ErrUnsupported). A block that does not decode (HSM errors 20 and
// 24) is hsm.ErrInvalidPINBlock; the error never says why.
func (h *HSM) TranslatePIN(ctx context.Context, req hsm.TranslatePINRequest) ([]byte, error) {
	from, err := h.lookup(req.From.Key, hsm.UsageTerminalPIN, hsm.UsageZonePIN, hsm.UsageBDK)
	if err != nil {
		return nil, fmt.Errorf("payshield: translate PIN from: %w", err)
	}
	to, err := h.lookup(req.To.Key, hsm.UsageTerminalPIN, hsm.UsageZonePIN)
	if err != nil {
		return nil, fmt.Errorf("payshield: translate PIN to: %w", err)
	}
	if err := hsm.CheckPINKey(from.info(), req.From); err != nil {
		return nil, fmt.Errorf("payshield: translate PIN from key %q version %d: %w", from.Label, from.Version, err)
	}
	if err := hsm.CheckPINKey(to.info(), req.To); err != nil {
		return nil, fmt.Errorf("payshield: translate PIN to key %q version %d: %w", to.Label, to.Version, err)
	}
	invalid := fmt.Errorf("payshield: translate PIN from key %q version %d: %w", from.Label, from.Version, hsm.ErrInvalidPINBlock)
	wantLen := map[hsm.PINFormat]int{hsm.ISO0: 8, hsm.ISO4: 16}[req.From.Format]
	acct, ok := account(req.PAN, req.From.Format == hsm.ISO4 || req.To.Format == hsm.ISO4)
	if len(req.PINBlock) != wantLen || !ok {
		return nil, invalid
	}
	block := strings.ToUpper(hex.EncodeToString(req.PINBlock))
	src, dst := formatCode(req.From.Format), formatCode(req.To.Format)
	var cmd hostcmd.Command
	switch {
	case from.Usage == hsm.UsageBDK && from.Algorithm == hsm.AES:
		return nil, fmt.Errorf("payshield: translate PIN from AES DUKPT BDK %q: %w", from.Label, hsm.ErrUnsupported)
	case from.Usage == hsm.UsageBDK && len(req.From.KSN) == 12:
		return nil, fmt.Errorf("payshield: a 12-byte KSN does not go with a TDES BDK: %w", hsm.ErrWrongUsage)
	case from.Usage == hsm.UsageBDK && len(req.From.KSN) != 10:
		return nil, invalid
	case from.Usage == hsm.UsageBDK:
		cmd = &hostcmd.TranslateDUKPT{BDK: from.wire(), ZPK: to.wire(), KSNDescriptor: "A05",
			KSN: strings.ToUpper(hex.EncodeToString(req.From.KSN)), Block: block, SourceFormat: src, DestFormat: dst, Account: acct}
	default:
		code := "CC"
		if from.Usage == hsm.UsageTerminalPIN {
			code = "CA"
		}
		cmd = &hostcmd.TranslatePIN{Command: code, Source: from.wire(), Dest: to.wire(), MaxPIN: 12, Block: block,
			SourceFormat: src, DestFormat: dst, Account: acct}
	}
	body, err := h.command(ctx, cmd)
	switch deviceCode(err) {
	case "":
	case hostcmd.PINBlockError, hostcmd.PINLengthError:
		return nil, invalid
	}
	if err != nil {
		return nil, fmt.Errorf("payshield: translate PIN from key %q version %d: %w", from.Label, from.Version, err)
	}
	a, err := hostcmd.ParsePINAnswer(body, dst)
	if err != nil {
		return nil, fmt.Errorf("payshield: translate PIN: answer: %w", err)
	}
	return hex.DecodeString(a.Block)
}

// macCommand builds M6's fields for a request.
func (h *HSM) macCommand(req hsm.MACRequest) (hostcmd.GenerateMAC, error) {
	k, err := h.lookup(req.Key, hsm.UsageMAC)
	if err != nil {
		return hostcmd.GenerateMAC{}, fmt.Errorf("payshield: MAC: %w", err)
	}
	if err := hsm.CheckMACKey(k.info(), req.Algorithm); err != nil {
		return hostcmd.GenerateMAC{}, fmt.Errorf("payshield: %w", err)
	}
	alg, pad := byte(hostcmd.MACAlgISO9797Alg3), byte(hostcmd.PadMethod1)
	if req.Algorithm == hsm.CMAC {
		alg, pad = hostcmd.MACAlgCMAC, hostcmd.PadNone
	}
	if len(req.Data) > 0xFFFF {
		return hostcmd.GenerateMAC{}, fmt.Errorf("payshield: MAC over %d bytes: more than one M6 block: %w", len(req.Data), hsm.ErrUnsupported)
	}
	return hostcmd.GenerateMAC{ModeFlag: '0', InputFormat: '0', MACSize: '1', Algorithm: alg, Padding: pad,
		KeyType: "FFF", Key: k.wire(), Message: req.Data}, nil
}

// GenerateMAC returns the 8-byte MAC computed by the HSM (M6).
func (h *HSM) GenerateMAC(ctx context.Context, req hsm.MACRequest) ([]byte, error) {
	cmd, err := h.macCommand(req)
	if err != nil {
		return nil, err
	}
	body, err := h.command(ctx, &cmd)
	if err != nil {
		return nil, fmt.Errorf("payshield: MAC with key %q: %w", req.Key.Label, err)
	}
	a, err := hostcmd.ParseMACAnswer(body)
	if err != nil {
		return nil, fmt.Errorf("payshield: MAC: answer: %w", err)
	}
	return hex.DecodeString(a.MAC)
}

// VerifyMAC has the HSM check the MAC (M8); hsm.ErrMACMismatch when it
// answers 01 or the MAC is not 8 bytes. Any other failure is an error
// that is not a mismatch: the MAC was not checked.
func (h *HSM) VerifyMAC(ctx context.Context, req hsm.VerifyMACRequest) error {
	cmd, err := h.macCommand(req.MACRequest)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeEq(int32(len(req.MAC)), 8) != 1 {
		return fmt.Errorf("payshield: verify MAC with key %q: %w", req.Key.Label, hsm.ErrMACMismatch)
	}
	_, err = h.command(ctx, &hostcmd.VerifyMAC{GenerateMAC: cmd, MAC: strings.ToUpper(hex.EncodeToString(req.MAC))})
	if deviceCode(err) == hostcmd.VerificationFailed {
		return fmt.Errorf("payshield: verify MAC with key %q: %w", req.Key.Label, hsm.ErrMACMismatch)
	}
	if err != nil {
		return fmt.Errorf("payshield: verify MAC with key %q: %w", req.Key.Label, err)
	}
	return nil
}
