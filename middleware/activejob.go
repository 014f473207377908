package middleware

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferryhq/ferry/activejob"
	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// AJArgs are the arguments of an ActiveJob job and its envelope.
type AJArgs struct {
	// Args are the positional arguments. Ruby values map to Go as: nil → nil, true/false →
	// bool, Integer → int64 (json.Number beyond int64), Float → float64, String → string,
	// Array → []any, Hash → map[string]any (symbol and string keys alike), and the
	// serialized kinds to Symbol, GlobalID, time.Time (Time, DateTime and
	// ActiveSupport::TimeWithZone, with their offset), Date, Duration, Decimal, Module,
	// Range, or Serialized for unknown serializers.
	Args []any
	// Keywords are the keyword arguments (perform_later(42, greeting: "hi") gives
	// {"greeting": "hi"}), or nil when there are none.
	Keywords map[string]any
	// Envelope is the rest of ActiveJob's serialized job.
	Envelope AJEnvelope
}

// AJEnvelope is ActiveJob's serialized job (the job's args[0]) apart from its arguments.
type AJEnvelope struct {
	JobClass   string `json:"job_class"`
	JobID      string `json:"job_id"`
	QueueName  string `json:"queue_name"`
	Priority   *int   `json:"priority"`
	Executions int    `json:"executions"`
	Locale     string `json:"locale"`
	Timezone   string `json:"timezone"`
	EnqueuedAt string `json:"enqueued_at"`
	// Arguments is the serialized arguments array as it came; AJArgs has it decoded.
	Arguments json.RawMessage `json:"arguments"`
}

// AJFunc is a handler for an ActiveJob job class.
type AJFunc func(ctx context.Context, job *sidekiq.Job, args AJArgs) error

// ActiveJob returns a handler for jobs a Rails app enqueues with perform_later on the
// Sidekiq adapter. Register it under the ActiveJob class name (the server routes ActiveJob
// jobs by "wrapped"):
//
//	srv.Handle("WelcomeEmailJob", middleware.ActiveJob(func(ctx context.Context, job *sidekiq.Job, a middleware.AJArgs) error {
//		userID := a.Args[0].(int64)
//		greeting, _ := a.Keywords["greeting"].(string)
//		...
//	}))
//
// The arguments are decoded as DecodeActiveJob does. A job that is not an ActiveJob
// envelope, or whose arguments cannot be decoded, goes straight to the dead set
// (sidekiq.Discard with an *InputError).
func ActiveJob(fn AJFunc) sidekiq.Handler {
	return sidekiq.HandlerFunc(func(ctx context.Context, job *sidekiq.Job) error {
		a, err := DecodeActiveJob(job)
		if err != nil {
			return sidekiq.Discard(err)
		}
		return fn(ctx, job, a)
	})
}

// DecodeActiveJob decodes the envelope and arguments of an ActiveJob job. The last
// argument becomes AJArgs.Keywords when Rails marked it as keyword arguments
// ("_aj_ruby2_keywords"). Errors are *InputError.
func DecodeActiveJob(job *sidekiq.Job) (AJArgs, error) {
	class := job.HandlerName()
	obj, ierr := singleObject(job.Args)
	if ierr != nil {
		ierr.Class = class
		ierr.Reason = "not an ActiveJob envelope: " + ierr.Reason
		return AJArgs{}, ierr
	}
	var a AJArgs
	if err := json.Unmarshal(obj, &a.Envelope); err != nil {
		return AJArgs{}, decodeError(class, err)
	}
	if a.Envelope.JobClass == "" || len(a.Envelope.Arguments) == 0 {
		return AJArgs{}, &InputError{Class: class, Field: "args", Reason: "not an ActiveJob envelope: no job_class or arguments"}
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(a.Envelope.Arguments, &raws); err != nil {
		return AJArgs{}, &InputError{Class: class, Field: "arguments", Reason: "not an array", Err: err}
	}
	a.Args = make([]any, 0, len(raws))
	for i, raw := range raws {
		v, kw, err := activejob.DecodeArgument(raw)
		if err != nil {
			return AJArgs{}, &InputError{Class: class, Field: fmt.Sprintf("arguments[%d]", i), Reason: err.Error(), Err: err}
		}
		if kw && i == len(raws)-1 {
			a.Keywords = v.(map[string]any)
			continue
		}
		a.Args = append(a.Args, v)
	}
	return a, nil
}

// PushActiveJob enqueues a job that a Rails app runs with its ActiveJob class jobClass
// (perform_later's equivalent), on queue ("default" when empty). args are encoded with
// activejob.EncodeArguments; end them with activejob.Keywords for keyword arguments. The payload is what
// Rails 6.1's Sidekiq adapter writes: class ActiveJob::QueueAdapters::SidekiqAdapter::
// JobWrapper (which every Sidekiq version with the adapter loaded runs), "wrapped"
// jobClass, and args[0] the ActiveJob envelope (new job_id, executions 0, locale "en").
// opts are Client.Push options (In and At schedule the job; do not pass Queue, use queue).
// It returns the Sidekiq jid.
func PushActiveJob(ctx context.Context, client *sidekiq.Client, jobClass, queue string, args []any, opts ...sidekiq.PushOption) (string, error) {
	job, err := NewActiveJob(jobClass, queue, args)
	if err != nil {
		return "", err
	}
	return client.PushJob(ctx, job, opts...)
}

// NewActiveJob builds the job PushActiveJob pushes, for PushJob, PushBulk-like loops or an
// outbox.
func NewActiveJob(jobClass, queue string, args []any) (*sidekiq.Job, error) {
	if jobClass == "" {
		return nil, errors.New("middleware: ActiveJob class is empty")
	}
	if queue == "" {
		queue = "default"
	}
	arguments, err := activejob.EncodeArguments(args)
	if err != nil {
		return nil, err
	}
	id, err := uuidV4()
	if err != nil {
		return nil, err
	}
	buf := []byte(`[{"job_class":`)
	buf = jsonwire.AppendString(buf, jobClass)
	buf = append(buf, `,"job_id":`...)
	buf = jsonwire.AppendString(buf, id)
	buf = append(buf, `,"provider_job_id":null,"queue_name":`...)
	buf = jsonwire.AppendString(buf, queue)
	buf = append(buf, `,"priority":null,"arguments":`...)
	buf = append(buf, arguments...)
	buf = append(buf, `,"executions":0,"exception_executions":{},"locale":"en","timezone":null,"enqueued_at":`...)
	buf = jsonwire.AppendString(buf, time.Now().UTC().Format("2006-01-02T15:04:05Z07:00"))
	buf = append(buf, "}]"...)
	return &sidekiq.Job{
		Class:   sidekiq.ActiveJobWrapperClass,
		Wrapped: jobClass,
		Queue:   queue,
		Args:    buf,
	}, nil
}

// uuidV4 returns a random (version 4) UUID, as ActiveJob's job_id.
func uuidV4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
