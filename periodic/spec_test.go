package periodic

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestParseSpecTicks: each accepted form ticks where cron (and fugit, sidekiq-cron's
// parser) says: the previous and next tick around a fixed instant.
func TestParseSpecTicks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 21, 45, 55, 500_000_000, time.UTC)
	berlin := mustZone(t, "Europe/Berlin")
	tests := []struct {
		spec       string
		def        *time.Location
		prev, next string // RFC 3339 in UTC
		cron       string // what Ferry writes for Ruby, with def as the zone
	}{
		{"*/5 * * * *", time.UTC, "2026-12-01T21:45:00Z", "2026-12-01T21:50:00Z", "*/5 * * * * UTC"},
		{"*/10 * * * * *", time.UTC, "2026-12-01T21:45:50Z", "2026-12-01T21:46:00Z", "*/10 * * * * * UTC"},
		{"0 3 * * *", berlin, "2026-12-01T02:00:00Z", "2026-12-02T02:00:00Z", "0 3 * * * Europe/Berlin"},
		{"0 3 * * * Europe/Berlin", time.UTC, "2026-12-01T02:00:00Z", "2026-12-02T02:00:00Z", "0 3 * * * Europe/Berlin"},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", time.UTC, "2026-12-01T02:00:00Z", "2026-12-02T02:00:00Z", "0 3 * * * Europe/Berlin"},
		{"TZ=UTC 0 3 * * *", berlin, "2026-12-01T03:00:00Z", "2026-12-02T03:00:00Z", "0 3 * * * UTC"},
		{"0 0 9 * * MON-FRI", time.UTC, "2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z", "0 0 9 * * MON-FRI UTC"},
		{"@hourly", time.UTC, "2026-12-01T21:00:00Z", "2026-12-01T22:00:00Z", "0 * * * * UTC"},
		{"@daily", time.UTC, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", "0 0 * * * UTC"},
		{"@daily Europe/Berlin", time.UTC, "2026-11-30T23:00:00Z", "2026-12-01T23:00:00Z", "0 0 * * * Europe/Berlin"},
		{"@every 30s", berlin, "2026-12-01T21:45:30Z", "2026-12-01T21:46:00Z", "*/30 * * * * * UTC"},
		{"@every 1s", berlin, "2026-12-01T21:45:55Z", "2026-12-01T21:45:56Z", "* * * * * * UTC"},
		{"@every 15m", berlin, "2026-12-01T21:45:00Z", "2026-12-01T22:00:00Z", "0 */15 * * * * UTC"},
		{"@every 2h", berlin, "2026-12-01T20:00:00Z", "2026-12-01T22:00:00Z", "0 0 */2 * * * UTC"},
		{"@every 7s", berlin, "2026-12-01T21:45:49Z", "2026-12-01T21:45:56Z", "@every 7s"},
		{"  10-39 5 14 * * * UTC ", berlin, "2026-12-01T14:05:39Z", "2026-12-02T14:05:10Z", "10-39 5 14 * * * UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			p, err := parseSpec(tt.spec, tt.def)
			if err != nil {
				t.Fatal(err)
			}
			if got := prevTick(p.sched, now, catchUpLimit).UTC().Format(time.RFC3339); got != tt.prev {
				t.Errorf("prev = %s, want %s", got, tt.prev)
			}
			if got := p.sched.next(now).UTC().Format(time.RFC3339); got != tt.next {
				t.Errorf("next = %s, want %s", got, tt.next)
			}
			zone := p.loc
			if zone == nil {
				zone = tt.def
			}
			if got := sidekiqCronSpec(p, zone); got != tt.cron {
				t.Errorf("written as %q, want %q", got, tt.cron)
			}
			// What Ferry writes reads back as the same schedule.
			back, err := parseSpec(sidekiqCronSpec(p, zone), time.UTC)
			if err != nil {
				t.Fatalf("written form: %v", err)
			}
			for i, ts := 0, now; i < 50; i++ {
				a, b := p.sched.next(ts), back.sched.next(ts)
				if !a.Equal(b) {
					t.Fatalf("written form ticks at %v, the spec at %v", b, a)
				}
				ts = a
			}
		})
	}
}

// TestEveryIsEpochAligned: @every ticks are the multiples of the interval since the epoch,
// whoever computes them and from whatever instant, and the written cron form has the same
// ticks over a day.
func TestEveryIsEpochAligned(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 30 * time.Second, time.Minute, 20 * time.Minute, 3 * time.Hour, 24 * time.Hour, 7 * time.Second, 90 * time.Second} {
		p, err := parseSpec("@every "+d.String(), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
		for ts := start; ts.Before(start.Add(24 * time.Hour)); {
			n := p.sched.next(ts)
			if n.Unix()%int64(d/time.Second) != 0 || !n.After(ts) || n.Sub(ts) > d {
				t.Fatalf("@every %v: next(%v) = %v", d, ts, n)
			}
			ts = n
		}
		if f, ok := everyAsCron(int64(d / time.Second)); ok {
			c, err := parseSpec(f+" UTC", time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			for ts, i := start, 0; i < 200; i++ {
				a, b := p.sched.next(ts), c.sched.next(ts)
				if !a.Equal(b) {
					t.Fatalf("@every %v vs %q: %v vs %v", d, f, a, b)
				}
				ts = a
			}
		}
	}
}

// TestParseSpecRefuses: malformed specs are errors matching ErrBadSpec, with a reason a
// reader can act on, and never a panic (robfig's parser panics on "CRON_TZ=UTC" alone).
func TestParseSpecRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ spec, reason string }{
		{"", "empty"},
		{"   ", "empty"},
		{"* * * *", "expected 5 fields"},
		{"* * * * * * * *", "expected 5 fields"},
		{"61 * * * *", "above maximum"},
		{"*/0 * * * *", "step"},
		{"CRON_TZ=UTC", "no schedule"},
		{"TZ=", "no schedule"},
		{"CRON_TZ=Mars/Olympus 0 3 * * *", "unknown time zone"},
		{"CRON_TZ=Local 0 3 * * *", "name a zone"},
		{"CRON_TZ=UTC 0 3 * * * Europe/Berlin", "two time zones"},
		{"@every", "one duration"},
		{"@every 500ms", "under one second"},
		{"@every 1500ms", "whole seconds"},
		{"@every -5s", "under one second"},
		{"@every soon", "@every"},
		{"CRON_TZ=UTC @every 5s", "no time zone"},
		{"@daily 5", "stands alone"},
		{"@fortnightly", "unrecognized descriptor"},
		{"0 3 L * *", "failed to parse"},
		{"every day at noon", "expected 5 fields"},
		{strings.Repeat("*", 300), "longer than"},
		{"0 3 * * * ../../../etc/passwd", "failed to parse"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			t.Parallel()
			_, err := parseSpec(tt.spec, time.UTC)
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("err = %v, want ErrBadSpec", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %q, want it to say %q", err, tt.reason)
			}
		})
	}
}

// FuzzParseSpec: no spec from Redis makes the parser panic, and an accepted spec has a
// schedule whose next tick is after the instant asked about.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"* * * * *", "CRON_TZ=UTC 0 3 * * *", "@every 5s", "0 3 * * * Europe/Berlin", "TZ= ", "1-2/3,4 * * * * *"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		p, err := parseSpec(spec, time.UTC)
		if err != nil {
			return
		}
		if n := p.sched.next(now); !n.IsZero() && !n.After(now) {
			t.Fatalf("%q: next(%v) = %v", spec, now, n)
		}
	})
}

// TestTicksBetweenKeepsNewest: a window with more ticks than asked for yields the newest.
func TestTicksBetweenKeepsNewest(t *testing.T) {
	t.Parallel()
	p, err := parseSpec("* * * * * *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := ticksBetween(p.sched, start, start.Add(100*time.Second), 3)
	want := []time.Time{start.Add(98 * time.Second), start.Add(99 * time.Second), start.Add(100 * time.Second)}
	if len(got) != 3 || !got[0].Equal(want[0]) || !got[1].Equal(want[1]) || !got[2].Equal(want[2]) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if all := ticksBetween(p.sched, start, start.Add(10*time.Second), 100); len(all) != 10 || !all[0].Equal(start.Add(time.Second)) {
		t.Fatalf("got %v", all)
	}
	if tm := tickMember(start.Add(5 * time.Second).In(mustZone(t, "Asia/Tokyo"))); tm != "2026-01-01T00:00:05Z" {
		t.Fatalf("tickMember = %q", tm)
	}
}

// TestLocalZoneIndependentOfTimeGiven: a spec read in time.Local ticks at local times
// whatever zone the times given to it are in (robfig alone would read it in theirs).
func TestLocalZoneIndependentOfTimeGiven(t *testing.T) {
	t.Parallel()
	p, err := parseSpec("0 3 * * *", time.Local)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a := p.sched.next(now)
	b := p.sched.next(now.In(mustZone(t, "Asia/Tokyo")))
	if !a.Equal(b) || a.In(time.Local).Hour() != 3 {
		t.Fatalf("next from UTC %v, from Tokyo %v; want both at 03:00 local", a, b)
	}
}
