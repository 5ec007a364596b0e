package issuer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// ErrNoKeyExchange: the issuer has no zone master key (Config.ZMK) or no
// signed-on link to send a key change on.
var ErrNoKeyExchange = errors.New("issuer: key exchange not possible")

// ChangeKey sends a key change (0800, DE 70 161) on the signed-on link
// connected first (of several switch instances, the one that connected
// first): newZPK encrypted under the ZMK (TDES ECB) as hex in DE 48,
// followed by its 6-digit KCV (wrongKCV flips a bit of it, for tests). When the switch
// answers 00 the issuer verifies PINs under newZPK from then on; any other
// answer keeps the old key. It returns the switch's DE 39.
func (is *Issuer) ChangeKey(newZPK []byte, wrongKCV bool) (string, error) {
	zmk, err := is.cfg.zmk()
	if err != nil || zmk == nil {
		return "", fmt.Errorf("%w: no zmk configured", ErrNoKeyExchange)
	}
	wrapped, err := paycrypto.EncryptKeyECB(zmk, newZPK)
	if err != nil {
		return "", fmt.Errorf("wrapping the new ZPK: %w", err)
	}
	kcv, err := paycrypto.KCV("tdes", newZPK)
	if err != nil {
		return "", err
	}
	if wrongKCV {
		kcv[0] ^= 1
	}
	c := is.signedOnLink()
	if c == nil {
		return "", fmt.Errorf("%w: no signed-on link", ErrNoKeyExchange)
	}
	m := iso8583.NewMessage(is.spec)
	m.MTI(specs.MTINetworkMgmt)
	now := time.Now().UTC()
	for id, v := range map[int]string{
		specs.TransmissionDateTime: now.Format("0102150405"),
		specs.STAN:                 fmt.Sprintf("%06d", 900000+now.UnixNano()%100000),
		specs.NetworkMgmtCode:      specs.NetMgmtKeyChange,
		specs.PrivateData:          fmt.Sprintf("%X%X", wrapped, kcv[:3]),
	} {
		if err := m.Field(id, v); err != nil {
			return "", fmt.Errorf("building the key change: field %d: %w", id, err)
		}
	}
	resp, err := c.Send(m)
	if err != nil {
		return "", fmt.Errorf("sending the key change: %w", err)
	}
	rc, _ := resp.GetString(specs.ResponseCode)
	if rc != "00" {
		is.log.Warn("key change refused by the switch: old key stays", zap.String("rc", rc))
		return rc, nil
	}
	k := append([]byte(nil), newZPK...)
	is.zpk.Store(&k)
	is.log.Info("key change acknowledged: PINs verified under the new ZPK", zap.String("kcv", fmt.Sprintf("%X", kcv[:3])))
	return rc, nil
}

// signedOnLink returns the connection of the signed-on session accepted
// first, or nil.
func (is *Issuer) signedOnLink() *connection.Connection {
	is.mu.Lock()
	defer is.mu.Unlock()
	var first *session
	for s := range is.sessions {
		if s.link.Load() != nil && s.signedOn.Load() && (first == nil || s.id < first.id) {
			first = s
		}
	}
	if first == nil {
		return nil
	}
	return first.link.Load()
}

// keyRequest answers the switch's key request (0800, DE 70 161 without a
// key: its routes[].key_exchange schedule): with a ZMK configured, 00,
// and right after a key change with a fresh random double-length ZPK
// (ChangeKey, on its own goroutine so the 0810 goes first); without one,
// 12.
func (is *Issuer) keyRequest() codes.Code {
	if zmk, err := is.cfg.zmk(); err != nil || zmk == nil {
		is.log.Warn("key request refused: no zmk configured")
		return codes.InvalidTxn
	}
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return codes.SystemError
	}
	is.keyRequests.Add(1)
	go func() {
		if _, err := is.ChangeKey(key, false); err != nil {
			is.log.Warn("key change after the switch's key request failed", zap.Error(err))
		}
	}()
	return codes.Approved
}

// KeyRequests is how many key requests (0800/161 from the switch) the
// issuer took.
func (is *Issuer) KeyRequests() int64 { return is.keyRequests.Load() }
