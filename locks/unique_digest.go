package locks

import (
	"errors"
	"strings"
)

// DefaultSUJLockPrefix is the gem's lock_prefix default: its digests are
// "uniquejobs:<hex>".
const DefaultSUJLockPrefix = "uniquejobs"

// ErrInvalidDigest is matched by the error of Unlock for a digest outside the
// sidekiq-unique-jobs keyspace; UniqueJobs treats a payload carrying one as unlocked.
var ErrInvalidDigest = errors.New("locks: lock digest outside the sidekiq-unique-jobs keyspace")

// validDigest reports whether d names a lock inside the gem's own keyspace, as the gem
// writes it into a payload: "<prefix>:<hex>", where prefix is one of the accepted lock
// prefixes and hex the lowercase hex of an MD5 (32 digits, the gem's legacy algorithm)
// or SHA3-256 (64 digits, its modern one), optionally followed by ":RUN" (the gem's
// while_executing stores its runtime digest back into the payload). Nothing else passes:
// a payload's digest becomes a Redis key, and every script derives four more keys from
// it, so it must not name Sidekiq's keys (queue:*, retry, schedule, ...) or the gem's own
// bookkeeping (uniquejobs:digests, uniquejobs:changelog, ...).
func validDigest(d string, prefixes []string) bool {
	d = strings.TrimSuffix(d, sujRunSuffix)
	for _, p := range prefixes {
		rest, ok := strings.CutPrefix(d, p+":")
		if ok && (len(rest) == 32 || len(rest) == 64) && isLowerHex(rest) {
			return true
		}
	}
	return false
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
