package sidekiq

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// unit is one job this process has taken: from the fetch that moved it into the in-flight
// hash until its entry leaves the hash again.
type unit struct {
	seq   uint64 // never reused by this process
	field string // "<seq>:<queue>", the entry's field in the in-flight hash
	q     int    // index of its queue in the server's specs
	raw   string // the exact bytes, as fetched

	// Set by the executor when a worker takes the job.
	tid       string
	startedAt time.Time
	job       *Job   // parsed payload, nil until started (or when invalid)
	entry     string // the Busy page's entry for it, encoded once by the heartbeat

	abandoned atomic.Bool // shutdown gave up on its run: its outcome is not written
}

// fieldFor names a unit's entry in the in-flight hash.
func fieldFor(seq uint64, queue string) string {
	return strconv.FormatUint(seq, 10) + ":" + queue
}

// register is the in-flight register: the one owner of what this process holds. A job
// is held from dispatch until its entry has left the in-flight hash (acknowledged, its
// outcome written, or pushed back): release means exactly that. Separately, a job takes a
// slot from dispatch until its run ends (finish), which is what the fetcher counts.
//
// The reconciler compares the hash with the holdings; the heartbeat lists the running
// jobs; the fetcher reads the free slots and the bytes waiting for a worker.
type register struct {
	mu      sync.Mutex
	held    map[string]*unit // by field
	running map[string]*unit // by worker tid

	// pendingLo and pendingHi bound the seqs of a fetch whose reply has not been read yet
	// (0, 0 when none): its entries are in the hash before they are held.
	pendingLo, pendingHi uint64

	seq         atomic.Uint64
	outstanding atomic.Int64   // dispatched, run not finished
	queued      atomic.Int64   // dispatched, not started: bytes
	byteBudget  int64          // Config.PrefetchBytes: a start that brings queued below it frees room
	queueBusy   []atomic.Int64 // outstanding, by queue
	freed       chan struct{}  // signalled when a slot frees
}

func newRegister(queues int, byteBudget int64) *register {
	return &register{
		byteBudget: byteBudget,
		held:       make(map[string]*unit),
		running:    make(map[string]*unit),
		queueBusy:  make([]atomic.Int64, queues),
		freed:      make(chan struct{}, 1),
	}
}

// reserve allocates n seqs for a fetch and marks them pending; it returns the base (the
// fetch's k-th job gets base+k).
func (r *register) reserve(n int) uint64 {
	base := r.seq.Add(uint64(n)) - uint64(n)
	r.mu.Lock()
	r.pendingLo, r.pendingHi = base, base+uint64(n)
	r.mu.Unlock()
	return base
}

// settleFetch ends the pending range of a fetch whose jobs are all held (or which took
// none).
func (r *register) settleFetch() {
	r.mu.Lock()
	r.pendingLo, r.pendingHi = 0, 0
	r.mu.Unlock()
}

// hold records jobs a fetch took: held, each with a slot, their bytes queued.
func (r *register) hold(units []*unit) {
	r.mu.Lock()
	for _, u := range units {
		r.held[u.field] = u
	}
	r.mu.Unlock()
	for _, u := range units {
		r.outstanding.Add(1)
		r.queueBusy[u.q].Add(1)
		r.queued.Add(int64(len(u.raw)))
	}
}

// start records that a worker took u.
func (r *register) start(u *unit) {
	n := int64(len(u.raw))
	if left := r.queued.Add(-n); left < r.byteBudget && left+n >= r.byteBudget {
		r.signalFreed() // the fetcher was waiting for bytes to drain
	}
	r.mu.Lock()
	r.running[u.tid] = u
	r.mu.Unlock()
}

func (r *register) signalFreed() {
	select {
	case r.freed <- struct{}{}:
	default:
	}
}

// finish frees u's slot: its run ended (or it was never started and goes back).
func (r *register) finish(u *unit, started bool) {
	if started {
		r.mu.Lock()
		if r.running[u.tid] == u {
			delete(r.running, u.tid)
		}
		r.mu.Unlock()
	} else {
		r.queued.Add(-int64(len(u.raw)))
	}
	r.queueBusy[u.q].Add(-1)
	r.outstanding.Add(-1)
	r.signalFreed()
}

// release records that u's entry has left the in-flight hash.
func (r *register) release(units ...*unit) {
	r.mu.Lock()
	for _, u := range units {
		if r.held[u.field] == u {
			delete(r.held, u.field)
		}
	}
	r.mu.Unlock()
}

// unheld returns the fields of entries that nothing holds and no fetch in flight wrote:
// jobs stranded by a fetch reply that was lost. fields is what the hash holds now; it
// must have been read after every holding of its entries began, which is so because a
// holding begins before its entry could be read back (see reconciler).
func (r *register) unheld(fields []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, f := range fields {
		if _, ok := r.held[f]; ok {
			continue
		}
		if seq, ok := fieldSeq(f); ok && seq > r.pendingLo && seq <= r.pendingHi {
			continue
		}
		out = append(out, f)
	}
	return out
}

// runningSnapshot returns the running jobs by tid.
func (r *register) runningSnapshot() map[string]*unit {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*unit, len(r.running))
	for tid, u := range r.running {
		out[tid] = u
	}
	return out
}

// heldUnits returns every held job.
func (r *register) heldUnits() []*unit {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*unit, 0, len(r.held))
	for _, u := range r.held {
		out = append(out, u)
	}
	return out
}

// busy is how many jobs are running.
func (r *register) busy() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// fieldSeq reads the seq of an in-flight field.
func fieldSeq(f string) (uint64, bool) {
	for i := 0; i < len(f); i++ {
		if f[i] == ':' {
			n, err := strconv.ParseUint(f[:i], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// fieldQueue reads the queue name of an in-flight field.
func fieldQueue(f string) (string, bool) {
	for i := 0; i < len(f); i++ {
		if f[i] == ':' {
			if i == 0 {
				return "", false
			}
			for _, c := range f[:i] {
				if c < '0' || c > '9' {
					return "", false
				}
			}
			return f[i+1:], true
		}
	}
	return "", false
}
