package sidekiq

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// specsOf summarises parsed queues as "name=weight" (with "!" when the weight was given
// explicitly and "/limit" when capped), for compact comparisons.
func specsOf(specs []queueSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		v := s.name + "=" + strconv.Itoa(s.weight)
		if s.hasWeight {
			v += "!"
		}
		if s.limit > 0 {
			v += "/" + strconv.Itoa(s.limit)
		}
		out[i] = v
	}
	return out
}

// TestParseQueues covers Sidekiq's -q notation ("name" or "name,weight"), how the mode is
// settled (no weight = strict, any weight = weighted, as Sidekiq), duplicates (the higher
// weight wins, first position kept), weighted mode's refusal of weights ≤ 0, ranked mode's
// acceptance of negative ranks with 100 for unweighted queues, and QueueLimits checks.
func TestParseQueues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		entries  []string
		mode     QueueMode
		limits   map[string]int
		want     []string
		wantMode QueueMode
		wantErr  string // substring; "" means no error
	}{
		{name: "no weights is strict", entries: []string{"critical", "default", "low"},
			want: []string{"critical=0", "default=0", "low=0"}, wantMode: QueueModeStrict},
		{name: "any weight is weighted, others weigh 1", entries: []string{"critical,6", "default,2", "low"},
			want: []string{"critical=6!", "default=2!", "low=1"}, wantMode: QueueModeWeighted},
		{name: "all weights 1 is weighted (Sidekiq's random)", entries: []string{"a,1", "b,1"},
			want: []string{"a=1!", "b=1!"}, wantMode: QueueModeWeighted},
		{name: "spaces around name and weight", entries: []string{" mail , 3 ", "\tbulk"},
			want: []string{"mail=3!", "bulk=1"}, wantMode: QueueModeWeighted},
		{name: "duplicate keeps the higher weight and first position", entries: []string{"a,2", "b,1", "a,5", "a,3"},
			want: []string{"a=5!", "b=1!"}, wantMode: QueueModeWeighted},
		{name: "duplicate unweighted then weighted takes the weight", entries: []string{"a", "b,2", "a,4"},
			want: []string{"a=4!", "b=2!"}, wantMode: QueueModeWeighted},
		{name: "duplicate without weights collapses", entries: []string{"a", "b", "a"},
			want: []string{"a=0", "b=0"}, wantMode: QueueModeStrict},
		{name: "weight 0 rejected in weighted mode", entries: []string{"a,3", "b,0"},
			wantErr: `queue "b" has weight 0; weighted mode needs weights > 0 (use QueueModeRanked`},
		{name: "negative weight rejected in weighted mode", entries: []string{"a,3", "refresh,-5000"},
			wantErr: `queue "refresh" has weight -5000; weighted mode needs weights > 0`},
		{name: "forced weighted rejects negative too", entries: []string{"a,-1"}, mode: QueueModeWeighted,
			wantErr: "weighted mode needs weights > 0"},
		{name: "forced weighted without weights weighs 1 each", entries: []string{"a", "b"}, mode: QueueModeWeighted,
			want: []string{"a=1", "b=1"}, wantMode: QueueModeWeighted},
		{name: "forced strict keeps declared order despite weights", entries: []string{"low,1", "high,9"}, mode: QueueModeStrict,
			want: []string{"low=1!", "high=9!"}, wantMode: QueueModeStrict},
		{name: "ranked allows negative, unweighted is 100", entries: []string{"refresh,-5000", "bus_incoming,1", "default"}, mode: QueueModeRanked,
			want: []string{"refresh=-5000!", "bus_incoming=1!", "default=100"}, wantMode: QueueModeRanked},
		{name: "ranked duplicate keeps higher rank", entries: []string{"x,-5000", "x,1"}, mode: QueueModeRanked,
			want: []string{"x=1!"}, wantMode: QueueModeRanked},
		{name: "weight not an integer", entries: []string{"critical,high"},
			wantErr: `queue "critical,high": weight is not an integer`},
		{name: "empty weight", entries: []string{"critical,"},
			wantErr: "weight is not an integer"},
		{name: "empty name", entries: []string{" ,3"},
			wantErr: "empty name"},
		{name: "no queues", entries: nil,
			wantErr: "no queues"},
		{name: "limits are attached", entries: []string{"fast", "slow"}, limits: map[string]int{"slow": 2},
			want: []string{"fast=0", "slow=0/2"}, wantMode: QueueModeStrict},
		{name: "limit must be positive", entries: []string{"slow"}, limits: map[string]int{"slow": 0},
			wantErr: `QueueLimits["slow"] = 0; a limit must be positive`},
		{name: "limit for an unknown queue", entries: []string{"slow"}, limits: map[string]int{"sloww": 1},
			wantErr: `QueueLimits names "sloww", which is not in Queues`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			specs, mode, err := parseQueues(tc.entries, tc.mode, tc.limits)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("parseQueues(%q) = %v, %v; want an error containing %q", tc.entries, specsOf(specs), mode, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseQueues(%q): %v", tc.entries, err)
			}
			if got := specsOf(specs); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("specs = %v, want %v", got, tc.want)
			}
			if mode != tc.wantMode {
				t.Errorf("mode = %v, want %v", mode, tc.wantMode)
			}
		})
	}
}

func specNames(specs []queueSpec, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = specs[j].name
	}
	return out
}

func mustParse(t *testing.T, entries []string, mode QueueMode) ([]queueSpec, QueueMode) {
	t.Helper()
	specs, m, err := parseQueues(entries, mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	return specs, m
}

// TestQueueOrderStrict: strict mode always names the queues in declared order, and never
// draws per-slot picks.
func TestQueueOrderStrict(t *testing.T) {
	t.Parallel()
	specs, mode := mustParse(t, []string{"critical", "default", "low"}, QueueModeAuto)
	o := newQueueOrder(specs, mode, rand.New(rand.NewPCG(1, 2)))
	for i := 0; i < 100; i++ {
		order, picks := o.order(10)
		if got := strings.Join(specNames(specs, order), ","); got != "critical,default,low" {
			t.Fatalf("strict order = %s", got)
		}
		if picks != nil {
			t.Fatalf("strict mode drew picks %v", picks)
		}
	}
}

// TestQueueOrderRanked: ranked mode sorts by weight, highest first (TResque: 100 before 1
// before -5000; an unweighted queue counts 100), whatever the declared order; queues of
// equal weight come in a random order that differs between processes (seeds) but stays
// the same for the life of one.
func TestQueueOrderRanked(t *testing.T) {
	t.Parallel()
	entries := []string{"refresh,-5000", "bus_incoming,1", "account_default,100", "default", "mail,100", "reports,50"}
	specs, mode := mustParse(t, entries, QueueModeRanked)
	tieOrders := map[string]int{}
	for seed := uint64(0); seed < 200; seed++ {
		o := newQueueOrder(specs, mode, rand.New(rand.NewPCG(seed, seed*7+1)))
		first, picks := o.order(5)
		if picks != nil {
			t.Fatalf("ranked mode drew picks %v", picks)
		}
		got := specNames(specs, first)
		// Weights must be non-increasing along the order.
		for i := 1; i < len(first); i++ {
			if specs[first[i-1]].weight < specs[first[i]].weight {
				t.Fatalf("seed %d: ranked order %v is not by weight descending", seed, got)
			}
		}
		if tail := strings.Join(got[3:], ","); tail != "reports,bus_incoming,refresh" {
			t.Fatalf("seed %d: order after the 100s = %s, want reports,bus_incoming,refresh", seed, tail)
		}
		ties := strings.Join(got[:3], ",")
		tieOrders[ties]++
		// Fixed for the life of the process: every later call returns the same order.
		for i := 0; i < 20; i++ {
			again, _ := o.order(5)
			if g := strings.Join(specNames(specs, again), ","); g != strings.Join(got, ",") {
				t.Fatalf("seed %d: ranked order changed from %v to %s", seed, got, g)
			}
		}
	}
	// Three queues of weight 100 have 6 possible orders; 200 seeds must show all of them
	// (each has probability 1/6; missing one has probability < 1e-14).
	if len(tieOrders) != 6 {
		t.Errorf("ties were not shuffled across processes: saw %d of 6 orders: %v", len(tieOrders), tieOrders)
	}
}

// TestQueueOrderWeighted: in weighted mode each slot's pick is queue q with probability
// w_q/Σw, and so is the first queue of the fallback order (Sidekiq's shuffled, de-duplicated
// list); the fallback order always names every queue once.
func TestQueueOrderWeighted(t *testing.T) {
	t.Parallel()
	specs, mode := mustParse(t, []string{"critical,6", "default,3", "low,1"}, QueueModeAuto)
	o := newQueueOrder(specs, mode, rand.New(rand.NewPCG(42, 43)))
	const rounds, slots = 20000, 5
	pickCount := make([]int, len(specs))
	firstCount := make([]int, len(specs))
	for r := 0; r < rounds; r++ {
		order, picks := o.order(slots)
		if len(picks) != slots {
			t.Fatalf("got %d picks for %d slots", len(picks), slots)
		}
		seen := make([]bool, len(specs))
		for _, i := range order {
			if seen[i] {
				t.Fatalf("order %v names a queue twice", order)
			}
			seen[i] = true
		}
		if len(order) != len(specs) {
			t.Fatalf("order %v does not name every queue", order)
		}
		firstCount[order[0]]++
		for _, p := range picks {
			pickCount[p]++
		}
	}
	want := []float64{0.6, 0.3, 0.1}
	for i, s := range specs {
		pick := float64(pickCount[i]) / (rounds * slots)
		first := float64(firstCount[i]) / rounds
		// Standard deviations are below 0.004; 0.02 is five of them at least.
		if math.Abs(pick-want[i]) > 0.02 {
			t.Errorf("queue %s: pick share %.3f, want %.2f", s.name, pick, want[i])
		}
		if math.Abs(first-want[i]) > 0.02 {
			t.Errorf("queue %s: first-in-order share %.3f, want %.2f", s.name, first, want[i])
		}
	}
}
