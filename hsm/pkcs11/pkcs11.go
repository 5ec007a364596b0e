//go:build cgo

package pkcs11

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"
	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm"
)

// HSM is hsm.HSM and hsm.KeyManager over one PKCS#11 token. It is safe for
// concurrent use; at most Options.Sessions operations run in the token at
// once, the others wait for a session (or for their context).
//
// Lock order: wmu, then mu; libraries (the process-wide registry) is never
// held while taking wmu or mu.
type HSM struct {
	log   *zap.Logger
	lib   *library
	ctx   *p11.Ctx
	slot  uint
	token string

	owner    p11.SessionHandle // outside the pool: owns the session copies of keys
	size     int               // sessions in the pool, taken or not
	pool     chan p11.SessionHandle
	loggedIn bool
	done     chan struct{} // closed when Close starts
	once     sync.Once
	closeErr error

	unwrapOnce sync.Once // unwrapTDES: see unwrapsTDES
	unwrapTDES bool

	wmu  sync.Mutex   // serialises ImportKey, GenerateKey and reloads
	mu   sync.RWMutex // guards keys
	keys map[string]*versions
}

var (
	_ hsm.HSM        = (*HSM)(nil)
	_ hsm.KeyManager = (*HSM)(nil)
)

// Open loads the PKCS#11 module, finds the token labelled opts.TokenLabel,
// opens a pool of R/W sessions, logs in as the user once (a PKCS#11 login
// belongs to the application, so every session shares it) and reads the
// token's key objects. Close logs out and, when it was the last user of the
// module in this process, finalizes it. A nil log means zap.NewNop().
func Open(opts Options, log *zap.Logger) (*HSM, error) {
	if log == nil {
		log = zap.NewNop()
	}
	opts = opts.withDefaults()
	if opts.TokenLabel == "" {
		return nil, errors.New("pkcs11 hsm: open: Options.TokenLabel is required")
	}
	if opts.Sessions < 1 {
		return nil, fmt.Errorf("pkcs11 hsm: open token %q: Options.Sessions must be at least 1, got %d", opts.TokenLabel, opts.Sessions)
	}
	lib, err := acquire(opts.Library)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: open token %q: %w", opts.TokenLabel, err)
	}
	h := &HSM{
		log:   log,
		lib:   lib,
		ctx:   lib.ctx,
		token: opts.TokenLabel,
		pool:  make(chan p11.SessionHandle, opts.Sessions),
		done:  make(chan struct{}),
		keys:  map[string]*versions{},
	}
	var sessions []p11.SessionHandle
	ok := false
	defer func() {
		if !ok {
			_ = h.teardown(sessions)
		}
	}()
	if h.slot, err = findToken(h.ctx, opts.Library, opts.TokenLabel); err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: open: %w", err)
	}
	if h.owner, err = h.ctx.OpenSession(h.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION); err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: opening a R/W session on token %q: %w", h.token, err)
	}
	for i := 0; i < opts.Sessions; i++ {
		s, err := h.ctx.OpenSession(h.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return nil, fmt.Errorf("pkcs11 hsm: opening R/W session %d of %d on token %q: %w", i+1, opts.Sessions, h.token, err)
		}
		sessions = append(sessions, s)
	}
	if err := lib.login(h.owner, h.slot, opts.PIN); err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: logging in to token %q as user: %w", h.token, err)
	}
	h.loggedIn = true
	if err := h.reload(h.owner); err != nil {
		return nil, fmt.Errorf("pkcs11 hsm: reading key objects of token %q: %w", h.token, err)
	}
	for _, s := range sessions {
		h.pool <- s
	}
	h.size = len(sessions)
	ok = true
	h.log.Info("pkcs11 token opened", zap.String("library", opts.Library), zap.String("token", h.token),
		zap.Uint("slot", h.slot), zap.Int("sessions", opts.Sessions), zap.Int("labels", len(h.keys)))
	return h, nil
}

// Close waits for operations in flight to return their sessions, closes
// the sessions, logs out and releases the module. Later calls return nil;
// operations after Close fail with ErrClosed.
func (h *HSM) Close() error {
	h.once.Do(func() {
		close(h.done)
		sessions := make([]p11.SessionHandle, h.size)
		for i := range sessions {
			sessions[i] = <-h.pool
		}
		h.closeErr = h.teardown(sessions)
		h.log.Info("pkcs11 token closed", zap.String("token", h.token))
	})
	return h.closeErr
}

// teardown logs out, closes the sessions (the owner's last, which
// destroys the session copies of keys) and releases the library.
func (h *HSM) teardown(sessions []p11.SessionHandle) error {
	var errs []error
	if h.loggedIn {
		if err := h.lib.logout(h.owner, h.slot); err != nil {
			errs = append(errs, fmt.Errorf("pkcs11 hsm: logging out of token %q: %w", h.token, err))
		}
		h.loggedIn = false
	}
	if h.owner != 0 {
		sessions = append(sessions, h.owner)
		h.owner = 0
	}
	for _, s := range sessions {
		if err := h.ctx.CloseSession(s); err != nil {
			errs = append(errs, fmt.Errorf("pkcs11 hsm: closing a session on token %q: %w", h.token, err))
		}
	}
	if h.lib != nil {
		if err := release(h.lib); err != nil {
			errs = append(errs, fmt.Errorf("pkcs11 hsm: finalizing %s: %w", h.lib.path, err))
		}
		h.lib = nil
	}
	return errors.Join(errs...)
}

// get takes a session from the pool, waiting for one if all are busy.
func (h *HSM) get(ctx context.Context) (p11.SessionHandle, error) {
	select {
	case <-h.done:
		return 0, ErrClosed
	default:
	}
	select {
	case s := <-h.pool:
		return s, nil
	case <-h.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, fmt.Errorf("pkcs11 hsm: waiting for a session: %w", ctx.Err())
	}
}

// put returns a session to the pool. When err says the session is gone
// (the token was removed or the session closed under us), a fresh one
// replaces it; the login is the application's, so it carries over.
func (h *HSM) put(s p11.SessionHandle, err error) {
	if sessionGone(err) {
		if ns, oerr := h.ctx.OpenSession(h.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION); oerr == nil {
			h.log.Warn("pkcs11 session replaced", zap.String("token", h.token), zap.Error(err))
			_ = h.ctx.CloseSession(s)
			s = ns
		}
	}
	h.pool <- s
}

// sessionGone reports whether err means the session can no longer be used.
func sessionGone(err error) bool {
	var e p11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED, p11.CKR_DEVICE_REMOVED,
		p11.CKR_TOKEN_NOT_PRESENT:
		return true
	}
	return false
}

// isCKR reports whether err is the PKCS#11 return value rv.
func isCKR(err error, rv uint) bool {
	var e p11.Error
	return errors.As(err, &e) && uint(e) == rv
}

// findToken returns the slot of the initialized token labelled label, or
// an error wrapping ErrTokenNotFound that lists the labels present.
func findToken(ctx *p11.Ctx, library, label string) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("listing the slots of %s: %w", library, err)
	}
	var present []string
	for _, slot := range slots {
		ti, err := ctx.GetTokenInfo(slot)
		if err != nil || ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if ti.Label == label {
			return slot, nil
		}
		present = append(present, strconv.Quote(ti.Label))
	}
	if len(present) == 0 {
		return 0, fmt.Errorf("%w: no token labelled %q in %s, which has no initialized tokens (SoftHSM2: softhsm2-util --init-token --free --label %s)",
			ErrTokenNotFound, label, library, label)
	}
	return 0, fmt.Errorf("%w: no token labelled %q in %s; tokens present: %s",
		ErrTokenNotFound, label, library, strings.Join(present, ", "))
}

// The PKCS#11 module is process-wide state: C_Initialize and C_Finalize
// happen once per process, and a login belongs to the application, not to
// a session. libraries counts the HSMs using each module so that the last
// Close finalizes it, and the logins per slot so that one HSM's Close does
// not log out another's sessions on the same token. This is the one piece
// of package-level state, and it mirrors the C library's own.
var libraries = struct {
	sync.Mutex
	m map[string]*library
}{m: map[string]*library{}}

type library struct {
	path  string
	ctx   *p11.Ctx
	refs  int
	owned bool // we called C_Initialize, so we call C_Finalize
	// logins per slot: how many HSMs share the login, and a hash of the
	// PIN it was made with, so a second Open with a wrong PIN still fails.
	logins map[uint]*login
}

type login struct {
	refs int
	pin  [sha256.Size]byte
}

// acquire loads and initializes the module at path, or shares the one
// already loaded.
func acquire(path string) (*library, error) {
	libraries.Lock()
	defer libraries.Unlock()
	if l := libraries.m[path]; l != nil {
		l.refs++
		return l, nil
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("loading PKCS#11 library %s: the file does not exist (for SoftHSM2 on Debian or Ubuntu: apt-get install softhsm2): %w", path, err)
		}
		return nil, fmt.Errorf("loading PKCS#11 library %s: %w", path, err)
	}
	ctx := p11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("loading PKCS#11 library %s: dlopen failed or it exports no C_GetFunctionList (not a PKCS#11 module, or a dependency is missing)", path)
	}
	l := &library{path: path, ctx: ctx, refs: 1, owned: true, logins: map[uint]*login{}}
	if err := ctx.Initialize(); err != nil {
		if !isCKR(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, fmt.Errorf("initializing PKCS#11 library %s: %w", path, err)
		}
		l.owned = false // initialized by other code in this process
	}
	libraries.m[path] = l
	return l, nil
}

// release drops one reference; the last one finalizes and unloads.
func release(l *library) error {
	libraries.Lock()
	defer libraries.Unlock()
	l.refs--
	if l.refs > 0 {
		return nil
	}
	delete(libraries.m, l.path)
	var err error
	if l.owned {
		err = l.ctx.Finalize()
	}
	l.ctx.Destroy()
	return err
}

// login logs the application in as the user on slot, or shares the login
// already made with the same PIN.
func (l *library) login(s p11.SessionHandle, slot uint, pin string) error {
	libraries.Lock()
	defer libraries.Unlock()
	sum := sha256.Sum256([]byte(pin))
	if lg := l.logins[slot]; lg != nil {
		if subtle.ConstantTimeCompare(lg.pin[:], sum[:]) != 1 {
			return fmt.Errorf("wrong PIN: this process is logged in to the token with a different one: %w", p11.Error(p11.CKR_PIN_INCORRECT))
		}
		lg.refs++
		return nil
	}
	if err := l.ctx.Login(s, p11.CKU_USER, pin); err != nil && !isCKR(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
		switch {
		case isCKR(err, p11.CKR_PIN_INCORRECT):
			return fmt.Errorf("wrong PIN: %w", err)
		case isCKR(err, p11.CKR_PIN_LOCKED):
			return fmt.Errorf("the user PIN is locked (too many wrong attempts; the SO must reset it): %w", err)
		case isCKR(err, p11.CKR_USER_PIN_NOT_INITIALIZED):
			return fmt.Errorf("the token has no user PIN yet (SO: C_InitPIN, or softhsm2-util --init-token --pin): %w", err)
		}
		return err
	}
	l.logins[slot] = &login{refs: 1, pin: sum}
	return nil
}

// logout drops one share of the login; the last one logs out.
func (l *library) logout(s p11.SessionHandle, slot uint) error {
	libraries.Lock()
	defer libraries.Unlock()
	lg := l.logins[slot]
	if lg == nil {
		return nil
	}
	if lg.refs--; lg.refs > 0 {
		return nil
	}
	delete(l.logins, slot)
	if err := l.ctx.Logout(s); err != nil && !isCKR(err, p11.CKR_USER_NOT_LOGGED_IN) {
		return err
	}
	return nil
}

// crypt runs a single-part C_EncryptInit/C_Encrypt (or the Decrypt pair).
func (h *HSM) crypt(s p11.SessionHandle, decrypt bool, mech *p11.Mechanism, key p11.ObjectHandle, in []byte) ([]byte, error) {
	m := []*p11.Mechanism{mech}
	if decrypt {
		if err := h.ctx.DecryptInit(s, m, key); err != nil {
			return nil, err
		}
		return h.ctx.Decrypt(s, in)
	}
	if err := h.ctx.EncryptInit(s, m, key); err != nil {
		return nil, err
	}
	return h.ctx.Encrypt(s, in)
}

// sign runs a single-part C_SignInit/C_Sign.
func (h *HSM) sign(s p11.SessionHandle, mech uint, key p11.ObjectHandle, in []byte) ([]byte, error) {
	if err := h.ctx.SignInit(s, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, key); err != nil {
		return nil, err
	}
	return h.ctx.Sign(s, in)
}
