package sidekiq

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// The acker removes finished jobs from the in-progress lists. Workers hand it their jobs
// and move on; it sends whatever has accumulated in one pipeline, so under load one round
// trip acknowledges many jobs, and when idle a job is acknowledged at once. Until its ack
// is written a finished job is still in the in-progress list: a crash then runs it again
// (at least once), never loses it.
type acker struct {
	s  *Server
	ch chan *unit
}

func newAcker(s *Server) *acker {
	return &acker{s: s, ch: make(chan *unit, 4*s.cfg.Concurrency+16)}
}

func (a *acker) ack(u *unit) { a.ch <- u }

func (a *acker) loop() {
	batch := make([]*unit, 0, 256)
	bo := newBackoff(20*time.Millisecond, 2*time.Second)
	for {
		select {
		case u := <-a.ch:
			batch = append(batch, u)
		case <-a.s.bgCtx.Done():
			// Shutdown: workers are done, so the channel holds every remaining ack.
			for {
				select {
				case u := <-a.ch:
					batch = append(batch, u)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := a.write(ctx, batch); err != nil {
					a.s.log.Warn("final acks failed; those jobs will be pushed back and run again", zap.Error(err), zap.Int("jobs", len(batch)))
				}
				cancel()
			}
			return
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case u := <-a.ch:
				batch = append(batch, u)
			default:
				break drain
			}
		}
		for {
			err := a.write(a.s.bgCtx, batch)
			if err == nil {
				bo.reset()
				batch = batch[:0]
				break
			}
			if a.s.bgCtx.Err() != nil {
				break // the shutdown branch retries with a fresh context
			}
			a.s.observers.redisError("ack", err)
			d := bo.next()
			a.s.log.Warn("ack failed; retrying", zap.Error(err), zap.Duration("in", d))
			select {
			case <-time.After(d):
			case <-a.s.bgCtx.Done():
			}
		}
	}
}

func (a *acker) write(ctx context.Context, batch []*unit) error {
	args := make([]any, 0, 2*len(batch))
	for _, u := range batch {
		args = append(args, u.q+1, u.raw)
	}
	if err := ackScript.Run(ctx, a.s.rdb, a.s.pkeys, args...).Err(); err != nil {
		return err
	}
	for _, u := range batch {
		a.s.reconcile.release(u)
	}
	return nil
}
