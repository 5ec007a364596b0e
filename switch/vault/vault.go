// Package vault stores token records: the PAN only as HSM ciphertext, a keyed
// PAN hash for look-ups, the token's status, kind, domain and use count, and
// consumes one-time tokens atomically.
package vault

import (
	"context"
	"errors"
	"time"
)

// Status is a token's life-cycle state; deleted is final.
type Status string

const (
	Active    Status = "active"
	Suspended Status = "suspended"
	Deleted   Status = "deleted"
)

// Kind is the kind of token.
type Kind string

const (
	// Device tokens are long-lived and bound to a domain.
	Device Kind = "device"
	// OneTime tokens (one-time card numbers) are single use with a short TTL.
	OneTime Kind = "one-time"
)

// Domain restricts where a device token may be used; an empty list allows all.
type Domain struct {
	Merchants  []string `json:"merchants,omitempty"`
	EntryModes []string `json:"entry_modes,omitempty"`
}

// Record is one token.
type Record struct {
	Token string
	// PANKey / PANKeyVersion / PANCiphertext are the HSM's EncryptedPAN.
	PANKey        string
	PANKeyVersion int
	PANCiphertext []byte
	// PANHash is HMAC-SHA-256 of the PAN under the hash key version HashVersion.
	PANHash     []byte
	HashVersion int
	// MaskedPAN is the first six and last four digits, for display.
	MaskedPAN string
	// CardExpiry is the real card's expiry, YYMM (sent to the issuer).
	CardExpiry string
	// ExpiresAt is when the token itself stops working.
	ExpiresAt time.Time
	Status    Status
	Kind      Kind
	Domain    Domain
	UseCount  int
	// MaxUses is 1 for one-time tokens, 0 (unlimited) for device tokens.
	MaxUses   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Errors a Store returns.
var (
	ErrNotFound  = errors.New("vault: token not found")
	ErrExists    = errors.New("vault: token already exists")
	ErrNotUsable = errors.New("vault: token not usable")
	ErrFinal     = errors.New("vault: token is deleted")
)

// Store is the token vault. Implementations are safe for concurrent use;
// Use is atomic across every process sharing the store.
type Store interface {
	Insert(ctx context.Context, r Record) error
	Get(ctx context.Context, token string) (Record, error)
	// SetStatus moves a token to status; a deleted token stays deleted
	// (ErrFinal).
	SetStatus(ctx context.Context, token string, status Status, now time.Time) (Record, error)
	// Use records one use of an active, unexpired token that has uses left
	// and returns the updated record; otherwise ErrNotUsable (the caller
	// reads the record to tell why). Two concurrent uses of a one-time
	// token: exactly one succeeds.
	Use(ctx context.Context, token string, now time.Time) (Record, error)
	// FindByPANHash lists the tokens of one card.
	FindByPANHash(ctx context.Context, hash []byte) ([]Record, error)
	Close() error
}
