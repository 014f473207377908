package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/faultproxy"
	"github.com/ferryhq/ferry/internal/redisproc"
)

// Fault kinds the schedule injects.
const (
	faultKill    = "SIGKILL worker"
	faultTerm    = "SIGTERM worker"
	faultRedis   = "redis-server SIGKILL+restart"
	faultCut     = "connections cut"
	faultLatency = "latency spike"
)

var faultKinds = []string{faultKill, faultTerm, faultRedis, faultCut, faultLatency}

// faultLog counts injected faults by kind and keeps errors the schedule met.
type faultLog struct {
	mu     sync.Mutex
	counts map[string]int
	errs   []string
}

func (f *faultLog) add(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[string]int{}
	}
	f.counts[kind]++
}

func (f *faultLog) fail(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *faultLog) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[kind]
}

// faultSchedule injects faults at random intervals drawn from rng until ctx ends. The
// first round injects every kind once, in random order, so even a short run has each.
type faultSchedule struct {
	rng   *rand.Rand
	fleet []*workerProc
	redis *redisproc.Server
	proxy *faultproxy.Proxy
	log   *faultLog
	logf  func(format string, args ...any)
}

func (s *faultSchedule) run(ctx context.Context) {
	order := append([]string(nil), faultKinds...)
	s.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i := 0; ; i++ {
		wait := time.Duration(500+s.rng.IntN(1500)) * time.Millisecond
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		kind := faultKinds[s.rng.IntN(len(faultKinds))]
		if i < len(order) {
			kind = order[i]
		}
		s.inject(ctx, kind)
	}
}

func (s *faultSchedule) inject(ctx context.Context, kind string) {
	switch kind {
	case faultKill:
		w := s.fleet[s.rng.IntN(len(s.fleet))]
		if !w.kill() {
			return
		}
		s.restart(w)
	case faultTerm:
		w := s.fleet[s.rng.IntN(len(s.fleet))]
		if !w.term(30 * time.Second) {
			return
		}
		s.restart(w)
	case faultRedis:
		if err := s.redis.StartAgain(); err != nil {
			s.log.fail("redis restart: %v", err)
			return
		}
	case faultCut:
		s.proxy.CutAll()
	case faultLatency:
		d := time.Duration(5+s.rng.IntN(100)) * time.Millisecond
		s.proxy.SetLatency(d)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(300+s.rng.IntN(1500)) * time.Millisecond):
		}
		s.proxy.SetLatency(0)
	}
	s.log.add(kind)
	s.logf("fault: %s", kind)
}

func (s *faultSchedule) restart(w *workerProc) {
	if err := w.start(); err != nil {
		s.log.fail("restart %s: %v", w.name, err)
	}
}
