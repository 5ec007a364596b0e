package payshield

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

var _ hsm.KeyImporter = (*HSM)(nil)

// ImportUnderKEK takes a zone PIN key sent under a TDES ZMK in ECB form
// (an issuer's 0800, DE 70 = 161) with FA, "Translate a ZPK from ZMK to
// LMK Encryption" (see hostcmd.ImportZPK): the HSM decrypts it and
// returns it under the LMK with its check value, so the clear key exists
// only inside the HSM. The HSM's check value must equal req.KCV (first 3
// bytes, compared in constant time) or nothing is stored
// (hsm.ErrKCVMismatch); then the LMK block becomes the next version of
// req.Label in the key store. Only ZPKs come this way (FA is the ZPK
// command): other usages are hsm.ErrUnsupported.
func (h *HSM) ImportUnderKEK(ctx context.Context, req hsm.ImportUnderKEKRequest) (hsm.KeyInfo, error) {
	fail := func(err error) (hsm.KeyInfo, error) {
		return hsm.KeyInfo{}, fmt.Errorf("payshield: import key %q under %q: %w", req.Label, req.KEK.Label, err)
	}
	if req.Algorithm != hsm.TDES || req.Usage != hsm.UsageZonePIN {
		return fail(fmt.Errorf("FA takes TDES zone PIN keys, not %s %s: %w", req.Algorithm, req.Usage, hsm.ErrUnsupported))
	}
	if len(req.KCV) < 3 {
		return fail(fmt.Errorf("a key check value of at least 3 bytes is required, got %d: %w", len(req.KCV), hsm.ErrKCVMismatch))
	}
	if err := hsm.CheckLabel(req.Label); err != nil {
		return fail(err)
	}
	zmk, err := h.lookup(req.KEK, hsm.UsageKEK)
	if err != nil {
		return fail(err)
	}
	if zmk.Algorithm != hsm.TDES {
		return fail(fmt.Errorf("ZMK is %s, the ECB form needs TDES: %w", zmk.Algorithm, hsm.ErrWrongUsage))
	}
	zpk, err := hostcmd.ZPKUnderZMK(strings.ToUpper(hex.EncodeToString(req.Wrapped)))
	if err != nil {
		return fail(err)
	}
	hdr, err := hsm.KeyBlockHeader(req.Usage, req.Algorithm)
	if err != nil {
		return fail(err)
	}
	cmd := &hostcmd.ImportZPK{ZMK: zmk.wire(), ZPK: zpk, KeySchemeLMK: 'S', KCVType: '1',
		ModeOfUse: hdr.ModeOfUse, Version: hdr.Version, Exportability: hdr.Exportability}
	resp, err := h.pool.do(ctx, cmd)
	if err != nil {
		return fail(err)
	}
	switch resp.Error {
	case hostcmd.OK:
	case hostcmd.ParityAdvice:
		h.log.Warn("the ZPK received lacked odd parity; the HSM forced it", zap.String("zpk", req.Label), zap.String("zmk", zmk.Label))
	default:
		return fail(&hsm.DeviceError{Backend: Name, Command: cmd.Code(), Code: resp.Error})
	}
	a, err := hostcmd.ParseKeyAnswer(resp.Body, true, false)
	if err != nil {
		return fail(fmt.Errorf("answer: %w", err))
	}
	want := strings.ToUpper(hex.EncodeToString(req.KCV[:3]))
	if subtle.ConstantTimeCompare([]byte(a.KCV), []byte(want)) != 1 {
		return fail(fmt.Errorf("KCV %s sent, the HSM computed another: %w", want, hsm.ErrKCVMismatch))
	}
	info, err := h.add(req.Label, req.Usage, req.Algorithm, a.LMK, a.KCV)
	if err != nil {
		return fail(err)
	}
	return info, nil
}
