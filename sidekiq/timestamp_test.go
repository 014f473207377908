package sidekiq_test

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ferryhq/ferry/sidekiq"
)

// createdAtToken returns the raw "created_at" value of a job written in format f.
func createdAtToken(t *testing.T, at time.Time, f sidekiq.TimeFormat) string {
	t.Helper()
	out := (&sidekiq.Job{Class: "X", CreatedAt: at}).AppendJSON(nil, f)
	m := regexp.MustCompile(`"created_at":([^,}]*)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no created_at in %s", out)
	}
	return string(m[1])
}

// TestTimestampWriting: float seconds always carry a fraction (Sidekiq 8 reads an integer
// as milliseconds), milliseconds are integers, and both read back to the same instant.
func TestTimestampWriting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		at             time.Time
		seconds, milli string
	}{
		{time.Unix(1795352598, 0), "1795352598.0", "1795352598000"},
		{time.Unix(1795352598, 500000000), "1795352598.5", "1795352598500"},
		{time.Unix(1795352598, 824373000), "1795352598.824373", "1795352598824"},
		{time.Unix(1795352600, 250000000), "1795352600.25", "1795352600250"},
		{time.Unix(1, 0), "1.0", "1000"},
	}
	for _, tc := range tests {
		t.Run(tc.seconds, func(t *testing.T) {
			t.Parallel()
			if got := createdAtToken(t, tc.at, sidekiq.TimeSeconds); got != tc.seconds {
				t.Errorf("seconds: %s, want %s", got, tc.seconds)
			}
			if got := createdAtToken(t, tc.at, sidekiq.TimeMillis); got != tc.milli {
				t.Errorf("millis: %s, want %s", got, tc.milli)
			}
		})
	}
}

// TestTimestampSecondsAlwaysFractionalAndRoundTrip checks many random instants: the float
// form always has a '.' or an exponent, and reading it back is within a microsecond (the
// precision of a float64 near 2026 is about 240 ns).
func TestTimestampSecondsAlwaysFractionalAndRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	fractional := regexp.MustCompile(`^[0-9]+(\.[0-9]+|(\.[0-9]+)?e[+-]?[0-9]+)$`)
	for i := 0; i < 2000; i++ {
		at := time.Unix(1_600_000_000+rng.Int64N(400_000_000), 0)
		if i%2 == 1 { // half of them whole seconds, half with a random fraction
			at = at.Add(time.Duration(rng.Int64N(1e9)))
		}
		tok := createdAtToken(t, at, sidekiq.TimeSeconds)
		if !fractional.MatchString(tok) {
			t.Fatalf("%v written as %s: no fractional part", at, tok)
		}
		back := parsedJob(t, `{"class":"X","args":[],"created_at":`+tok+`}`)
		if !sameInstant(back.CreatedAt, at) {
			t.Fatalf("%v written as %s read back as %v", at, tok, back.CreatedAt)
		}
		ms := createdAtToken(t, at, sidekiq.TimeMillis)
		if _, err := strconv.ParseInt(ms, 10, 64); err != nil {
			t.Fatalf("millis %s is not an integer", ms)
		}
		if back := parsedJob(t, `{"class":"X","args":[],"created_at":`+ms+`}`); !back.CreatedAt.Equal(at.Truncate(time.Millisecond)) {
			t.Fatalf("%v written as %s ms read back as %v", at, ms, back.CreatedAt)
		}
	}
}

func TestTimeFormatString(t *testing.T) {
	t.Parallel()
	if sidekiq.TimeSeconds.String() != "seconds" || sidekiq.TimeMillis.String() != "millis" {
		t.Fatalf("names %q %q", sidekiq.TimeSeconds, sidekiq.TimeMillis)
	}
}
