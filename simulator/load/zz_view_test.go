package load

import (
	"os"
	"testing"
	"time"
)

func TestZZView(t *testing.T) {
	dir := os.Getenv("VIEW_DIR")
	if dir == "" {
		t.Skip()
	}
	s := startSynth(t, 2*time.Millisecond)
	s.decline = func(a int64) bool { return a%9 == 0 }
	s.drop = func(a int64) bool { return a == 500 }
	timer := time.AfterFunc(2*time.Second, func() { s.stall(300 * time.Millisecond) })
	defer timer.Stop()
	rep := run(t, Config{Addr: s.addr, Rate: 300, Duration: 5 * time.Second, Terminals: 4, Timeout: 500 * time.Millisecond,
		Mix: Mix{Purchase: 90, Cancel: 8, Refund: 2}})
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	_ = rep.WriteText(os.Stdout)
}
