package embedded

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/kbpay/switch/switch/store"
	"github.com/kbpay/switch/switch/store/sqlstore"
)

// getToken reads one tokens row by its number.
const getToken = `SELECT ` + tokenColumns + ` FROM tokens WHERE token = ?`

// tokenReader reads tokens rows through the driver on one reader
// connection held for it, the way the journal's writes go (writerConn):
// database/sql's way (a pooled connection taken and given back, arguments
// converted, a Rows with its own goroutine-safe bookkeeping per read) cost
// as much as the read itself. Each read is its own SQLite read
// transaction (the statement is reset before the connection is let go),
// so it sees every commit that ended before it began, from any
// connection or process. Reads are serialised on the one connection:
// each takes a few µs, and the payment path makes at most one.
type tokenReader struct {
	mu   sync.Mutex
	c    *writerConn
	dest []driver.Value
}

func openTokenReader(db *sql.DB) (*tokenReader, error) {
	c, err := openWriterConn(db)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &tokenReader{c: c, dest: make([]driver.Value, tokenFields)}, nil
}

// tokenFields is how many columns tokenColumns names.
const tokenFields = 16

func (r *tokenReader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c.close()
}

// get reads token's row: store.ErrNotFound when there is none.
func (r *tokenReader) get(token string) (store.TokenRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	found := false
	err := r.c.conn.Raw(func(dc any) error {
		s, err := r.c.stmt(dc, getToken)
		if err != nil {
			return err
		}
		qc, ok := s.(driver.StmtQueryContext)
		if !ok {
			return errors.New("vault: the SQLite driver cannot query with a context")
		}
		rows, err := qc.QueryContext(context.Background(), r.c.named([]any{token}))
		if err != nil {
			return err
		}
		err = rows.Next(r.dest)
		if cerr := rows.Close(); err == nil || errors.Is(err, io.EOF) {
			found = err == nil
			err = cerr
		}
		return err
	})
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("vault: reading token: %w", err)
	}
	if !found {
		return store.TokenRecord{}, store.ErrNotFound
	}
	return sqlstore.ScanToken(driverRow(r.dest))
}

// driverRow is a row as the driver returned it, scanned into the few
// destination types a tokens row needs (sqlstore.ScanToken's).
type driverRow []driver.Value

func (row driverRow) Scan(dest ...any) error {
	if len(dest) != len(row) {
		return fmt.Errorf("vault: %d columns scanned into %d values", len(row), len(dest))
	}
	for i, d := range dest {
		if err := assign(d, row[i]); err != nil {
			return fmt.Errorf("vault: column %d: %w", i+1, err)
		}
	}
	return nil
}

func assign(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
			return nil
		case []byte:
			*d = string(x)
			return nil
		}
	case *[]byte:
		switch x := v.(type) {
		case []byte:
			*d = append([]byte(nil), x...) // the driver's buffer is not ours to keep
			return nil
		case string:
			*d = []byte(x)
			return nil
		}
	case *int64:
		if x, ok := v.(int64); ok {
			*d = x
			return nil
		}
	case *int:
		if x, ok := v.(int64); ok {
			*d = int(x)
			return nil
		}
	}
	return fmt.Errorf("%T cannot be read into %T", v, dest)
}
