package tracing

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/sidekiq"
)

// The attribute keys Ruby's instrumentation writes (the messaging semantic conventions of
// its time, kept so Ruby's and Go's spans can be queried alike).
const (
	AttrSystem          = attribute.Key("messaging.system")            // "sidekiq"
	AttrJobClass        = attribute.Key("messaging.sidekiq.job_class") // wrapped class, else class
	AttrMessageID       = attribute.Key("messaging.message_id")        // jid
	AttrDestination     = attribute.Key("messaging.destination")       // queue
	AttrDestinationKind = attribute.Key("messaging.destination_kind")  // "queue"
	AttrOperation       = attribute.Key("messaging.operation")         // "process" on job spans
	AttrPeerService     = attribute.Key("peer.service")                // Config.PeerService
)

// maxAttrBytes bounds an attribute value taken from a payload.
const maxAttrBytes = 256

// jobClass is the class Ruby names a job by: "wrapped" when present, else "class".
func jobClass(job *sidekiq.Job) string {
	if job.Wrapped != "" {
		return job.Wrapped
	}
	return job.Class
}

// safe makes a payload value fit for an attribute: valid UTF-8, at most maxAttrBytes.
func safe(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return logcap.Cut(s, maxAttrBytes)
}

// attributes are the attributes both spans carry.
func (m *Middleware) attributes(job *sidekiq.Job, class string, extra int) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 6+extra)
	attrs = append(attrs,
		AttrSystem.String("sidekiq"),
		AttrJobClass.String(class),
		AttrMessageID.String(safe(job.JID)),
		AttrDestination.String(safe(job.Queue)),
		AttrDestinationKind.String("queue"),
	)
	if m.peer != "" {
		attrs = append(attrs, AttrPeerService.String(m.peer))
	}
	return attrs
}

// spanName is "<queue> <op>" or "<class> <op>".
func (m *Middleware) spanName(job *sidekiq.Job, class, op string) string {
	if m.naming == SpanNameClass {
		return class + " " + op
	}
	return safe(job.Queue) + " " + op
}

// errorType names err as the job's error_class would: an ErrorClasser's name, else the Go
// type under fmt's and Ferry's wrappers.
func errorType(err error) string {
	var ec sidekiq.ErrorClasser
	if errors.As(err, &ec) {
		return safe(ec.ErrorClass())
	}
	for {
		switch e := err.(type) {
		case *sidekiq.DiscardError:
			if e.Err != nil {
				err = e.Err
				continue
			}
		case *sidekiq.RetryInError:
			if e.Err != nil {
				err = e.Err
				continue
			}
		default:
			t := fmt.Sprintf("%T", err)
			if next := errors.Unwrap(err); next != nil && (t == "*fmt.wrapError" || t == "*fmt.wrapErrors") {
				err = next
				continue
			}
			return t
		}
		return fmt.Sprintf("%T", err)
	}
}
