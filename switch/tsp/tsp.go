// Package tsp is the token service: it issues device tokens and one-time card
// numbers for real cards, manages their life cycle, and detokenizes them on
// the payment path, with the PAN only ever decrypted by the HSM.
package tsp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/card/pan"
	"github.com/kbpay/switch/hsm"
	"github.com/kbpay/switch/switch/store"
)

// Config is the token service's configuration.
type Config struct {
	// BIN is the token range prefix; it must not overlap any issuer BIN.
	BIN string
	// OneTimeTTL is how long a one-time card number lives. Default 3m.
	OneTimeTTL time.Duration
	// DataKey and HashKey are the HSM key labels for PAN encryption and
	// PAN hashing.
	DataKey string
	HashKey string
	// DomainCache bounds how many tokens' domains are kept in memory to
	// skip a vault read per payment (0: DefaultDomainCache, < 0: none).
	DomainCache int
}

// Errors the payment path maps to response codes.
var (
	ErrUnknownToken  = errors.New("unknown or deleted token")            // 14
	ErrTokenExpired  = errors.New("token expired")                       // 33
	ErrTokenUsed     = errors.New("one-time card number already used")   // 33
	ErrSuspended     = errors.New("token suspended")                     // 62
	ErrOutsideDomain = errors.New("token used outside its domain")       // 57
	ErrInvalid       = errors.New("invalid token request")               // API 400
	ErrFinal         = errors.New("token is deleted; deletion is final") // API 409
)

// Service issues and detokenizes tokens.
type Service struct {
	cfg   Config
	vault store.Tokens
	hsm   hsm.HSM
	log   *zap.Logger
	now   func() time.Time
	// domains caches each token's (immutable) domain: see domainCache.
	domains *domainCache
}

// New builds the service.
func New(cfg Config, vault store.Tokens, h hsm.HSM, log *zap.Logger) (*Service, error) {
	if cfg.BIN == "" || strings.Trim(cfg.BIN, "0123456789") != "" || len(cfg.BIN) > 8 {
		return nil, fmt.Errorf("token BIN %q must be 1-8 digits", cfg.BIN)
	}
	if cfg.OneTimeTTL <= 0 {
		cfg.OneTimeTTL = 3 * time.Minute
	}
	if cfg.DataKey == "" || cfg.HashKey == "" {
		return nil, errors.New("token service needs the data and hash key labels")
	}
	return &Service{cfg: cfg, vault: vault, hsm: h, log: log, now: time.Now, domains: newDomainCache(cfg.DomainCache)}, nil
}

// IsToken reports whether number lies in the token range.
func (s *Service) IsToken(number string) bool { return strings.HasPrefix(number, s.cfg.BIN) }

// IssueRequest asks for a token for a card.
type IssueRequest struct {
	PAN    string
	Expiry string // card expiry YYMM
	Kind   store.TokenKind
	Domain store.Domain
}

// Issue creates a token for a card.
func (s *Service) Issue(ctx context.Context, req IssueRequest) (store.TokenRecord, error) {
	now := s.now()
	if err := s.validateIssue(req, now); err != nil {
		return store.TokenRecord{}, err
	}
	enc, err := s.hsm.EncryptPAN(ctx, hsm.KeyRef{Label: s.cfg.DataKey}, req.PAN)
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("encrypting PAN %s: %w", pan.Mask(req.PAN), err)
	}
	h, err := s.hsm.HashPAN(ctx, hsm.KeyRef{Label: s.cfg.HashKey}, req.PAN)
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("hashing PAN %s: %w", pan.Mask(req.PAN), err)
	}
	rec := store.TokenRecord{
		PANKey: enc.Key.Label, PANKeyVersion: enc.Key.Version, PANCiphertext: enc.Ciphertext,
		PANHash: h.Hash, HashVersion: h.Key.Version, MaskedPAN: pan.Mask(req.PAN), CardExpiry: req.Expiry,
		Status: store.TokenActive, Kind: req.Kind, Domain: req.Domain, CreatedAt: now, UpdatedAt: now,
	}
	cardEnd := endOfMonth(req.Expiry)
	if req.Kind == store.OneTimeToken {
		rec.MaxUses = 1
		rec.ExpiresAt = now.Add(s.cfg.OneTimeTTL)
		if cardEnd.Before(rec.ExpiresAt) {
			rec.ExpiresAt = cardEnd
		}
	} else {
		rec.ExpiresAt = cardEnd
	}
	for attempt := 0; attempt < 8; attempt++ {
		rec.Token, err = s.newTokenNumber(len(req.PAN))
		if err != nil {
			return store.TokenRecord{}, err
		}
		err = s.vault.Insert(ctx, rec)
		if !errors.Is(err, store.ErrDuplicate) {
			break
		}
	}
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("storing token: %w", err)
	}
	s.log.Info("token issued", zap.String("token", pan.Mask(rec.Token)), zap.String("pan", rec.MaskedPAN),
		zap.String("kind", string(rec.Kind)), zap.Time("expires_at", rec.ExpiresAt))
	return rec, nil
}

func (s *Service) validateIssue(req IssueRequest, now time.Time) error {
	switch {
	case !pan.Luhn(req.PAN) || len(req.PAN) < 13 || len(req.PAN) > 19:
		return fmt.Errorf("%w: pan must be 13-19 digits and pass the Luhn check", ErrInvalid)
	case s.IsToken(req.PAN):
		return fmt.Errorf("%w: pan lies in the token range", ErrInvalid)
	case req.Kind != store.DeviceToken && req.Kind != store.OneTimeToken:
		return fmt.Errorf("%w: kind must be device or one-time", ErrInvalid)
	}
	end := endOfMonth(req.Expiry)
	if end.IsZero() {
		return fmt.Errorf("%w: expiry must be YYMM", ErrInvalid)
	}
	if !end.After(now) {
		return fmt.Errorf("%w: card expired", ErrInvalid)
	}
	for _, m := range req.Domain.EntryModes {
		if m == "" || len(m) > 3 || strings.Trim(m, "0123456789") != "" {
			return fmt.Errorf("%w: entry mode %q must be 1-3 digits", ErrInvalid, m)
		}
	}
	for _, m := range req.Domain.Merchants {
		if m == "" || len(m) > 15 {
			return fmt.Errorf("%w: merchant ID %q must be 1-15 characters", ErrInvalid, m)
		}
	}
	return nil
}

// endOfMonth returns the first instant after card expiry YYMM, or zero.
func endOfMonth(yymm string) time.Time {
	if len(yymm) != 4 || strings.Trim(yymm, "0123456789") != "" {
		return time.Time{}
	}
	yy := int(yymm[0]-'0')*10 + int(yymm[1]-'0')
	mm := int(yymm[2]-'0')*10 + int(yymm[3]-'0')
	if mm < 1 || mm > 12 {
		return time.Time{}
	}
	return time.Date(2000+yy, time.Month(mm)+1, 1, 0, 0, 0, 0, time.UTC)
}

// newTokenNumber draws a random Luhn-valid number of length n in the token range.
func (s *Service) newTokenNumber(n int) (string, error) {
	if n < 13 {
		n = 16
	}
	body := n - len(s.cfg.BIN) - 1
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(body)), nil)
	r, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("drawing token number: %w", err)
	}
	partial := s.cfg.BIN + fmt.Sprintf("%0*s", body, r.String())
	return partial + string(pan.CheckDigit(partial)), nil
}

// Get returns a token's record.
func (s *Service) Get(ctx context.Context, token string) (store.TokenRecord, error) {
	rec, err := s.vault.Get(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return rec, ErrUnknownToken
	}
	return rec, err
}

// SetStatus suspends, resumes or deletes a token.
func (s *Service) SetStatus(ctx context.Context, token string, status store.TokenStatus) (store.TokenRecord, error) {
	rec, err := s.vault.SetStatus(ctx, token, status, s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return rec, ErrUnknownToken
	case errors.Is(err, store.ErrFinal):
		return rec, ErrFinal
	case err != nil:
		return rec, err
	}
	s.log.Info("token status changed", zap.String("token", pan.Mask(token)), zap.String("status", string(status)))
	return rec, nil
}

// Use is where and how a token is presented.
type Use struct {
	MerchantID string
	EntryMode  string // DE 22
}

// Card is a detokenized card: the real PAN (for the issuer leg only) and
// the token record it came from.
type Card struct {
	PAN    string
	Expiry string
	Token  store.TokenRecord
}

// Detokenize checks the token (status, expiry, domain, one-time use),
// records the use atomically and has the HSM decrypt the PAN: one vault
// write (Use, which re-checks status, expiry and uses left in the store, so
// a suspension or a one-time use by another instance is always seen) and
// one HSM call. The vault read that finds the domain is skipped once the
// token's domain is cached (it never changes); a refusal is explained from
// a fresh read, in the same order as without the cache.
func (s *Service) Detokenize(ctx context.Context, token string, use Use) (Card, error) {
	now := s.now()
	if r, ok := s.domains.get(token); ok {
		if !inDomain(r.domain, use) {
			return Card{}, s.refusal(ctx, token, now, ErrOutsideDomain)
		}
		return s.use(ctx, token, now)
	}
	rec, err := s.readRules(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return Card{}, ErrUnknownToken
	}
	if err != nil {
		return Card{}, fmt.Errorf("reading token %s: %w", pan.Mask(token), err)
	}
	if err := usable(rec, now); err != nil {
		return Card{}, err
	}
	if !inDomain(rec.Domain, use) {
		return Card{}, ErrOutsideDomain
	}
	return s.use(ctx, token, now)
}

// UseLimitless reports whether token has no use limit: a device token,
// whose use only counts. The payment path then need not look for a repeat
// before it detokenizes (a repeat is found when it is journaled, and
// counts a use); a one-time card number must be looked for first, so that
// a repeat never uses it up. A token whose rules are not cached is read
// from the vault (as Detokenize would read it next) and its rules cached:
// in a vault of millions most payments are a token's first in this
// process, and the journal look-up this spares them cost more than the
// read. False when the vault cannot tell (no such token, or an error):
// the sale is looked for first, and Detokenize refuses it.
func (s *Service) UseLimitless(ctx context.Context, token string) bool {
	if r, ok := s.domains.get(token); ok {
		return r.maxUses == 0
	}
	rec, err := s.readRules(ctx, token)
	return err == nil && rec.Status != store.TokenDeleted && rec.MaxUses == 0
}

// readRules reads token from the vault and caches its rules, unless it is
// deleted (a deleted token is refused from a fresh read each time).
func (s *Service) readRules(ctx context.Context, token string) (store.TokenRecord, error) {
	rec, err := s.vault.Get(ctx, token)
	if err == nil && rec.Status != store.TokenDeleted {
		s.domains.put(token, tokenRules{domain: rec.Domain, maxUses: rec.MaxUses})
	}
	return rec, err
}

// use records one use of a token whose domain allows it and decrypts its PAN.
func (s *Service) use(ctx context.Context, token string, now time.Time) (Card, error) {
	rec, err := s.vault.Use(ctx, token, now)
	if errors.Is(err, store.ErrNotUsable) {
		// Not active, expired, used up, or lost a race: say why.
		return Card{}, s.refusal(ctx, token, now, ErrTokenUsed)
	}
	if err != nil {
		return Card{}, fmt.Errorf("recording use of token %s: %w", pan.Mask(token), err)
	}
	card := Card{Expiry: rec.CardExpiry, Token: rec}
	card.PAN, err = s.hsm.DecryptPAN(ctx, card.Sealed())
	if err != nil {
		return Card{}, fmt.Errorf("decrypting PAN of token %s: %w", pan.Mask(token), err)
	}
	return card, nil
}

// refusal says why a token was refused from its current state in the vault:
// unknown, suspended, expired or used up before otherwise (the order of the
// checks without a cached domain); otherwise.
func (s *Service) refusal(ctx context.Context, token string, now time.Time, otherwise error) error {
	cur, err := s.vault.Get(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownToken
	}
	if err != nil {
		return fmt.Errorf("reading token %s: %w", pan.Mask(token), err)
	}
	if uerr := usable(cur, now); uerr != nil {
		return uerr
	}
	return otherwise
}

// Sealed is the card's PAN as the vault keeps it: encrypted by the HSM.
func (c Card) Sealed() hsm.EncryptedPAN {
	return hsm.EncryptedPAN{Key: hsm.KeyRef{Label: c.Token.PANKey, Version: c.Token.PANKeyVersion}, Ciphertext: c.Token.PANCiphertext}
}

func usable(rec store.TokenRecord, now time.Time) error {
	switch {
	case rec.Status == store.TokenDeleted:
		return ErrUnknownToken
	case rec.Status == store.TokenSuspended:
		return ErrSuspended
	case !now.Before(rec.ExpiresAt):
		return ErrTokenExpired
	case rec.MaxUses > 0 && rec.UseCount >= rec.MaxUses:
		return ErrTokenUsed
	}
	return nil
}

// inDomain: an empty list allows all; entry modes match by prefix so "05"
// (chip) allows "051" (chip, PIN capable).
func inDomain(d store.Domain, use Use) bool {
	if len(d.Merchants) > 0 && !contains(d.Merchants, strings.TrimSpace(use.MerchantID)) {
		return false
	}
	if len(d.EntryModes) == 0 {
		return true
	}
	for _, m := range d.EntryModes {
		if strings.HasPrefix(use.EntryMode, m) {
			return true
		}
	}
	return false
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == v {
			return true
		}
	}
	return false
}
