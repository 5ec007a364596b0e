// Package config is switchd's one typed configuration: loaded from YAML over
// defaults that work with no file at all, and validated before anything starts.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kbpay/switch/iso/frame"
	"github.com/kbpay/switch/specs"
	"github.com/kbpay/switch/specs/codes"
)

// Config is the whole switchd configuration.
type Config struct {
	// Listeners accept terminal and VAN connections. Default: "terminal" on
	// 127.0.0.1:8583 and "van" on 127.0.0.1:8584, both in the terminal
	// dialect with 2-byte binary length headers.
	Listeners []Listener `yaml:"listeners"`
	// Admin serves /metrics, /healthz and /readyz. Default 127.0.0.1:8580.
	Admin Admin `yaml:"admin"`
	// Routes are the issuer approval hosts, chosen by the longest BIN prefix
	// of the PAN. Default: the three demo issuers of issuersim.
	Routes []IssuerRoute `yaml:"routes"`
	// Log sets the zap logger. Default level info, JSON to stderr.
	Log Log `yaml:"log"`
	// DrainTimeout bounds the graceful drain on SIGTERM: in-flight
	// transactions get this long to finish. Default 10s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// DataDir holds the embedded state: vault database, key store, dev
	// master key. Default "data".
	DataDir string `yaml:"data_dir"`
	// HSM selects and configures the HSM backend.
	HSM HSM `yaml:"hsm"`
	// Tokens configures the token service.
	Tokens Tokens `yaml:"tokens"`
	// Vault is the token store.
	Vault Vault `yaml:"vault"`
	// Journal is the transaction journal and store-and-forward queue.
	Journal Journal `yaml:"journal"`
	// InstanceID (0-99) numbers this switchd among the instances that share
	// a store; it is the first two digits of every RRN the instance assigns,
	// so RRNs never collide. Default 0.
	InstanceID int `yaml:"instance_id"`
	// InstanceName names this switchd in the store: its heartbeat, the
	// owner of its journal rows and SAF items. Unique among the instances
	// sharing a store. Default: the host name.
	InstanceName string `yaml:"instance_name"`
	// Store selects the store backend and the ownership lease.
	Store Store `yaml:"store"`
	// Runtime tunes the Go garbage collector (runtime.go).
	Runtime Runtime `yaml:"runtime"`
}

// Journal configures the transaction journal and SAF queue.
type Journal struct {
	// Path is the embedded SQLite file. Default <data_dir>/journal.db.
	Path string `yaml:"path"`
	// Durable fsyncs every (grouped) commit, so an approval is on disk
	// before the terminal hears it. Default true.
	Durable *bool `yaml:"durable"`
	// SAFInterval is how often the SAF worker looks for due reversals.
	// Default 200ms.
	SAFInterval time.Duration `yaml:"saf_interval"`
	// ReversalExpiry: a reversal not acknowledged within this long is
	// flagged for manual review (metric, log, admin API). Default 24h.
	ReversalExpiry time.Duration `yaml:"reversal_expiry"`
	// RetryMax caps the back-off between repeats (0421). Default 60s.
	RetryMax time.Duration `yaml:"retry_max"`
	// SAFWorkersPerRoute bounds the give-backs sent at once on one route;
	// each route has its own workers, so a silent issuer delays only its
	// own queue. Default 4.
	SAFWorkersPerRoute int `yaml:"saf_workers_per_route"`
	// GroupWait is the longest the embedded journal holds a group of
	// writes for more before committing it (no longer than a commit
	// takes), when writes keep arriving while commits run: fewer commits
	// (each an fsync), for at most this much more latency per write. 0
	// turns it off. Default 500us.
	GroupWait *time.Duration `yaml:"group_wait"`
	// GroupSize commits a held group as soon as it has this many writes.
	// Default 16.
	GroupSize int `yaml:"group_size"`
}

// DefaultGroupWait is journal.group_wait's default.
const DefaultGroupWait = 500 * time.Microsecond

// HeldGroupWait is GroupWait, DefaultGroupWait when unset.
func (j Journal) HeldGroupWait() time.Duration {
	if j.GroupWait == nil {
		return DefaultGroupWait
	}
	return *j.GroupWait
}

// HSM configures the key boundary.
type HSM struct {
	// Backend is software (default) or pkcs11: the data-protection role
	// (PAN encryption and keyed hashes for the vault and the journal), and
	// the PIN/MAC role too unless PINMAC names another backend.
	Backend string `yaml:"backend"`
	// PINMAC is the backend of the PIN/MAC role (PIN translation, MAC
	// generation and verification): software, pkcs11 or payshield. Default
	// "": the data role's backend serves both. Naming the same backend as
	// Backend shares one instance.
	PINMAC string `yaml:"pin_mac"`
	// KeyStore is the software backend's key-store file. Default
	// <data_dir>/keystore.json.
	KeyStore string `yaml:"key_store"`
	// MasterKeyEnv names the environment variable holding the master key
	// (64 hex digits); it wins over MasterKeyFile. Default SWITCH_MASTER_KEY.
	MasterKeyEnv string `yaml:"master_key_env"`
	// MasterKeyFile holds the master key (64 hex digits). Default
	// <data_dir>/master.key. The key itself never goes in this YAML.
	MasterKeyFile string `yaml:"master_key_file"`
	// GenerateDevMasterKey, in development mode only (see DevelopmentMode),
	// creates MasterKeyFile with a random key when neither the variable nor
	// the file exists and imports the public demo PIN and MAC keys; in any
	// mode it creates missing random PAN keys (pan-data, pan-hash). Setting
	// it false means production. Default true.
	GenerateDevMasterKey *bool `yaml:"generate_dev_master_key"`
	// PKCS11 configures the pkcs11 backend.
	PKCS11 PKCS11 `yaml:"pkcs11"`
	// Payshield configures the payshield backend (PIN/MAC role only).
	Payshield Payshield `yaml:"payshield"`
}

// Payshield configures a payShield-compatible payment HSM reached over TCP
// with the host-command protocol (see docs/hsm.md).
type Payshield struct {
	// Addr is the HSM's host port. Default 127.0.0.1:1500.
	Addr string `yaml:"addr"`
	// KeyStore is the file of the switch's keys as LMK-encrypted key
	// blocks (never clear keys). Default <data_dir>/payshield-keys.json.
	KeyStore string `yaml:"key_store"`
	// HeaderLength is the message header length the HSM is configured
	// with. Default 4.
	HeaderLength int `yaml:"header_length"`
	// Connections is the pool size. Default 2.
	Connections int `yaml:"connections"`
	// Pipeline is how many commands may be outstanding on one connection
	// (answers matched by header). Default 16.
	Pipeline int `yaml:"pipeline"`
	// Timeout bounds one command, connection included. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
}

// PINMACBackend is the backend of the PIN/MAC role.
func (h HSM) PINMACBackend() string {
	if h.PINMAC == "" {
		return h.Backend
	}
	return h.PINMAC
}

// PKCS11 configures a PKCS#11 token (SoftHSM2 or a network HSM's library).
type PKCS11 struct {
	// Library is the module path. Default /usr/lib/softhsm/libsofthsm2.so.
	Library string `yaml:"library"`
	// TokenLabel selects the token. Required for the pkcs11 backend.
	TokenLabel string `yaml:"token_label"`
	// PINEnv names the environment variable with the user PIN. Default
	// SWITCH_HSM_PIN.
	PINEnv string `yaml:"pin_env"`
	// Sessions is the session pool size. Default 4.
	Sessions int `yaml:"sessions"`
}

// Tokens configures the token service (TSP).
type Tokens struct {
	// BIN is the token range; it must not overlap an issuer BIN. Default 9999.
	BIN string `yaml:"bin"`
	// OneTimeTTL is a one-time card number's life. Default 3m.
	OneTimeTTL time.Duration `yaml:"one_time_ttl"`
	// DataKey and HashKey are the HSM labels for PAN encryption and
	// hashing. Defaults pan-data and pan-hash.
	DataKey string `yaml:"data_key"`
	HashKey string `yaml:"hash_key"`
}

// Vault is the token store.
type Vault struct {
	// Path is the embedded SQLite file. Default <data_dir>/vault.db.
	Path string `yaml:"path"`
}

// Listener is one TCP listener for terminals or a VAN.
type Listener struct {
	// Name labels metrics and logs; unique. Required.
	Name string `yaml:"name"`
	// Addr is host:port to listen on. Required.
	Addr string `yaml:"addr"`
	// Spec is a built-in dialect name or a JSON spec file. Default terminal87.
	Spec string `yaml:"spec"`
	// Header is the framing: binary2 (default), binary4, ascii4 or bcd2,
	// each optionally with +tpdu (a 5-byte TPDU, swapped in answers).
	Header string `yaml:"header"`
	// MaxFrame is the largest accepted message body in bytes. Default 8192.
	MaxFrame int `yaml:"max_frame"`
	// IdleTimeout closes a connection that sent no complete message for this
	// long. Default 5m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps concurrent connections; more are refused. Default 20000.
	MaxConnections int `yaml:"max_connections"`
	// MaxInFlight caps concurrent requests per connection; more are answered
	// 91 at once. Default 4096 (a VAN link multiplexes many terminals).
	MaxInFlight int `yaml:"max_in_flight"`
	// PIN is how this listener's terminals encrypt DE 52. Default: the
	// terminal listener uses the static key tpk-demo, the VAN listener
	// TDES DUKPT under bdk-demo (KSN in DE 62).
	PIN *PINKey `yaml:"pin"`
	// FrameTimeout bounds one frame from its first byte to its last; a
	// slower sender is disconnected. Default 10s.
	FrameTimeout time.Duration `yaml:"frame_timeout"`
	// RatePerTerminal caps requests per second per terminal ID (DE 41),
	// with bursts of twice that; more are answered 91 and counted. 0 means
	// the default 500; -1 disables the limit.
	RatePerTerminal int `yaml:"rate_per_terminal"`
	// MaxICCData caps DE 55 (bytes); longer is answered 30. Default 255.
	MaxICCData int `yaml:"max_icc_data"`
	// MAC makes the listener keyed: every request must carry a valid DE 64
	// (DE 128 with a secondary bitmap), and responses are MAC'd. Default off.
	MAC *MACKey `yaml:"mac"`
	// TLS serves the listener over TLS (mutual TLS with client_ca_file).
	// Default: plain TCP.
	TLS *ServerTLS `yaml:"tls"`
	// SignOnRequired makes each connection (a VAN link) sign on (0800, DE
	// 70 001) before anything but network management is served; until
	// then, and after a sign-off (002), requests are answered 91.
	SignOnRequired bool `yaml:"sign_on_required"`
	// RatePerLink caps requests per second on one connection (bursts of
	// twice that); more are answered 91 and counted. 0: no cap.
	RatePerLink int `yaml:"rate_per_link"`
}

// PINKey names an HSM PIN key and the ISO 9564 block format under it.
type PINKey struct {
	// Key is the HSM key label (tpk, bdk or zpk usage).
	Key string `yaml:"key"`
	// Format is the ISO 9564-1 format: 0 (TDES) or 4 (AES). Default 0.
	Format int `yaml:"format"`
	// DUKPT means Key is a BDK and each block's KSN travels in DE 62.
	DUKPT bool `yaml:"dukpt"`
	// ZMK, on a route only, is the HSM label of the zone master key
	// (zmk usage) shared with the issuer: it enables dynamic key exchange,
	// the issuer's 0800 (DE 70 161) sending a new zone PIN key under it
	// (docs/links.md). Default none: a key change is answered 12.
	ZMK string `yaml:"zmk"`
}

// MACKey names an HSM MAC key and algorithm.
type MACKey struct {
	// Key is the HSM key label (mac usage).
	Key string `yaml:"key"`
	// Algorithm is retail (ISO 9797-1 alg 3, TDES) or cmac (AES). Default retail.
	Algorithm string `yaml:"algorithm"`
}

// Admin is the operations HTTP endpoint.
type Admin struct {
	// Addr is host:port. Default 127.0.0.1:8580 (loopback only).
	Addr string `yaml:"addr"`
	// BearerTokenEnv names the environment variable with the provisioning
	// API's bearer token. Default SWITCH_ADMIN_TOKEN. When it is unset the
	// documented demo token "demo-admin-token" is used (with a warning) in
	// development mode only; outside it the switch refuses to start (see
	// DevelopmentMode).
	BearerTokenEnv string `yaml:"bearer_token_env"`
	// TLS serves the admin endpoint over HTTPS when set. Default: plain HTTP.
	TLS *AdminTLS `yaml:"tls"`
}

// AdminTLS is the admin endpoint's server certificate.
type AdminTLS struct {
	// CertFile and KeyFile are PEM files (certificate chain and private
	// key). Both required.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DemoAdminToken is the provisioning API's bearer token when none is set,
// in development mode only.
const DemoAdminToken = "demo-admin-token"

// IssuerRoute is one issuer approval host and the BIN prefixes it owns.
type IssuerRoute struct {
	// Name labels metrics and logs; unique. Required.
	Name string `yaml:"name"`
	// BINs are the PAN prefixes (1-11 digits) routed here. Required.
	BINs []string `yaml:"bins"`
	// Addrs are the issuer host addresses; one pooled link is kept per
	// entry (repeat an address for more links to it). Required.
	Addrs []string `yaml:"addrs"`
	// Endpoints are the issuer hosts with priorities and TLS (instead of
	// Addrs); see links.go.
	Endpoints []Endpoint `yaml:"endpoints"`
	// Policy picks among healthy endpoints: priority (default) or round_robin.
	Policy string `yaml:"policy"`
	// Breaker is the circuit breaker kept per endpoint.
	Breaker Breaker `yaml:"breaker"`
	// Spec is the issuer's dialect. Default issuer87.
	Spec string `yaml:"spec"`
	// Header is the issuer's framing (as a listener's). Default ascii4.
	Header string `yaml:"header"`
	// Timeout is how long the switch waits for the issuer's answer before it
	// answers the terminal 91. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// EchoInterval sends an 0800 echo (DE 70 301) on an idle link. Default 30s.
	EchoInterval time.Duration `yaml:"echo_interval"`
	// ReconnectWait is the first wait before reconnecting a lost link; it
	// doubles up to MaxReconnectWait. Defaults 1s and 30s.
	ReconnectWait    time.Duration `yaml:"reconnect_wait"`
	MaxReconnectWait time.Duration `yaml:"max_reconnect_wait"`
	// ConnectTimeout bounds the TCP connect and the sign-on. Default 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxFrame is the largest accepted message body from the issuer. Default 8192.
	MaxFrame int `yaml:"max_frame"`
	// PIN is the issuer's zone PIN key: PIN blocks are translated to it.
	// Default zpk-demo, format 0.
	PIN *PINKey `yaml:"pin"`
	// KeyExchange schedules switch-initiated key changes (keyexchange.go).
	KeyExchange *KeyExchange `yaml:"key_exchange"`
	// GiveBack is how this host gives money back for cancels and net
	// cancels: "reversal" (0400/0420/0421, card issuers; default) or
	// "refund" (0200 with processing code 20: gift certificate and local
	// currency hosts that take no reversals).
	GiveBack string `yaml:"give_back"`
	// SettleCodes are the DE 39 answers that settle a give-back (reversal
	// or refund by reference) on this route: the SAF stops repeating it.
	// Default ["00", "25"] (done, and "nothing to give back").
	SettleCodes []string `yaml:"settle_codes"`
	// STANQuarantine is how long the STAN of a request that went
	// unanswered stays owned: a late answer with it must not match a newer
	// request. At least Timeout. Default max(2 x timeout, 30s).
	STANQuarantine time.Duration `yaml:"stan_quarantine"`
	// Mapping picks the fields that travel, constant fields and a DE 39
	// mapping (mapping.go); applies live on reload.
	Mapping Mapping `yaml:"mapping"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
}

// Default returns the configuration switchd runs with when given no file:
// listeners on loopback and routes to the three issuersim demo issuers.
func Default() Config {
	c := Config{
		Listeners: []Listener{
			{Name: "terminal", Addr: "127.0.0.1:8583", PIN: &PINKey{Key: "tpk-demo"}},
			{Name: "van", Addr: "127.0.0.1:8584", PIN: &PINKey{Key: "bdk-demo", DUKPT: true}},
		},
		Routes: []IssuerRoute{
			{Name: "card-a", BINs: []string{"9410"}, Addrs: []string{"127.0.0.1:9101"}, PIN: &PINKey{Key: "zpk-demo"}},
			{Name: "card-b", BINs: []string{"9420"}, Addrs: []string{"127.0.0.1:9102"}, PIN: &PINKey{Key: "zpk-demo"}},
			{Name: "prepaid", BINs: []string{"9430"}, Addrs: []string{"127.0.0.1:9103"}, PIN: &PINKey{Key: "zpk-demo"}, GiveBack: "refund"},
		},
	}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Admin.Addr == "" {
		c.Admin.Addr = "127.0.0.1:8580"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	c.DataDir = orDefault(c.DataDir, "data")
	c.Admin.BearerTokenEnv = orDefault(c.Admin.BearerTokenEnv, "SWITCH_ADMIN_TOKEN")
	c.HSM.Backend = orDefault(c.HSM.Backend, "software")
	c.HSM.KeyStore = orDefault(c.HSM.KeyStore, filepath.Join(c.DataDir, "keystore.json"))
	c.HSM.MasterKeyEnv = orDefault(c.HSM.MasterKeyEnv, "SWITCH_MASTER_KEY")
	c.HSM.MasterKeyFile = orDefault(c.HSM.MasterKeyFile, filepath.Join(c.DataDir, "master.key"))
	if c.HSM.GenerateDevMasterKey == nil {
		yes := true
		c.HSM.GenerateDevMasterKey = &yes
	}
	c.HSM.PKCS11.Library = orDefault(c.HSM.PKCS11.Library, "/usr/lib/softhsm/libsofthsm2.so")
	c.HSM.PKCS11.PINEnv = orDefault(c.HSM.PKCS11.PINEnv, "SWITCH_HSM_PIN")
	c.HSM.PKCS11.Sessions = orDefaultInt(c.HSM.PKCS11.Sessions, 4)
	c.HSM.Payshield.Addr = orDefault(c.HSM.Payshield.Addr, "127.0.0.1:1500")
	c.HSM.Payshield.KeyStore = orDefault(c.HSM.Payshield.KeyStore, filepath.Join(c.DataDir, "payshield-keys.json"))
	c.HSM.Payshield.HeaderLength = orDefaultInt(c.HSM.Payshield.HeaderLength, 4)
	c.HSM.Payshield.Connections = orDefaultInt(c.HSM.Payshield.Connections, 2)
	c.HSM.Payshield.Pipeline = orDefaultInt(c.HSM.Payshield.Pipeline, 16)
	if c.HSM.Payshield.Timeout == 0 {
		c.HSM.Payshield.Timeout = 2 * time.Second
	}
	c.Tokens.BIN = orDefault(c.Tokens.BIN, "9999")
	setDuration(&c.Tokens.OneTimeTTL, 3*time.Minute)
	c.Tokens.DataKey = orDefault(c.Tokens.DataKey, "pan-data")
	c.Tokens.HashKey = orDefault(c.Tokens.HashKey, "pan-hash")
	c.Vault.Path = orDefault(c.Vault.Path, filepath.Join(c.DataDir, "vault.db"))
	c.Journal.Path = orDefault(c.Journal.Path, filepath.Join(c.DataDir, "journal.db"))
	if c.Journal.Durable == nil {
		yes := true
		c.Journal.Durable = &yes
	}
	setDuration(&c.Journal.SAFInterval, 200*time.Millisecond)
	setDuration(&c.Journal.ReversalExpiry, 24*time.Hour)
	setDuration(&c.Journal.RetryMax, time.Minute)
	c.Journal.SAFWorkersPerRoute = orDefaultInt(c.Journal.SAFWorkersPerRoute, 4)
	if c.Journal.GroupWait == nil {
		wait := DefaultGroupWait
		c.Journal.GroupWait = &wait
	}
	c.Journal.GroupSize = orDefaultInt(c.Journal.GroupSize, 16)
	c.Store.setDefaults()
	c.Runtime.setDefaults()
	if c.InstanceID == InstanceIDAuto && c.Store.Backend != "postgres" {
		c.InstanceID = 0
	}
	if c.InstanceName == "" {
		c.InstanceName = defaultInstanceName()
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		l.Spec = orDefault(l.Spec, specs.TerminalDialect)
		l.Header = orDefault(l.Header, "binary2")
		l.MaxFrame = orDefaultInt(l.MaxFrame, frame.DefaultMaxLength)
		l.MaxConnections = orDefaultInt(l.MaxConnections, 20000)
		l.MaxInFlight = orDefaultInt(l.MaxInFlight, 4096)
		if l.IdleTimeout == 0 {
			l.IdleTimeout = 5 * time.Minute
		}
		if l.MAC != nil {
			l.MAC.Algorithm = orDefault(l.MAC.Algorithm, "retail")
		}
		setDuration(&l.FrameTimeout, 10*time.Second)
		l.RatePerTerminal = orDefaultInt(l.RatePerTerminal, 500)
		l.MaxICCData = orDefaultInt(l.MaxICCData, 255)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		r.Spec = orDefault(r.Spec, specs.IssuerDialect)
		r.GiveBack = orDefault(r.GiveBack, "reversal")
		if len(r.SettleCodes) == 0 {
			r.SettleCodes = []string{string(codes.Approved), string(codes.OriginalNotFound)}
		}
		r.Header = orDefault(r.Header, "ascii4")
		r.MaxFrame = orDefaultInt(r.MaxFrame, frame.DefaultMaxLength)
		setDuration(&r.Timeout, 5*time.Second)
		setDuration(&r.STANQuarantine, max(2*r.Timeout, 30*time.Second))
		setDuration(&r.EchoInterval, 30*time.Second)
		setDuration(&r.ReconnectWait, time.Second)
		setDuration(&r.MaxReconnectWait, 30*time.Second)
		setDuration(&r.ConnectTimeout, 5*time.Second)
		applyRouteLinkDefaults(r)
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func orDefaultInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func setDuration(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}

// Load reads a YAML file. Sections the file leaves out keep their defaults
// (a file without routes keeps the demo routes); unknown keys are errors.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is ParseEnv with the process environment.
func Parse(raw []byte) (Config, error) {
	return ParseEnv(raw, os.Getenv)
}
