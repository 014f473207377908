package logcap

import "sync"

// MaxReasons is how many distinct reasons a Once remembers. Reasons past it are not
// logged at all, so a stream of ever-new reasons cannot grow memory or flood the log.
const MaxReasons = 64

// Once lets a log line through the first time its reason is seen, and never again: for
// conditions a hostile or broken producer can repeat on every job (a lock digest outside
// its keyspace, a malformed marker), where one line per job would flood the log. The
// zero value is ready to use; it is safe for concurrent use. A reason should be a short
// fixed string chosen by the caller (what went wrong and in which field), not payload
// content: put an example of the offending value in the log line itself, through String.
type Once struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// First reports whether reason is seen for the first time. It returns false for a
// reason seen before, and for every new reason once MaxReasons have been seen.
func (o *Once) First(reason string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.seen[reason]; ok || len(o.seen) >= MaxReasons {
		return false
	}
	if o.seen == nil {
		o.seen = make(map[string]struct{})
	}
	o.seen[reason] = struct{}{}
	return true
}
