package sidekiq

import (
	"encoding/json"
	"testing"
	"time"
)

// TestProcessInfoKeepsServedOrder: the process record lists queues and weights in the
// order they are served (7.3's Busy page showed strict queues alphabetically when the
// weights came from a Go map), and carries Sidekiq 8's capsules entry.
func TestProcessInfoKeepsServedOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		queues      []string
		mode        QueueMode
		wantQueues  []string
		wantWeights string // the weights object, exactly
		wantMode    string
	}{
		{"strict", []string{"harness", "critical", "low"}, QueueModeAuto,
			[]string{"harness", "critical", "low"}, `{"harness":0,"critical":0,"low":0}`, "strict"},
		{"weighted", []string{"critical,6", "default,2", "low,1"}, QueueModeAuto,
			[]string{"critical", "default", "low"}, `{"critical":6,"default":2,"low":1}`, "weighted"},
		{"random", []string{"b,1", "a,1"}, QueueModeAuto,
			[]string{"b", "a"}, `{"b":1,"a":1}`, "random"},
		{"ranked", []string{"refresh,-5000", "critical,100", "low,1"}, QueueModeRanked,
			[]string{"critical", "low", "refresh"}, `{"critical":0,"low":0,"refresh":0}`, "strict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &Config{Queues: tt.queues, QueueMode: tt.mode, Concurrency: 7, Hostname: "h", Tag: "t"}
			c, specs, mode, err := cfg.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			order := newFetcher(fetcherParams{specs: specs, mode: mode}).order.static
			raw := processInfo(&c, "h:1:abc", time.Unix(1795352598, 500000000), specs, mode, order)
			var info struct {
				Queues   []string                   `json:"queues"`
				Weights  []json.RawMessage          `json:"weights"`
				Capsules map[string]json.RawMessage `json:"capsules"`
				Conc     int                        `json:"concurrency"`
				Identity string                     `json:"identity"`
			}
			if err := json.Unmarshal([]byte(raw), &info); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			if len(info.Queues) != len(tt.wantQueues) {
				t.Fatalf("queues %v, want %v", info.Queues, tt.wantQueues)
			}
			for i := range tt.wantQueues {
				if info.Queues[i] != tt.wantQueues[i] {
					t.Fatalf("queues %v, want %v", info.Queues, tt.wantQueues)
				}
			}
			if len(info.Weights) != 1 || string(info.Weights[0]) != tt.wantWeights {
				t.Fatalf("weights %s, want [%s]", info.Weights, tt.wantWeights)
			}
			want := `{"concurrency":7,"mode":"` + tt.wantMode + `","weights":` + tt.wantWeights + `}`
			if got := string(info.Capsules["default"]); got != want {
				t.Fatalf("capsule %s, want %s", got, want)
			}
			if info.Conc != 7 || info.Identity != "h:1:abc" {
				t.Fatalf("info %s", raw)
			}
		})
	}
}
