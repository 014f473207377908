package sidekeys

import (
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 12, 2, 23, 30, 0, 0, time.FixedZone("x", -3*3600)) // 2026-12-03 UTC
	for _, tc := range []struct {
		ns, prefix string
	}{{"", ""}, {"myapp", "myapp:"}} {
		k := New(tc.ns)
		for _, c := range [][2]string{
			{k.Key("ferry:x"), "ferry:x"},
			{k.Queues(), "queues"},
			{k.Queue("critical"), "queue:critical"},
			{k.Paused(), "paused"},
			{k.Schedule(), "schedule"},
			{k.Retry(), "retry"},
			{k.Dead(), "dead"},
			{k.Set("retry"), "retry"},
			{k.Processes(), "processes"},
			{k.ProcessCleanup(), "process_cleanup"},
			{k.Process("host:1:abc"), "host:1:abc"},
			{k.Work("host:1:abc"), "host:1:abc:work"},
			{k.Workers("host:1:abc"), "host:1:abc:workers"},
			{k.Signals("host:1:abc"), "host:1:abc-signals"},
			{k.Stat("processed"), "stat:processed"},
			{k.StatOn("failed", day), "stat:failed:2026-12-03"},
		} {
			if got, want := c[0], tc.prefix+c[1]; got != want {
				t.Errorf("namespace %q: got %q, want %q", tc.ns, got, want)
			}
		}
	}
}
