package interop

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/testsuite"
	"github.com/ferryhq/ferry/sidekiq"
)

// rubyProcessRecords prints, for every process in ProcessSet, by tag: the process record's
// queues, weights (each capsule's hash as ordered pairs) and capsules (ordered pairs of
// capsule name and its fields, weights as ordered pairs), and the queue text of its row on
// the Busy page.
const rubyProcessRecords = rubyWeb + `
want = Integer(ENV.fetch("FERRY_PROCESSES"))
deadline = Time.now + 30
sleep 0.1 until Sidekiq::ProcessSet.new.size >= want || Time.now > deadline
busy = ferry_get("/busy")["body"]
pairs = ->(h) { h&.to_a }
out = {}
Sidekiq::ProcessSet.new.each do |p|
  caps = p["capsules"]&.map { |name, c| [name, c["concurrency"], c["mode"], pairs.(c["weights"])] }
  out[p["tag"]] = {"identity" => p.identity, "queues" => p["queues"], "weights" => p["weights"]&.map(&:to_a),
                   "capsules" => caps, "busy_html" => busy}
end
puts JSON.generate(out)
`

// TestProcessRecordAsRubyWritesIt: for three queue setups (strict, weighted, all weights 1)
// a Go Server and the release's own sidekiq binary, started with the same queues and
// concurrency, leave process records that Sidekiq reads the same way: the same queues in
// the same order, the same `weights` (7.x and 8.x) with its entries in the declared order,
// the same `capsules` (8.x: name, concurrency, mode, weights in order), and the same
// "Queues:" text on the Busy page (7.3's lists a strict process's queues as the weights
// hash orders them).
func TestProcessRecordAsRubyWritesIt(t *testing.T) {
	t.Parallel()
	for _, sk := range []*testsuite.RubySidekiq{testsuite.Sidekiq7, testsuite.Sidekiq8} {
		t.Run(sk.String(), func(t *testing.T) {
			t.Parallel()
			sk.Require(t)
			testProcessRecordAsRubyWritesIt(t, sk)
		})
	}
}

func testProcessRecordAsRubyWritesIt(t *testing.T, sk *testsuite.RubySidekiq) {
	db := testsuite.RealRedis(t)
	setups := map[string][]string{
		"strict":   {"harness", "critical", "low"},
		"weighted": {"critical,6", "default,2", "low,1"},
		"random":   {"b,1", "a,1"},
	}
	for name, queues := range setups {
		args := []string{"-c", "3", "-g", "ruby-" + name}
		for _, q := range queues {
			args = append(args, "-q", q)
		}
		sk.StartSidekiq(t, db.URL, "", args...)
		srv := sidekiq.NewServer(db.Client, &sidekiq.Config{Concurrency: 3, Queues: queues, Tag: "go-" + name})
		runGoServer(t, db, srv)
	}
	out := sk.Ruby(t, db.URL, rubyProcessRecords, testsuite.WithEnv(fmt.Sprintf("FERRY_PROCESSES=%d", 2*len(setups))))
	var recs map[string]struct {
		Identity string          `json:"identity"`
		Queues   []string        `json:"queues"`
		Weights  json.RawMessage `json:"weights"`
		Capsules json.RawMessage `json:"capsules"`
		BusyHTML string          `json:"busy_html"`
	}
	mustUnmarshalPlain(t, lastLine(out), &recs)
	for name := range setups {
		rb, gr := recs["ruby-"+name], recs["go-"+name]
		if rb.Identity == "" || gr.Identity == "" {
			t.Errorf("%s: ProcessSet lacks a process (ruby %q, go %q)", name, rb.Identity, gr.Identity)
			continue
		}
		if !reflect.DeepEqual(gr.Queues, rb.Queues) {
			t.Errorf("%s: queues %v, Sidekiq %s writes %v", name, gr.Queues, sk.Version(), rb.Queues)
		}
		if string(gr.Weights) != string(rb.Weights) {
			t.Errorf("%s: weights %s, Sidekiq %s writes %s", name, gr.Weights, sk.Version(), rb.Weights)
		}
		if sk.Major() >= 8 && string(gr.Capsules) != string(rb.Capsules) {
			t.Errorf("%s: capsules %s, Sidekiq %s writes %s", name, gr.Capsules, sk.Version(), rb.Capsules)
		}
		rq, gq := busyQueues(rb.BusyHTML, rb.Identity), busyQueues(gr.BusyHTML, gr.Identity)
		if rq == "" || gq != rq {
			t.Errorf("%s: Busy page shows Go's queues as %q, Ruby's as %q", name, gq, rq)
		}
	}
}

// busyQueues is the text after "Queues:" in the Busy page's row of the process identity.
func busyQueues(body, identity string) string {
	cells := rowCells(body, `name="identity" value="`+identity+`"`)
	if len(cells) == 0 {
		return ""
	}
	_, after, ok := strings.Cut(cells[0], "Queues:")
	if !ok {
		return ""
	}
	after, _, _ = strings.Cut(after, "Version:")
	return strings.TrimSpace(after)
}
