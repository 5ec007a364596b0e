//go:build !linux

package load

import (
	"runtime"
	"time"
)

func lockTimerThread() { runtime.LockOSThread() }

func nap(d time.Duration) { time.Sleep(d) }
