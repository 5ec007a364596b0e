package payswitch_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kbpay/switch/switch/config"
)

// TestReloadChangesTheJournalGroupHold: journal.group_wait and group_size
// apply on a reload, under load and without a restart: a switch started
// with holding off holds no group, holds once a reload turns it on
// (payswitch_journal_group_hold_seconds counts them) and stops again once
// a reload turns it off. The rest of the journal section still needs a
// restart.
func TestReloadChangesTheJournalGroupHold(t *testing.T) {
	off := time.Duration(0)
	h := newHarness(t, "", func(c *config.Config) { c.Journal.GroupWait = &off })
	waitFor(t, 5*time.Second, "links", func() bool { return h.linksUp("card-a") && h.linksUp("card-b") })
	holds := func() int {
		t.Helper()
		v := metricLine(h.adminGet(t, "/metrics"), "payswitch_journal_group_hold_seconds_count")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("payswitch_journal_group_hold_seconds_count %q: %v", v, err)
		}
		return n
	}
	reload := func(wait time.Duration, size int) string {
		t.Helper()
		cfg := h.cfg
		cfg.Journal.GroupWait, cfg.Journal.GroupSize = &wait, size
		sum, err := h.sw.Reload(context.Background(), reparse(t, cfg))
		if err != nil {
			t.Fatalf("reload of group_wait %v: %v", wait, err)
		}
		return sum.GroupHold
	}
	load := startLoad(t, h, []string{"9410000000000005", "9420000000000003"}, 4)
	load.waitMore(t, 100)
	if n := holds(); n != 0 {
		t.Fatalf("%d groups held with group_wait 0", n)
	}

	if got := reload(10*time.Millisecond, 256); got != "group_wait 10ms, group_size 256" {
		t.Fatalf("reload turning the hold on says %q", got)
	}
	waitFor(t, 20*time.Second, "a group held after the reload", func() bool { return holds() > 0 })

	if got := reload(0, 256); got != "group_wait 0s, group_size 256" {
		t.Fatalf("reload turning the hold off says %q", got)
	}
	load.waitMore(t, 20) // a hold under way as the reload applied ends
	before := holds()
	load.waitMore(t, 100)
	if after := holds(); after != before {
		t.Fatalf("%d groups held after the reload turned holding off", after-before)
	}
	if got := reload(0, 256); got != "" {
		t.Fatalf("a reload leaving the hold alone says %q", got)
	}

	cfg := h.cfg
	cfg.Journal.Durable = new(!*cfg.Journal.Durable)
	if _, err := h.sw.Reload(context.Background(), reparse(t, cfg)); err == nil {
		t.Fatal("a reload changing journal.durable was applied")
	}
	load.finish(t)
}
