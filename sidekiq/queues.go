package sidekiq

import (
	"math/rand/v2"
	"sort"
)

// queueOrder decides, for each fetch, which queues to look in and in what order.
type queueOrder struct {
	mode   QueueMode
	specs  []queueSpec // for ranked mode, already sorted
	total  int         // sum of weights (weighted mode)
	rng    *rand.Rand
	static []int // the fixed order of strict and ranked modes
}

func newQueueOrder(specs []queueSpec, mode QueueMode, rng *rand.Rand) *queueOrder {
	o := &queueOrder{mode: mode, specs: specs, rng: rng}
	if mode == QueueModeRanked {
		// TResque: shuffle, then a stable sort by weight, descending. Ties keep the random
		// order for the life of the process.
		idx := make([]int, len(specs))
		for i := range idx {
			idx[i] = i
		}
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		sort.SliceStable(idx, func(a, b int) bool { return specs[idx[a]].weight > specs[idx[b]].weight })
		o.static = idx
	} else {
		o.static = make([]int, len(specs))
		for i := range specs {
			o.static[i] = i
		}
	}
	for _, s := range specs {
		o.total += s.weight
	}
	return o
}

// order returns the queue indexes to try, and for weighted mode one first choice per job
// slot (picks), each drawn with probability weight/Σweights. Strict and ranked modes return
// their fixed order and no picks. The caller must not keep the slices past the next call.
func (o *queueOrder) order(slots int) (order []int, picks []int) {
	if o.mode != QueueModeWeighted {
		return o.static, nil
	}
	// A weighted shuffle (the order in which Sidekiq's shuffled, de-duplicated list would
	// name the queues) for the fallback, and an independent draw per slot.
	order = o.weightedShuffle()
	picks = make([]int, slots)
	for i := range picks {
		picks[i] = o.draw(nil)
	}
	return order, picks
}

func (o *queueOrder) draw(exclude []bool) int {
	total := 0
	for i, s := range o.specs {
		if exclude == nil || !exclude[i] {
			total += s.weight
		}
	}
	r := o.rng.IntN(total)
	for i, s := range o.specs {
		if exclude != nil && exclude[i] {
			continue
		}
		if r < s.weight {
			return i
		}
		r -= s.weight
	}
	return len(o.specs) - 1
}

func (o *queueOrder) weightedShuffle() []int {
	out := make([]int, 0, len(o.specs))
	used := make([]bool, len(o.specs))
	for len(out) < len(o.specs) {
		i := o.draw(used)
		used[i] = true
		out = append(out, i)
	}
	return out
}
