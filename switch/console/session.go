package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// cookieName is the session cookie.
const cookieName = "payswitch_console"

// session is one operator's login.
type session struct {
	id       string // the cookie value
	csrf     string // the token every POST form carries
	operator string
	remote   string
	started  time.Time
	lastSeen time.Time
	// token is the token last looked up: suspend and resume act on it, so
	// the card-like token number is never written into a form.
	token string
}

// ref names the session in the audit log without revealing the cookie.
func (s *session) ref() string {
	sum := sha256.Sum256([]byte(s.id))
	return hex.EncodeToString(sum[:4])
}

type sessions struct {
	mu   sync.Mutex
	cfg  Config
	byID map[string]*session
	// wrong limits wrong tokens per client address: a burst of
	// loginBurst, then one every loginEvery.
	wrong map[string]*rate.Limiter
}

const (
	loginBurst = 10
	loginEvery = 6 * time.Second
)

func newSessions(cfg Config) *sessions {
	return &sessions{cfg: cfg, byID: map[string]*session{}, wrong: map[string]*rate.Limiter{}}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// mayTry reports whether r's address may try a token now.
func (ss *sessions) mayTry(r *http.Request, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	l, ok := ss.wrong[clientIP(r)]
	return !ok || l.TokensAt(now) >= 1
}

// failed counts a wrong token from r's address.
func (ss *sessions) failed(r *http.Request, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.wrong) > 10000 { // bounded: forget everyone rather than grow
		clear(ss.wrong)
	}
	ip := clientIP(r)
	l, ok := ss.wrong[ip]
	if !ok {
		l = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		ss.wrong[ip] = l
	}
	l.AllowN(now, 1)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

func (ss *sessions) start(operator, remote string) *session {
	now := ss.cfg.Now()
	s := &session{id: randomToken(), csrf: randomToken(), operator: operator, remote: remote, started: now, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, old := range ss.byID { // expired sessions go at each login
		if ss.expired(old, now) {
			delete(ss.byID, id)
		}
	}
	ss.byID[s.id] = s
	return s
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) > ss.cfg.IdleTimeout || now.Sub(s.started) > ss.cfg.MaxAge
}

// get returns the live session of r and renews its idle time; nil when
// there is none or it expired (then it is forgotten).
func (ss *sessions) get(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[ck.Value]
	if !ok {
		return nil
	}
	now := ss.cfg.Now()
	if ss.expired(s, now) {
		delete(ss.byID, s.id)
		return nil
	}
	s.lastSeen = now
	return s
}

func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, s.id)
}

func (ss *sessions) setToken(s *session, token string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.token = token
}

func (ss *sessions) currentToken(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return s.token
}

func (c *Console) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: value, Path: Prefix, HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
}

// page guards a read-only page: without a live session the operator is
// sent to the login page.
func (c *Console) page(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessions.get(r)
		if s == nil {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		h(w, r, s)
	})
}

// action guards a POST: a live session and its CSRF token in the form
// field "csrf"; anything else is refused (403) and audited.
func (c *Console) action(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		s := c.sessions.get(r)
		if s == nil {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
			c.audit(r, s, "refused", zap.String("why", "missing or wrong CSRF token"), zap.String("path", scrubCards(r.URL.Path)))
			c.render(w, http.StatusForbidden, "error", s, pageData{Title: "Refused",
				Error: "This form is out of date or did not come from this console (CSRF check failed). Reload the page and try again."})
			return
		}
		h(w, r, s)
	})
}

// audit writes one record of the audit log: who (operator, address,
// session), what, when (the logger's time). Fields never carry card data.
func (c *Console) audit(r *http.Request, s *session, what string, fields ...zap.Field) {
	who := []zap.Field{zap.String("action", what), zap.String("remote", r.RemoteAddr)}
	if s != nil {
		who = append(who, zap.String("operator", s.operator), zap.String("session", s.ref()))
	}
	c.log.Info("console audit", append(who, fields...)...)
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessions.get(r) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", nil, pageData{Title: "Log in"})
}

// login checks the admin bearer token (constant time) and starts a
// session. The operator's name is what the audit log calls them.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	operator := cleanOperator(r.PostFormValue("operator"))
	given := r.PostFormValue("token")
	if !c.sessions.mayTry(r, c.cfg.Now()) {
		c.audit(r, nil, "login refused", zap.String("operator", operator), zap.String("why", "too many wrong tokens from this address"))
		c.render(w, http.StatusTooManyRequests, "login", nil, pageData{Title: "Log in", Error: "Too many wrong tokens from this address; wait a minute."})
		return
	}
	if c.cfg.Bearer == "" || subtle.ConstantTimeCompare([]byte(given), []byte(c.cfg.Bearer)) != 1 {
		c.sessions.failed(r, c.cfg.Now())
		c.audit(r, nil, "login refused", zap.String("operator", operator))
		c.render(w, http.StatusUnauthorized, "login", nil, pageData{Title: "Log in", Error: "Wrong admin token."})
		return
	}
	s := c.sessions.start(operator, r.RemoteAddr)
	http.SetCookie(w, c.cookie(s.id, int(c.cfg.MaxAge.Seconds())))
	c.audit(r, s, "login")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s)
	http.SetCookie(w, c.cookie("", -1))
	c.audit(r, s, "logout")
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// cleanOperator bounds an operator's name to printable text of at most 64
// characters with card-like digit runs masked; "" becomes "operator".
func cleanOperator(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, scrubCards(strings.TrimSpace(name)))
	if len(name) > 64 {
		name = strings.ToValidUTF8(name[:64], "")
	}
	if name == "" {
		return "operator"
	}
	return name
}
