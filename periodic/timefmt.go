package periodic

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/ferryhq/ferry/internal/logcap"
)

// enqueueTimeLayout is sidekiq-cron's LAST_ENQUEUE_TIME_FORMAT ('%Y-%m-%d %H:%M:%S %z').
const enqueueTimeLayout = "2006-01-02 15:04:05 -0700"

// formatEnqueueTime writes a last_enqueue_time (and a jid history "enqueued") as
// sidekiq-cron does, in UTC.
func formatEnqueueTime(t time.Time) string { return t.UTC().Format(enqueueTimeLayout) }

// enqueueTimeLayouts are the forms a last_enqueue_time takes in Redis: sidekiq-cron's own,
// Ruby's Time#to_s (what Job#save writes after the Web tab enables or disables a job), and
// ISO 8601.
var enqueueTimeLayouts = []string{
	enqueueTimeLayout,
	"2006-01-02 15:04:05 MST",
	time.RFC3339Nano,
}

// parseEnqueueTime reads a last_enqueue_time in any form sidekiq-cron leaves.
func parseEnqueueTime(s string) (time.Time, error) {
	for _, layout := range enqueueTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("periodic: unreadable time %q", cut(s))
}

// cut bounds a value read from Redis for an error message or a log field.
func cut(s string) string { return logcap.Cut(s, 128) }

// uuidV4 returns a random UUID, the job_id of an ActiveJob envelope.
func uuidV4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
