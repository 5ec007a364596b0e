// Package tokenapi is switchd's token provisioning API as its clients see
// it: the JSON shapes, a Client, and tokenctl (CtlMain). tokenctl, termsim
// and tests import it instead of the token service (switch/tsp), which
// serves the same shapes.
package tokenapi

import (
	"time"

	"github.com/kbpay/switch/switch/store"
)

// The API's vocabulary is the token vault's.
type (
	// Kind is device (static) or one-time.
	Kind = store.TokenKind
	// Status is a token's state as the API shows it.
	Status = store.TokenStatus
	// Domain limits where a token may be used.
	Domain = store.Domain
)

// Kinds and stored statuses.
const (
	DeviceToken  = store.DeviceToken
	OneTimeToken = store.OneTimeToken
	Active       = store.TokenActive
	Suspended    = store.TokenSuspended
	Deleted      = store.TokenDeleted
)

// Statuses the API shows beyond the stored ones: an active token that can
// no longer be used because it was consumed or has lapsed.
const (
	StatusUsed    Status = "used"    // a one-time token after its use
	StatusExpired Status = "expired" // past expires_at
)

// DemoBearer is the API's bearer token in development mode, when the
// switch's configuration names none (config.DemoAdminToken).
const DemoBearer = "demo-admin-token"

// TokenJSON is a token as the provisioning API shows it: never the PAN,
// only its masked form.
type TokenJSON struct {
	Token     string    `json:"token"`
	Kind      Kind      `json:"kind"`
	Status    Status    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
	MaskedPAN string    `json:"masked_pan"`
	Domain    Domain    `json:"domain"`
	UseCount  int       `json:"use_count"`
}

// IssueJSON is the body of POST /v1/tokens.
type IssueJSON struct {
	PAN    string `json:"pan"`
	Expiry string `json:"expiry"`
	Kind   Kind   `json:"kind"`
	Domain Domain `json:"domain"`
}
