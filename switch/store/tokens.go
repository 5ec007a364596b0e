package store

import "time"

// TokenStatus is a token's life-cycle state; deleted is final.
type TokenStatus string

const (
	TokenActive    TokenStatus = "active"
	TokenSuspended TokenStatus = "suspended"
	TokenDeleted   TokenStatus = "deleted"
)

// TokenKind is the kind of token.
type TokenKind string

const (
	// DeviceToken: long-lived and bound to a domain.
	DeviceToken TokenKind = "device"
	// OneTimeToken: a one-time card number, single use with a short TTL.
	OneTimeToken TokenKind = "one-time"
)

// Domain restricts where a device token may be used; an empty list allows all.
type Domain struct {
	Merchants  []string `json:"merchants,omitempty"`
	EntryModes []string `json:"entry_modes,omitempty"`
}

// TokenRecord is one token in the vault.
type TokenRecord struct {
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
	Status    TokenStatus
	Kind      TokenKind
	Domain    Domain
	UseCount  int
	// MaxUses is 1 for one-time tokens, 0 (unlimited) for device tokens.
	MaxUses   int
	CreatedAt time.Time
	UpdatedAt time.Time
}
