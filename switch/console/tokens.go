package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/store"
)

// tokenView is the tokens page. The token number is card-like: the page
// shows it masked, and suspend/resume act on the token the session looked
// up last, so it is never in a form, a URL or a log line in full.
type tokenView struct {
	Looked    bool
	Masked    string
	Record    store.TokenRecord
	Status    string
	CanResume bool
	CanSusp   bool
}

func (c *Console) tokens(w http.ResponseWriter, r *http.Request, s *session) {
	d := pageData{Title: "Tokens", Nav: "tokens", Notice: notice(r.URL.Query())}
	v := tokenView{}
	if tok := c.sessions.currentToken(s); tok != "" {
		rec, err := c.src.Token(r.Context(), tok)
		switch {
		case errors.Is(err, store.ErrNotFound):
			d.Error = "No token " + pan.Mask(tok) + "."
		case err != nil:
			c.failed(w, r, s, "reading a token", err)
			return
		default:
			v = tokenView{Looked: true, Masked: pan.Mask(tok), Record: rec, Status: tokenStatus(rec, c.cfg.Now()),
				CanSusp: rec.Status == store.TokenActive, CanResume: rec.Status == store.TokenSuspended}
		}
	}
	d.Data = v
	c.render(w, http.StatusOK, "tokens", s, d)
}

// tokenStatus is the status an operator needs: an active token that was
// used up or has lapsed says so.
func tokenStatus(r store.TokenRecord, now time.Time) string {
	if r.Status == store.TokenActive {
		switch {
		case r.MaxUses > 0 && r.UseCount >= r.MaxUses:
			return "used"
		case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
			return "expired"
		}
	}
	return string(r.Status)
}

// tokenLookup (POST, so the number is not in a URL) remembers the token in
// the session and shows it.
func (c *Console) tokenLookup(w http.ResponseWriter, r *http.Request, s *session) {
	tok := strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(r.PostFormValue("token")))
	if !isDigits(tok) || len(tok) < 13 || len(tok) > 19 {
		c.render(w, http.StatusBadRequest, "tokens", s, pageData{Title: "Tokens", Nav: "tokens", Data: tokenView{},
			Error: "A token is 13 to 19 digits."})
		return
	}
	c.sessions.setToken(s, tok)
	c.audit(r, s, "token look-up", zap.String("token", pan.Mask(tok)))
	http.Redirect(w, r, Prefix+"tokens", http.StatusSeeOther)
}

// tokenStatus (POST) suspends or resumes the session's token with a
// reason; the form names the masked token it showed, so a session that
// looked up another token meanwhile (another tab) is refused.
func (c *Console) tokenStatus(w http.ResponseWriter, r *http.Request, s *session) {
	tok := c.sessions.currentToken(s)
	to := store.TokenStatus(r.PostFormValue("status"))
	reason := scrubCards(strings.TrimSpace(r.PostFormValue("reason")))
	if len(reason) > 500 {
		reason = strings.ToValidUTF8(reason[:500], "")
	}
	fail := func(status int, msg string) {
		c.audit(r, s, "token status refused", zap.String("token", pan.Mask(tok)), zap.String("why", msg))
		c.render(w, status, "error", s, pageData{Title: "Tokens", Error: msg})
	}
	switch {
	case tok == "" || r.PostFormValue("shown") != pan.Mask(tok):
		fail(http.StatusConflict, "The token shown is no longer the one this session looked up; look it up again.")
		return
	case to != store.TokenSuspended && to != store.TokenActive:
		fail(http.StatusBadRequest, "Unknown status.")
		return
	case reason == "":
		fail(http.StatusBadRequest, "A reason is required to suspend or resume a token.")
		return
	}
	rec, err := c.src.SetTokenStatus(r.Context(), tok, to)
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(http.StatusNotFound, "No token "+pan.Mask(tok)+".")
		return
	case errors.Is(err, store.ErrFinal):
		fail(http.StatusConflict, "The token is deleted; a deleted token stays deleted.")
		return
	case err != nil:
		c.failed(w, r, s, "changing a token's status", err)
		return
	}
	what := "suspend"
	if to == store.TokenActive {
		what = "resume"
	}
	c.audit(r, s, "token "+what, zap.String("token", pan.Mask(tok)), zap.String("reason", reason), zap.String("outcome", string(rec.Status)))
	http.Redirect(w, r, Prefix+"tokens?done="+what+"&now="+url.QueryEscape(string(rec.Status)), http.StatusSeeOther)
}
