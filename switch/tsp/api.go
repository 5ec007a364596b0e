package tsp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/tsp/tokenapi"
)

// toJSON shows r as of now: an active token that was consumed or has
// lapsed says so instead of "active".
func toJSON(r store.TokenRecord, now time.Time) tokenapi.TokenJSON {
	status := r.Status
	if status == store.TokenActive {
		switch {
		case r.MaxUses > 0 && r.UseCount >= r.MaxUses:
			status = tokenapi.StatusUsed
		case !now.Before(r.ExpiresAt):
			status = tokenapi.StatusExpired
		}
	}
	return tokenapi.TokenJSON{Token: r.Token, Kind: r.Kind, Status: status, ExpiresAt: r.ExpiresAt.UTC(),
		MaskedPAN: r.MaskedPAN, Domain: r.Domain, UseCount: r.UseCount}
}

// maxBody bounds a provisioning request.
const maxBody = 64 << 10

// API returns the provisioning HTTP handler (POST /v1/tokens, GET
// /v1/tokens/{token}, POST /v1/tokens/{token}/suspend|resume, DELETE
// /v1/tokens/{token}), guarded by the bearer token. Access logs name the
// masked token and never a request body.
func (s *Service) API(bearer string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tokens", s.handleIssue)
	mux.HandleFunc("GET /v1/tokens/{token}", s.handleGet)
	mux.HandleFunc("POST /v1/tokens/{token}/suspend", s.handleStatus(store.TokenSuspended))
	mux.HandleFunc("POST /v1/tokens/{token}/resume", s.handleStatus(store.TokenActive))
	mux.HandleFunc("DELETE /v1/tokens/{token}", s.handleStatus(store.TokenDeleted))
	authorized := BearerMatcher(bearer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		if !authorized(r.Header.Get("Authorization")) {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="switch"`)
			writeErr(rec, http.StatusUnauthorized, "missing or wrong bearer token")
		} else {
			r.Body = http.MaxBytesReader(rec, r.Body, maxBody)
			mux.ServeHTTP(rec, r)
		}
		s.log.Info("admin API", zap.String("method", r.Method), zap.String("path", maskPath(r.URL.Path)),
			zap.Int("status", rec.status), zap.Duration("took", time.Since(start)))
	})
}

// BearerMatcher returns a check of an Authorization header against
// "Bearer <bearer>" whose time depends on neither the header's content nor
// its length: both sides are hashed (SHA-256) and the digests compared in
// constant time. An empty bearer matches nothing.
func BearerMatcher(bearer string) func(authorization string) bool {
	want := sha256.Sum256([]byte("Bearer " + bearer))
	return func(authorization string) bool {
		got := sha256.Sum256([]byte(authorization))
		return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && bearer != ""
	}
}

func (s *Service) handleIssue(w http.ResponseWriter, r *http.Request) {
	var req tokenapi.IssueJSON
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// The decoder's message can quote the input: do not echo it.
		writeErr(w, http.StatusBadRequest, "request body is not a valid token request (JSON with pan, expiry, kind, domain)")
		return
	}
	if req.Kind == "" {
		req.Kind = store.DeviceToken
	}
	rec, err := s.Issue(r.Context(), IssueRequest(req))
	if err != nil {
		s.writeServiceErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, toJSON(rec, s.now()))
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Get(r.Context(), r.PathValue("token"))
	if err != nil {
		s.writeServiceErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(rec, s.now()))
}

func (s *Service) handleStatus(to store.TokenStatus) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec, err := s.SetStatus(r.Context(), r.PathValue("token"), to)
		if err != nil {
			s.writeServiceErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, toJSON(rec, s.now()))
	}
}

func (s *Service) writeServiceErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		writeErr(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrUnknownToken):
		writeErr(w, http.StatusNotFound, "token not found")
	case errors.Is(err, ErrFinal):
		writeErr(w, http.StatusConflict, err.Error())
	default:
		s.log.Error("admin API failure", zap.String("error", pan.Scrub(err.Error())))
		writeErr(w, http.StatusInternalServerError, "internal error")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": pan.Scrub(msg)})
}

// maskPath masks a token (or anything card-like) in /v1/tokens/{token}/...
func maskPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if len(s) >= 12 && strings.Trim(s, "0123456789") == "" {
			parts[i] = pan.Mask(s)
		}
	}
	return strings.Join(parts, "/")
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
