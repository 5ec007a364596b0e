//go:build linux

package load

import (
	"syscall"
	"time"
)

// nap sleeps for d with nanosleep(2) on the calling goroutine's (locked)
// thread: the runtime's timers wake about a millisecond late on Linux,
// which would show up as latency from the intended send time.
func nap(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		if err := syscall.Nanosleep(&ts, &rem); err != syscall.EINTR {
			return
		}
		ts = rem
	}
}
