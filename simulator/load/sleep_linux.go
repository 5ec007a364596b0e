//go:build linux

package load

import (
	"runtime"
	"syscall"
	"time"
)

// prSetTimerSlack is prctl(2)'s PR_SET_TIMERSLACK.
const prSetTimerSlack = 29

// lockTimerThread pins the calling goroutine to its thread for precise
// naps and takes the default 50 µs timer slack off that thread. The thread
// is never unlocked, so it ends with the goroutine instead of returning to
// the runtime's pool with the changed slack.
func lockTimerThread() {
	runtime.LockOSThread()
	_, _, _ = syscall.Syscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
}

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
