package hostcmd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSyntax is a message that does not parse: the HSM answers error 15
// (error in input data).
var ErrSyntax = errors.New("hostcmd: message does not parse")

// reader takes fields off a message body in order; the first failure
// sticks and every later read returns zero values.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s at offset %d: %w", what, r.pos, ErrSyntax)
	}
}

// take returns the next n bytes.
func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.pos+n > len(r.b) {
		r.fail(what + ": message too short")
		return nil
	}
	out := r.b[r.pos : r.pos+n]
	r.pos += n
	return out
}

// str returns the next n bytes as a string of printable ASCII.
func (r *reader) str(n int, what string) string {
	b := r.take(n, what)
	for _, c := range b {
		if c < 0x20 || c > 0x7E {
			r.fail(what + ": not printable")
			return ""
		}
	}
	return string(b)
}

// char returns the next byte (0 after a failure).
func (r *reader) char(what string) byte {
	b := r.take(1, what)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// digits returns the next n decimal digits.
func (r *reader) digits(n int, what string) string {
	s := r.str(n, what)
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			r.fail(what + ": not decimal")
			return ""
		}
	}
	return s
}

// hex returns the next n upper-case hexadecimal characters.
func (r *reader) hex(n int, what string) string {
	s := r.str(n, what)
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			r.fail(what + ": not hexadecimal")
			return ""
		}
	}
	return s
}

// number returns the next n decimal digits as an int.
func (r *reader) number(n int, what string) int {
	s := r.digits(n, what)
	v, _ := strconv.Atoi(s)
	return v
}

// key reads a key: a scheme letter ('S' under the LMK, 'R' under a ZMK)
// and a version D key block whose length is in its own header.
func (r *reader) key(what string) Key {
	scheme := r.str(1, what)
	if r.err != nil {
		return Key{}
	}
	if scheme != "S" && scheme != "R" {
		r.fail(what + ": key scheme must be S or R")
		return Key{}
	}
	if r.pos+5 > len(r.b) {
		r.fail(what + ": key block too short")
		return Key{}
	}
	length := string(r.b[r.pos+1 : r.pos+5])
	n, err := strconv.Atoi(length)
	if err != nil || strings.Trim(length, "0123456789") != "" || r.b[r.pos] != 'D' || n < 16 {
		r.fail(what + ": not a version D key block")
		return Key{}
	}
	return Key{Scheme: scheme[0], Block: r.str(n, what)}
}

// end checks that nothing is left.
func (r *reader) end() error {
	if r.err == nil && r.pos != len(r.b) {
		r.fail(fmt.Sprintf("%d bytes left over", len(r.b)-r.pos))
	}
	return r.err
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// Key is a key on the wire: a key block under the LMK (scheme 'S') or
// under a zone master key (scheme 'R').
type Key struct {
	Scheme byte
	Block  string
}

// String is the wire form.
func (k Key) String() string { return string(k.Scheme) + k.Block }

// writer builds a message body.
type writer struct {
	b   []byte
	err error
}

func (w *writer) str(s string) { w.b = append(w.b, s...) }

// fixed appends s, which must be exactly n characters.
func (w *writer) fixed(s string, n int, what string) {
	if len(s) != n && w.err == nil {
		w.err = fmt.Errorf("hostcmd: %s must be %d characters, got %d", what, n, len(s))
	}
	w.str(s)
}

func (w *writer) key(k Key, what string) {
	if (k.Scheme != 'S' && k.Scheme != 'R') || len(k.Block) < 16 {
		if w.err == nil {
			w.err = fmt.Errorf("hostcmd: %s is not a key block", what)
		}
	}
	w.str(k.String())
}
