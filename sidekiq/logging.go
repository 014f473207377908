package sidekiq

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ferryhq/ferry/internal/logcap"
)

// Logging by the server. Lines about single jobs come from payloads anyone can push, so a
// flood of bad payloads must not become a flood of lines, and one payload must not make a
// megabyte line:
//
//   - job lines go through a sampler: per message, the first jobLogFirst lines of each
//     second, then one in jobLogThereafter; the heartbeat reports how many were dropped;
//   - every field taken from a payload (jid, class, error text) is cut by internal/logcap.

const (
	jobLogFirst      = 10
	jobLogThereafter = 100
)

// jobLogger wraps the server's logger for lines about single jobs.
type jobLogger struct {
	*zap.Logger
	dropped atomic.Int64
}

func newJobLogger(base *zap.Logger) *jobLogger {
	jl := &jobLogger{}
	jl.Logger = base.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, jobLogFirst, jobLogThereafter,
			zapcore.SamplerHook(func(_ zapcore.Entry, d zapcore.SamplingDecision) {
				if d&zapcore.LogDropped != 0 {
					jl.dropped.Add(1)
				}
			}))
	}))
	return jl
}

// takeDropped returns how many lines were dropped since the last call.
func (jl *jobLogger) takeDropped() int64 { return jl.dropped.Swap(0) }

// forJob returns the logger with the job's identifying fields, cut to a bounded size.
func (jl *jobLogger) forJob(job *Job, queue string) *zap.Logger {
	if job == nil {
		return jl.With(zap.String("queue", queue))
	}
	return jl.With(logcap.String("jid", job.JID), logcap.String("class", job.HandlerName()), zap.String("queue", queue))
}
