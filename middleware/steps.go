package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/logcap"
	"github.com/ferryhq/ferry/internal/rediskey"
	"github.com/ferryhq/ferry/sidekiq"
)

// DefaultStepsTTL is how long a job's step record lives after its latest step: 30 days,
// longer than Sidekiq's default retry window (25 retries span about 21 days), so a job
// retried to the end still finds its steps, and a record whose job vanished (deleted from
// the Web UI, lost with a crashed Ruby process) still goes away on its own.
const DefaultStepsTTL = 30 * 24 * time.Hour

// ErrNoSteps is returned by Step when the job's context has no step store: the server
// lacks the Steps middleware.
var ErrNoSteps = errors.New("middleware: Step needs the Steps run middleware (srv.Use(middleware.Steps(rdb, nil)))")

// StepsConfig configures Steps. The zero value (or nil) means every default.
type StepsConfig struct {
	// Namespace prefixes the record keys with "<Namespace>:", as ClientConfig.Namespace
	// does for Sidekiq's keys. Default: none.
	Namespace string
	// KeyPrefix is the record key before the jid. Default: "ferry:steps:".
	KeyPrefix string
	// TTL is how long a record lives after its latest step. Default: DefaultStepsTTL.
	TTL time.Duration
}

// StepStore is the run middleware made by Steps. It makes Step available to handlers and
// deletes a job's step record when the job is finished with: when the handler succeeds,
// skips, or fails for good (sidekiq.Discard, or "retry": false). Jobs that die after their
// last retry are seen by OnDeath; wire it into sidekiq.Config.OnDeath, or rely on the TTL.
type StepStore struct {
	sidekiq.MiddlewareDefaults
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// Steps returns the run middleware that gives handlers durable steps (see Step), keeping
// each job's step results in the Redis hash "ferry:steps:<jid>" (one field per step name,
// values in msgpack) on rdb; see Key for jids that are not plain.
//
//	steps := middleware.Steps(rdb, nil)
//	srv := sidekiq.NewServer(rdb, &sidekiq.Config{OnDeath: steps.OnDeath})
//	srv.Use(steps)
func Steps(rdb redis.UniversalClient, cfg *StepsConfig) *StepStore {
	var c StepsConfig
	if cfg != nil {
		c = *cfg
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "ferry:steps:"
	}
	if c.Namespace != "" {
		c.KeyPrefix = c.Namespace + ":" + c.KeyPrefix
	}
	if c.TTL <= 0 {
		c.TTL = DefaultStepsTTL
	}
	return &StepStore{rdb: rdb, prefix: c.KeyPrefix, ttl: c.TTL}
}

// Key returns the Redis key of the step record of the job with this jid: the prefix and
// the jid itself when it is up to 64 letters, digits, '-' and '_' (every jid Sidekiq and
// Ferry make), else the prefix, "h:" and the jid's hex SHA-256. A jid is payload content:
// this keeps the key short and inside the prefix whatever a producer put there.
func (s *StepStore) Key(jid string) string { return s.prefix + rediskey.Part(jid) }

type stepsKey struct{}

type stepsCtx struct {
	store *StepStore
	key   string
}

// InterceptRun implements sidekiq.RunMiddleware.
func (s *StepStore) InterceptRun(ctx context.Context, job *sidekiq.Job, next func(context.Context) error) error {
	if job.JID == "" {
		return next(ctx) // nothing to key a record by; Step reports ErrNoSteps
	}
	key := s.Key(job.JID)
	err := next(context.WithValue(ctx, stepsKey{}, &stepsCtx{store: s, key: key}))
	if finishedWith(job, err) {
		s.forget(ctx, key)
	}
	return err
}

// finishedWith reports whether a run ending in err is the job's last: success, a
// discard, or any failure of a job that is never retried. A RetryIn is not.
func finishedWith(job *sidekiq.Job, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, sidekiq.ErrRetryIn):
		return false
	case errors.Is(err, sidekiq.ErrDiscard):
		return true
	}
	return !job.Retry.Enabled()
}

// OnDeath deletes the step record of a job that was buried or dropped after its last
// failure. Its signature is that of sidekiq.Config.OnDeath; call it from yours if you have
// one.
func (s *StepStore) OnDeath(ctx context.Context, job *sidekiq.Job, _ error) {
	if job.JID != "" {
		s.forget(ctx, s.Key(job.JID))
	}
}

func (s *StepStore) forget(ctx context.Context, key string) {
	// The job's outcome does not depend on this delete: if it fails, the TTL cleans up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		Logger(ctx).Warn("deleting the job's step record failed; it expires on its own", logcap.String("key", key), zap.Error(err))
	}
}

// Step runs fn at most once to success per job and returns its result. The first run of a
// job runs fn and, when fn succeeds, stores the result (msgpack) in the job's step record
// in Redis before returning it. When the job runs again (a retry after a later step failed,
// a re-delivery after a crash), Step finds the stored result and returns it without
// running fn. So a handler made of steps picks up where it failed:
//
//	charge, err := middleware.Step(ctx, "charge", func(ctx context.Context) (ChargeID, error) {
//		return payments.Charge(ctx, in.OrderID, in.Amount)
//	})
//	if err != nil {
//		return err
//	}
//	_, err = middleware.Step(ctx, "invoice", func(ctx context.Context) (struct{}, error) {
//		return struct{}{}, mail.SendInvoice(ctx, in.OrderID, charge)
//	})
//	return err
//
// name identifies the step within the job; every step of a handler needs its own. R must
// round-trip through msgpack (exported struct fields, basic types, slices, maps). A failed
// fn stores nothing and its error is returned as it is.
//
// The guarantee is "once to success", not "exactly once": if the process dies after fn
// succeeded and before its result is stored, fn runs again on the next delivery, so a step
// with outside effects should still be idempotent where it can be (pass the jid to the
// payment provider as an idempotency key). Two deliveries of the same jid running at once
// are not serialised; use a worker lock for that.
//
// The record is deleted when the job succeeds or fails for good (see StepStore). Step needs
// the Steps middleware; without it, it returns ErrNoSteps and does not run fn.
func Step[R any](ctx context.Context, name string, fn func(ctx context.Context) (R, error)) (R, error) {
	var zero R
	sc, ok := ctx.Value(stepsKey{}).(*stepsCtx)
	if !ok {
		return zero, ErrNoSteps
	}
	log := Logger(ctx)
	raw, err := sc.store.rdb.HGet(ctx, sc.key, name).Bytes()
	switch {
	case err == nil:
		var r R
		if err := msgpack.Unmarshal(raw, &r); err != nil {
			return zero, fmt.Errorf("middleware: step %q: decoding the stored result: %w", name, err)
		}
		log.Debug("step already done; using its stored result", zap.String("step", name))
		return r, nil
	case !errors.Is(err, redis.Nil):
		return zero, fmt.Errorf("middleware: step %q: reading the step record: %w", name, err)
	}
	r, err := fn(ctx)
	if err != nil {
		return r, err
	}
	enc, err := msgpack.Marshal(r)
	if err != nil {
		return r, fmt.Errorf("middleware: step %q: encoding its result: %w", name, err)
	}
	// Store even when ctx was cancelled after fn succeeded: the effect happened.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err = sc.store.rdb.TxPipelined(wctx, func(p redis.Pipeliner) error {
		p.HSet(wctx, sc.key, name, enc)
		p.PExpire(wctx, sc.key, sc.store.ttl)
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("middleware: step %q succeeded but storing its result failed (a retry will run it again): %w", name, err)
	}
	log.Debug("step done", zap.String("step", name))
	return r, nil
}
