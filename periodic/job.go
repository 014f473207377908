package periodic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferryhq/ferry/sidekiq"
)

// Job defines a periodic job: which Sidekiq job to enqueue and when. It is written into
// sidekiq-cron's storage, so Ruby pollers, the Web tab and Sidekiq::Cron::Job.all see it
// like a job defined in Ruby.
type Job struct {
	// Name identifies the job across processes and in the Web tab (sidekiq-cron's name).
	// Processes that Add the same name share one schedule. Required.
	Name string
	// Spec says when the job runs: 5 cron fields (minute hour day-of-month month
	// day-of-week), 6 with seconds first ("*/10 * * * * *"), a descriptor (@hourly,
	// @daily, @weekly, @monthly, @yearly), or "@every 30s". A zone may lead
	// ("CRON_TZ=Europe/Berlin 0 3 * * *") or trail, as sidekiq-cron writes it
	// ("0 3 * * * Europe/Berlin"). "@every d" ticks at the multiples of d since the
	// Unix epoch (whole seconds), so every process agrees on them. Required.
	Spec string
	// Class is the Sidekiq job class to enqueue (a Ruby class, or a Ferry handler name).
	// For an ActiveJob job, the ActiveJob class. Required.
	Class string
	// Args are the job's arguments, encoded as JSON once, at Add. Default: none.
	Args []any
	// Queue is the queue to enqueue into. Default: "default".
	Queue string
	// Retry is the job's "retry" field. Default: unset (Sidekiq's default, 25 retries).
	Retry sidekiq.RetryPolicy
	// Extra sets other payload keys ("backtrace", "tags", "dead", ...), as
	// sidekiq_options would. Keys with a meaning of their own ("class", "args", "queue",
	// "retry", "jid", "at", timestamps, ...) are refused by Add. Default: none.
	Extra map[string]any
	// Description is shown in the Web tab. Default: none.
	Description string
	// Location is the spec's time zone when the spec names none. It must be time.UTC or
	// a zone loaded by name (time.LoadLocation), since its name is written for Ruby
	// pollers to read. Default: Config.Location.
	Location *time.Location
	// CatchUp makes a tick missed while every scheduler was down (or Redis unreachable)
	// run once when a scheduler comes back, however late; several missed ticks run once
	// in all. Default: false, missed ticks older than Config.Grace are skipped (as
	// sidekiq-cron skips them).
	CatchUp bool
	// Disabled is the job's status when it is first written to Redis. After that the
	// status in Redis rules (the Web tab's Enable and Disable, Enable and Disable in
	// this package), and Add does not change it. Default: false (enabled).
	Disabled bool
	// ActiveJob enqueues Class through the ActiveJob Sidekiq adapter's envelope, as
	// sidekiq-cron's active_job option does. Default: false.
	ActiveJob bool
	// DateAsArgument appends the enqueue time (float seconds) to the arguments, as
	// sidekiq-cron's date_as_argument option does. Default: false.
	DateAsArgument bool
}

// ErrInvalidJob is matched (errors.Is) by Add's error for a Job that cannot be
// scheduled. A bad spec also matches ErrBadSpec.
var ErrInvalidJob = errors.New("periodic: invalid job")

// JobError reports a Job that Add refused, naming it. It matches ErrInvalidJob, and
// wraps the cause (a *SpecError for a bad spec).
type JobError struct {
	// Name is the job's name.
	Name string
	// Err is what is wrong.
	Err error
}

func (e *JobError) Error() string {
	return fmt.Sprintf("periodic: job %q: %s", cut(e.Name), strings.TrimPrefix(e.Err.Error(), "periodic: "))
}

// Unwrap returns the cause.
func (e *JobError) Unwrap() error { return e.Err }

// Is matches ErrInvalidJob.
func (e *JobError) Is(target error) bool { return target == ErrInvalidJob }

// ownJob is a Job accepted by Add, ready to be written to Redis.
type ownJob struct {
	job    Job
	spec   parsedSpec
	cron   string   // the "cron" field Ferry writes
	fields []string // field, value pairs of the definition hash (status aside)
}

// reservedKeys are payload keys Job.Extra may not set.
var reservedKeys = map[string]bool{
	"class": true, "args": true, "queue": true, "retry": true, "jid": true, "at": true,
	"wrapped": true, "created_at": true, "enqueued_at": true, "retry_count": true,
	"failed_at": true, "retried_at": true, "error_class": true, "error_message": true,
	"retry_queue": true,
}

// compile checks j and builds what is written to Redis.
func compile(j Job, def *time.Location) (*ownJob, error) {
	fail := func(err error) (*ownJob, error) { return nil, &JobError{Name: j.Name, Err: err} }
	switch {
	case j.Name == "":
		return fail(errors.New("Name is empty"))
	case len(j.Name) > maxNameLen:
		return fail(fmt.Errorf("Name longer than %d bytes", maxNameLen))
	case !utf8.ValidString(j.Name):
		return fail(errors.New("Name is not UTF-8"))
	case j.Class == "":
		return fail(errors.New("Class is empty"))
	case len(j.Class) > maxClassLen:
		return fail(fmt.Errorf("Class longer than %d bytes", maxClassLen))
	}
	if j.Queue == "" {
		j.Queue = "default"
	}
	if err := checkQueue(j.Queue); err != nil {
		return fail(err)
	}
	if j.Location != nil && j.Location != time.UTC {
		if l, err := loadZone(j.Location.String()); err != nil || l.String() != j.Location.String() {
			return fail(fmt.Errorf("Location %q is not a named zone that Ruby can load too", j.Location.String()))
		}
	}
	zone := j.Location
	if zone == nil {
		zone = def
	}
	spec, err := parseSpec(j.Spec, zone)
	if err != nil {
		return fail(err)
	}
	if spec.loc != nil && j.Location != nil && spec.loc.String() != j.Location.String() {
		return fail(fmt.Errorf("spec names zone %s but Location is %s", spec.loc, j.Location))
	}
	if spec.loc != nil {
		zone = spec.loc
	}
	args, err := sidekiq.EncodeArgs(j.Args)
	if err != nil {
		return fail(fmt.Errorf("Args: %w", err))
	}
	message := map[string]json.RawMessage{}
	for k, v := range j.Extra {
		if reservedKeys[k] {
			return fail(fmt.Errorf("Extra key %q has a field of its own", k))
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return fail(fmt.Errorf("Extra key %q: %w", k, err))
		}
		message[k] = raw
	}
	message["class"], _ = json.Marshal(j.Class)
	message["queue"], _ = json.Marshal(j.Queue)
	message["args"] = args
	if j.Retry.IsSet() {
		switch n, isCount := j.Retry.Count(); {
		case isCount:
			message["retry"], _ = json.Marshal(n)
		default:
			message["retry"], _ = json.Marshal(j.Retry.Enabled())
		}
	}
	msg, err := json.Marshal(message)
	if err != nil {
		return fail(err)
	}
	o := &ownJob{job: j, spec: spec, cron: sidekiqCronSpec(spec, zone)}
	o.fields = []string{
		"name", j.Name,
		"klass", j.Class,
		"cron", o.cron,
		"description", j.Description,
		"args", string(args),
		"date_as_argument", boolString(j.DateAsArgument),
		"message", string(msg),
		"active_job", boolString(j.ActiveJob),
		"queue_name_prefix", "",
		"queue_name_delimiter", "",
		"symbolize_args", "false",
	}
	return o, nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// status is the status a new job starts with.
func (o *ownJob) status() string {
	if o.job.Disabled {
		return "disabled"
	}
	return "enabled"
}
