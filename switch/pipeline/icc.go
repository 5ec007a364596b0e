package pipeline

import (
	"errors"
	"fmt"
)

// CheckICC checks that DE 55 is at most max bytes of well-formed BER-TLV
// (EMV tags of one or more bytes, definite lengths up to 2 length bytes),
// without looking at what the tags mean. The switch passes ICC data to the
// issuer untouched; this only keeps garbage off the issuer link.
func CheckICC(b []byte, max int) error {
	if len(b) > max {
		return fmt.Errorf("%d bytes, more than the %d allowed", len(b), max)
	}
	for i := 0; i < len(b); {
		// Tag: first byte; if its low 5 bits are all set, more bytes follow
		// while bit 8 is set.
		if b[i] == 0x00 || b[i] == 0xff {
			return fmt.Errorf("padding or invalid tag byte %#x at %d", b[i], i)
		}
		multi := b[i]&0x1f == 0x1f
		i++
		for multi {
			if i >= len(b) {
				return errors.New("tag runs past the end")
			}
			multi = b[i]&0x80 != 0
			i++
		}
		if i >= len(b) {
			return errors.New("length missing")
		}
		n := int(b[i])
		i++
		if n&0x80 != 0 {
			k := n & 0x7f
			if k == 0 || k > 2 || i+k > len(b) {
				return errors.New("bad length encoding")
			}
			n = 0
			for ; k > 0; k-- {
				n = n<<8 | int(b[i])
				i++
			}
		}
		if i+n > len(b) {
			return fmt.Errorf("value of %d bytes runs past the end", n)
		}
		i += n
	}
	return nil
}
