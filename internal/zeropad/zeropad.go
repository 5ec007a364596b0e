// Package zeropad formats numbers for fixed-width numeric ISO 8583 fields
// (STAN, RRN) without fmt, which costs an allocation per argument and a
// format parse on every transaction.
package zeropad

import "strconv"

// Pad returns n in decimal, left-padded with zeros to width digits, as
// fmt.Sprintf("%0*d", width, n) does (a number of more digits is kept
// whole).
func Pad(n uint64, width int) string {
	var buf [24]byte
	return string(Append(buf[:0], n, width))
}

// Append appends Pad(n, width) to b.
func Append(b []byte, n uint64, width int) []byte {
	var num [20]byte
	s := strconv.AppendUint(num[:0], n, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
