package sidekiq

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/internal/jsonwire"
)

// Version is Ferry's version, shown in the Web UI's process list.
const Version = "0.1.0"

// The heartbeat keeps the process visible to the Web UI and to other processes, every
// HeartbeatInterval, in one MULTI/EXEC:
//
//   - the statistics counted since the last beat;
//   - running jobs in <identity>:work (Sidekiq 6.4.2+) and <identity>:workers (6.4.1);
//   - the process in the processes set and its <identity> hash (info, busy, beat, quiet,
//     rss, rtt_us, concurrency), expiring after ProcessTTL;
//   - one signal popped from <identity>-signals: TSTP quiets, TERM stops, TTIN logs every
//     goroutine's stack.
type heartbeat struct {
	s    *Server
	info string // the "info" JSON, fixed for the life of the process
}

func newHeartbeat(s *Server) *heartbeat {
	weights := map[string]int{}
	for _, q := range s.specs {
		w := q.weight
		if s.mode == QueueModeStrict {
			w = 0
		}
		weights[q.name] = w
	}
	info := map[string]any{
		"hostname":    s.cfg.Hostname,
		"started_at":  json.RawMessage(jsonwire.AppendFloat(nil, epochSeconds(s.startedAt))),
		"pid":         os.Getpid(),
		"tag":         s.cfg.Tag,
		"concurrency": s.cfg.Concurrency,
		"queues":      s.queueNames(),
		"weights":     []map[string]int{weights},
		"labels":      append([]string{"ferry"}, s.cfg.Labels...),
		"identity":    s.identity,
		"version":     "ferry-" + Version,
		"embedded":    false,
	}
	raw, _ := marshalNoEscape(info)
	return &heartbeat{s: s, info: string(raw)}
}

func (h *heartbeat) loop() {
	t := time.NewTicker(h.s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-h.s.bgCtx.Done():
			// A last beat flushes the statistics of the final jobs.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := h.beat(ctx); err != nil {
				h.s.log.Warn("final heartbeat failed", zap.Error(err))
			}
			cancel()
			return
		case <-t.C:
			if err := h.beat(h.s.bgCtx); err != nil && h.s.bgCtx.Err() == nil {
				h.s.log.Warn("heartbeat failed", zap.Error(err))
			}
		}
	}
}

// workEntry is one running job as the Web UI's Busy page reads it.
type workEntry struct {
	Queue   string `json:"queue"`
	Payload string `json:"payload"`
	RunAt   int64  `json:"run_at"`
}

func (h *heartbeat) beat(ctx context.Context) error {
	s := h.s
	now := s.cfg.Clock.Now()
	start := time.Now()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	rtt := time.Since(start)

	var work []any
	busy := 0
	s.running.Range(func(k, v any) bool {
		u := v.(*unit)
		raw, _ := marshalNoEscape(workEntry{Queue: s.specs[u.q].name, Payload: u.raw, RunAt: u.startedAt.Unix()})
		work = append(work, k.(string), string(raw))
		busy++
		return true
	})
	processed, failed := s.stats.take()
	quiet := "false"
	if s.isQuiet() {
		quiet = "true"
	}
	ttl := s.cfg.ProcessTTL
	var signal *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		queueStats(ctx, p, s.keys, now, processed, failed)
		for _, key := range []string{s.keys.work(s.identity), s.keys.workers(s.identity)} {
			p.Del(ctx, key)
			if len(work) > 0 {
				p.HSet(ctx, key, work...)
				p.Expire(ctx, key, ttl)
			}
		}
		p.SAdd(ctx, s.keys.processes(), s.identity)
		p.HSet(ctx, s.keys.process(s.identity),
			"info", h.info,
			"busy", busy,
			"beat", string(jsonwire.AppendFloat(nil, epochSeconds(now))),
			"quiet", quiet,
			"rss", rssKB(),
			"rtt_us", rtt.Microseconds(),
			"concurrency", s.cfg.Concurrency,
		)
		p.Expire(ctx, s.keys.process(s.identity), ttl)
		p.HSet(ctx, s.keys.inprogressIndex(), s.inProgressFields()...)
		signal = p.RPop(ctx, s.keys.signals(s.identity))
		return nil
	})
	if err != nil && err != redis.Nil {
		s.stats.giveBack(processed, failed)
		s.observers.redisError("heartbeat", err)
		return err
	}
	s.lastBeat.Store(time.Now().UnixNano())
	if sig, err := signal.Result(); err == nil {
		h.handleSignal(sig)
	}
	return nil
}

func (h *heartbeat) handleSignal(sig string) {
	s := h.s
	switch sig {
	case "TSTP":
		s.log.Info("remote signal TSTP: quieting")
		s.Quiet()
	case "TERM", "INT":
		s.log.Info("remote signal " + sig + ": stopping")
		s.Quiet()
		s.requestStop()
	case "TTIN":
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		s.log.Info("remote signal TTIN: goroutine dump", zap.String("goroutines", string(buf[:n])))
	default:
		s.log.Info("ignoring unknown remote signal", zap.String("signal", sig))
	}
}

// clear removes the process from the Web UI on a clean stop: out of the processes set,
// running jobs deleted. The process hash expires by itself, as Sidekiq leaves it.
func (h *heartbeat) clear(ctx context.Context) error {
	s := h.s
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, s.keys.processes(), s.identity)
		p.Del(ctx, s.keys.work(s.identity), s.keys.workers(s.identity))
		p.HSet(ctx, s.keys.process(s.identity), "quiet", "true", "busy", 0)
		return nil
	})
	return err
}

// rssKB reads the resident set size from /proc (0 where there is none).
func rssKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
