package issuer

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"

	"github.com/kbpay/switch/hsm/devkeys"
	"github.com/kbpay/switch/hsm/paycrypto"
	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
)

// TestChangeKey: the issuer sends its new ZPK under the ZMK with its KCV
// in DE 48 of an 0800/161; it verifies PINs under the new key only after
// the switch answered 00, and keeps the old key otherwise.
func TestChangeKey(t *testing.T) {
	zmk := devkeys.Bytes(devkeys.TPKHex)
	oldZPK, newZPK := devkeys.Bytes(devkeys.ZPKHex), []byte("NEWZPK0123456789")
	is := newIssuer(t, nil, func(c *Config) { c.ZMK = hex.EncodeToString(zmk) })

	if _, err := is.ChangeKey(newZPK, false); !errors.Is(err, ErrNoKeyExchange) {
		t.Fatalf("ChangeKey without a signed-on link: %v, want ErrNoKeyExchange", err)
	}
	// The switch's side: answers key changes with switchRC after checking
	// DE 48 decrypts under the ZMK to a key with the KCV sent.
	var switchRC atomic.Value
	switchRC.Store("00")
	spec := specs.MustLoad(specs.IssuerDialect)
	codec := &frame.Codec{Header: frame.ASCII4, Spec: spec}
	c, err := connection.New(is.Addr(), spec, nil, nil,
		connection.SetMessageReader(codec), connection.SetMessageWriter(codec),
		connection.SendTimeout(5*time.Second), connection.SetRequestIDGenerator(numericSTAN{}),
		connection.InboundMessageHandler(func(c *connection.Connection, m *iso8583.Message) {
			rc := switchRC.Load().(string)
			de48, _ := m.GetString(specs.PrivateData)
			if b, err := hex.DecodeString(de48); err != nil || len(b) != 19 {
				rc = "30"
			} else if k, err := paycrypto.DecryptKeyECB(zmk, b[:16]); err != nil || string(k) != string(newZPK) {
				rc = "30"
			} else if kcv, _ := paycrypto.KCV("tdes", k); string(kcv[:3]) != string(b[16:]) {
				rc = "30"
			}
			resp := iso8583.NewMessage(spec)
			resp.MTI("0810")
			for _, id := range []int{specs.TransmissionDateTime, specs.STAN, specs.NetworkMgmtCode} {
				v, _ := m.GetString(id)
				_ = resp.Field(id, v)
			}
			_ = resp.Field(specs.ResponseCode, rc)
			_ = c.Reply(resp)
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if rc := get(send(t, c, netMgmt(t, specs.NetMgmtSignOn)), specs.ResponseCode); rc != "00" {
		t.Fatalf("sign-on answered %s", rc)
	}
	cardA := card("9410")
	pay := func(key []byte) string {
		t.Helper()
		return get(send(t, c, withPIN(t, purchase(t, "0200", cardA, "100", ""), pinBlock(t, key, devkeys.DemoPIN, cardA))), specs.ResponseCode)
	}
	steps := []struct {
		name     string
		switchRC string
		wrongKCV bool
		wantRC   string
		current  []byte // the key PINs verify under afterwards
		stale    []byte // a key they no longer verify under
	}{
		{"wrong KCV refused", "00", true, "30", oldZPK, newZPK},
		{"switch refuses", "12", false, "12", oldZPK, newZPK},
		{"new key", "00", false, "00", newZPK, oldZPK},
	}
	for _, st := range steps {
		switchRC.Store(st.switchRC)
		rc, err := is.ChangeKey(newZPK, st.wrongKCV)
		if err != nil || rc != st.wantRC {
			t.Fatalf("%s: ChangeKey = %q, %v; want %s", st.name, rc, err, st.wantRC)
		}
		if got := pay(st.current); got != "00" {
			t.Errorf("%s: PIN under the current key answered %s, want 00", st.name, got)
		}
		if got := pay(st.stale); got != "55" {
			t.Errorf("%s: PIN under the other key answered %s, want 55", st.name, got)
		}
	}
}

// TestAdminKeyChange: the admin call checks the new ZPK and reports an
// issuer that cannot send a key change (no zmk, no link) as a conflict.
func TestAdminKeyChange(t *testing.T) {
	is := newIssuer(t, nil, nil)
	srv := httptest.NewServer(AdminHandler([]*Issuer{is}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"zpk=C1D0", http.StatusBadRequest},
		{"zpk=" + devkeys.ZPKHex, http.StatusConflict},
	} {
		resp, err := http.Post(srv.URL+"/issuers/card-a/keychange?"+tc.query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("keychange?%s: status %d, want %d", tc.query, resp.StatusCode, tc.want)
		}
	}
}
