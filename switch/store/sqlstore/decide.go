package sqlstore

import (
	"errors"
	"fmt"

	"github.com/kbpay/switch/switch/store"
)

// The decisions below turn "the write touched no row" (or the rows a
// read found) into the store's typed errors, the same on every backend.

// NotOwned is why an owner-checked write to transaction id by instance me
// touched nothing, given the row's owner (found false when there is no
// row): store.ErrLeaseLost when another instance owns it (it was taken
// over), else otherwise (store.ErrNotFound, store.ErrNotReserved).
func NotOwned(id int64, owner string, found bool, me string, otherwise error) error {
	if found && owner != "" && owner != me {
		return fmt.Errorf("transaction %d belongs to instance %q: %w", id, owner, store.ErrLeaseLost)
	}
	return otherwise
}

// CheckReserve refuses a cancel that cannot reserve anything: no sale or
// no amount (store.ErrExceeds).
func CheckReserve(c store.Txn) error {
	if c.OriginalID <= 0 || c.Amount <= 0 {
		return fmt.Errorf("journal: reserving %d of transaction %d: %w", c.Amount, c.OriginalID, store.ErrExceeds)
	}
	return nil
}

// OneSale is the sale a refund's reference found: store.ErrNotFound when
// none, store.ErrAmbiguous when more than one.
func OneSale(found []store.Txn) (store.Txn, error) {
	switch len(found) {
	case 0:
		return store.Txn{}, store.ErrNotFound
	case 1:
		return found[0], nil
	}
	return store.Txn{}, store.ErrAmbiguous
}

// TakenOverKind and TakenOverDetail are the history event of a
// transaction taken over from lapsed instance from by instance by.
const TakenOverKind = "taken_over"

// TakenOverDetail: see TakenOverKind.
func TakenOverDetail(from, by string) string {
	return fmt.Sprintf("from lapsed instance %q by %q", from, by)
}

// ReleasedDetail is the sale's history detail of a cancel's reservation
// given back.
func ReleasedDetail(amount, cancelID int64, why string) string {
	return fmt.Sprintf("%d given back by transaction %d: %s", amount, cancelID, why)
}

// ReservedDetail is the sale's history detail of a cancel's reservation.
func ReservedDetail(amount, cancelID, remains int64) string {
	return fmt.Sprintf("%d reserved by transaction %d, %d remains", amount, cancelID, remains)
}

// Duplicate answers a request whose key was journaled already with the
// stored row (the look-up of its key) and store.ErrDuplicate.
func Duplicate(stored store.Txn, err error) (store.Txn, error) {
	if err != nil {
		return store.Txn{}, fmt.Errorf("journal: reading the original of a duplicate: %w", err)
	}
	return stored, store.ErrDuplicate
}

// RefusedCancel is why cancel c reserved nothing, given the look-up of its
// key: a repeat (Duplicate, even when nothing remains of the sale) or
// more than remains (store.ErrExceeds).
func RefusedCancel(c, stored store.Txn, err error) (store.Txn, error) {
	if errors.Is(err, store.ErrNotFound) {
		return store.Txn{}, fmt.Errorf("journal: reserving %d of transaction %d: %w", c.Amount, c.OriginalID, store.ErrExceeds)
	}
	return Duplicate(stored, err)
}
