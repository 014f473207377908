package tracing

import (
	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// maxCarrierKeys bounds the keys a carrier lists (only some propagators ask).
const maxCarrierKeys = 64

// payloadCarrier is a propagation.TextMapCarrier over a job's top-level keys, where Ruby's
// instrumentation puts the context (job["traceparent"] = "00-…"). Reading treats the
// payload as untrusted: a value that is not a JSON string, or longer than max bytes, reads
// as absent, so it is never unquoted or parsed.
type payloadCarrier struct {
	job *sidekiq.Job
	max int
}

// Get returns the string under key, or "".
func (c payloadCarrier) Get(key string) string {
	raw, ok := c.job.Extra[key]
	if !ok || len(raw) < 2 || len(raw) > c.max+2 || raw[0] != '"' {
		return ""
	}
	s, err := jsonwire.Unquote(raw)
	if err != nil || len(s) > c.max {
		return ""
	}
	return s
}

// Set writes value under key, as a JSON string.
func (c payloadCarrier) Set(key, value string) {
	_ = c.job.Set(key, value) // fails only for a Job field name, which no propagator uses
}

// Keys lists the payload's extra keys, at most maxCarrierKeys.
func (c payloadCarrier) Keys() []string {
	out := make([]string, 0, min(len(c.job.Extra), maxCarrierKeys))
	for k := range c.job.Extra {
		if len(out) == maxCarrierKeys {
			break
		}
		out = append(out, k)
	}
	return out
}
