// Package hostcmd is the payShield host-command wire format shared by the
// payshield backend and the hsmsim emulator: the TCP framing (a 2-byte
// big-endian length before each message), the message header the HSM
// echoes, and the commands the switch uses with their answers.
//
// Formats follow the payShield host command reference (Thales,
// "payShield 10K Host Command Reference"/"Host Programmer's Manual", as
// reproduced in public copies: CA, CC, CI/G0 field tables; see
// docs/hsm.md for the list of sources). Where this package makes a choice
// the reference leaves to the HSM's configuration it says so in the
// command's comment.
package hostcmd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the largest message the 2-byte length prefix allows.
const MaxFrame = 0xFFFF

// ErrFrame is a framing error: an empty or oversized message.
var ErrFrame = errors.New("hostcmd: bad frame")

// ReadFrame reads one length-prefixed message.
func ReadFrame(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := int(binary.BigEndian.Uint16(n[:]))
	if size == 0 {
		return nil, fmt.Errorf("empty message: %w", ErrFrame)
	}
	msg := make([]byte, size)
	if _, err := io.ReadFull(r, msg); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return msg, nil
}

// AppendFrame appends msg with its length prefix to dst.
func AppendFrame(dst, msg []byte) ([]byte, error) {
	if len(msg) == 0 || len(msg) > MaxFrame {
		return nil, fmt.Errorf("message of %d bytes: %w", len(msg), ErrFrame)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...), nil
}

// ResponseCode is the answer's code for a command: the command's second
// letter + 1 (NC -> ND, CA -> CB, M6 -> M7).
func ResponseCode(command string) string {
	if len(command) != 2 {
		return ""
	}
	return string([]byte{command[0], command[1] + 1})
}
