// Package route picks the issuer route for a card by the longest matching BIN
// prefix of its real PAN.
package route

import (
	"errors"
	"fmt"
	"sort"
)

// ErrNoRoute means no configured BIN prefix matches the PAN (DE 39 92).
var ErrNoRoute = errors.New("no issuer route for this BIN")

// Table maps BIN prefixes to route names. It is immutable once built, so a
// reload swaps in a new Table instead of changing one in place.
type Table struct {
	byLen   map[int]map[string]string
	lengths []int // prefix lengths present, longest first
}

// NewTable builds a table from route name -> BIN prefixes. A prefix claimed
// by two routes is an error.
func NewTable(bins map[string][]string) (*Table, error) {
	t := &Table{byLen: map[int]map[string]string{}}
	for name, prefixes := range bins {
		for _, p := range prefixes {
			m := t.byLen[len(p)]
			if m == nil {
				m = map[string]string{}
				t.byLen[len(p)] = m
				t.lengths = append(t.lengths, len(p))
			}
			if other, ok := m[p]; ok && other != name {
				return nil, fmt.Errorf("BIN prefix %s claimed by routes %s and %s", p, other, name)
			}
			m[p] = name
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(t.lengths)))
	return t, nil
}

// Lookup returns the route owning the longest prefix of pan.
func (t *Table) Lookup(pan string) (string, error) {
	for _, l := range t.lengths {
		if l > len(pan) {
			continue
		}
		if name, ok := t.byLen[l][pan[:l]]; ok {
			return name, nil
		}
	}
	return "", ErrNoRoute
}
