package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// rubyValues are JSON values whose Ruby to_s (after JSON.parse) the matcher compares.
var rubyValues = []string{
	`null`, `true`, `false`, `""`, `"  "`, `"cat"`, `"é日本"`, `"a\"b\\c\n"`,
	`0`, `-0`, `7`, `-12`, `12345678901234567890123`, `7.0`, `-0.0`, `1.5`, `100.0`, `1e2`, `1E+2`,
	`0.1`, `0.0001`, `0.00001`, `1.5e-7`, `123456789.123456789`, `100000000000000.0`,
	`1e15`, `1.5e15`, `9999999999999998.0`, `1e16`, `1e22`, `5e-324`, `1.7976931348623157e308`, `1e400`,
	`[]`, `[1,"a",null,true,1.5,[2]]`, `{}`, `{"a":1,"b":"x\"y","c":[null,{}]}`,
	`["\u0001\u007f\u2028 #{x} #$y #@z é"]`, `{"\t":"\u0378"}`,
}

// TestRubyToSMatchesRuby: the matcher's Ruby string of every JSON value is what Ruby's
// JSON.parse(value).to_s prints.
func TestRubyToSMatchesRuby(t *testing.T) {
	t.Parallel()
	v := rubyBuses[0]
	requireRubyBus(t, v)
	db := realRedis(t)
	in, _ := json.Marshal(rubyValues)
	if err := db.Client.Set(context.Background(), "values", in, 0).Err(); err != nil {
		t.Fatal(err)
	}
	out := runRuby(t, v, db.URL, `
vals = JSON.parse(QueueBus.redis { |r| r.get("values") })
puts JSON.generate(vals.map { |s| JSON.parse("[" + s + "]")[0].to_s })
`)
	var want []string
	if err := json.Unmarshal([]byte(out), &want); err != nil {
		t.Fatalf("ruby printed %q: %v", out, err)
	}
	for i, raw := range rubyValues {
		if got := bus.RubyToSForTest([]byte(raw)); got != want[i] {
			t.Errorf("to_s of %s: Go %q, Ruby %q", raw, got, want[i])
		}
	}
}

// matchRubyApp subscribes with every kind of filter queue-bus has: special values
// (symbols), Regexp objects, patterns in strings and plain values of several types.
const matchRubyApp = `
QueueBus.dispatch("rubymatch") do
  {
    "blank" => :blank, "present" => :present, "key" => :key, "nil" => :nil, "empty" => :empty,
    "value" => :value, "regexp" => /^[cb]a+t/, "regexp_i" => /CAT/i, "regexp_m" => /a.c/m,
    "pattern" => "c.t", "alternation" => "cat|dog", "int" => 7, "float" => 1.5, "bool" => true,
    "array" => '[1, "a", nil, true, 1.5, [2]]', "hash" => '{"a"=>1}', "bigint" => 12345678901234567890,
    "exp" => "1.0e+16", "hex" => /\A\h+\Z/, "named" => /(?<w>ca)t/, "upto" => /^x{,2}y$/, "comment" => /c(?#note)at/,
    "posix" => /^[[:digit:]]+$/, "space" => /^\s$/,
  }.each do |key, val|
    subscribe key, "bus_event_type" => "probe", "v" => val do |attrs| end
  end
  subscribe "type_pattern", "bus_event_type" => "probe_.*" do |attrs| end
  subscribe "two_filters", "bus_event_type" => "probe", "v" => "cat", "w" => :present do |attrs| end
end
`

// goMatchApp has the same filters written with the Go API.
func goMatchApp(app *bus.App, h bus.Handler) {
	for key, val := range map[string]string{
		"blank": bus.Blank, "present": bus.Present, "key": bus.Key, "nil": bus.Nil, "empty": bus.Empty,
		"value": bus.Value, "regexp": bus.Regexp("^[cb]a+t"), "regexp_i": "(?i-mx:CAT)", "pattern": "c.t",
		"alternation": "cat|dog", "int": "7", "float": "1.5", "bool": "true", "hex": bus.Regexp(`\A\h+\Z`),
		"upto": bus.Regexp("^x{,2}y$"), "space": bus.Regexp(`^\s$`),
	} {
		app.SubscribeMatch(key, bus.Match{"bus_event_type": "probe", "v": val}, h)
	}
	app.SubscribeMatch("type_pattern", bus.Match{"bus_event_type": "probe_.*"}, h)
	app.SubscribeMatch("two_filters", bus.Match{"bus_event_type": "probe", "v": "cat", "w": bus.Present}, h)
}

// probeValues are the "v" attributes of the probe events; "-" leaves v out.
var probeValues = []string{
	"-", `null`, `""`, `"  "`, `"\t\n"`, `"cat"`, `"bat"`, `"caat"`, `"bcat"`, `"Cat"`, `"CAT"`, `"a cat"`,
	`"xcatx"`, `"a\ncat"`, `"cat\n"`, `"c t"`, `"dog"`, `"cat|dog"`, `"abc"`, `"a\nc"`, `"ff"`, `"ff\n"`, `"fg"`, `""`,
	`"x"`, `"xxx"`, `"y"`, `"xxy"`, `"xxxy"`, `"123"`, `"\u000b"`, `" "`, `"l"`, `"2"`,
	`7`, `7.0`, `"7"`, `1.5`, `1.50`, `true`, `"true"`, `false`, `[1,"a",null,true,1.5,[2]]`, `{"a":1}`,
	`12345678901234567890`, `1e16`, `10000000000000000.0`,
}

// TestMatchersAgreeWithRuby drives the same events past the same subscriptions with Go's
// driver and with Ruby's (QueueBus::Worker.perform, queue-bus 0.13.3), and compares which
// subscriber jobs each enqueued. The subscriptions come from a Ruby app (symbols, Regexp
// objects) and a Go app (Match constants and patterns).
func TestMatchersAgreeWithRuby(t *testing.T) {
	t.Parallel()
	for _, v := range rubyBuses {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			requireRubyBus(t, v)
			db := realRedis(t)
			ctx := context.Background()
			registerRuby(t, v, db.URL, matchRubyApp)
			gomatch := bus.NewApp(db.Client, "gomatch", nil)
			goMatchApp(gomatch, newRecorder().handler())
			if err := gomatch.Register(ctx); err != nil {
				t.Fatal(err)
			}

			client := sidekiq.NewClient(db.Client, nil)
			for i, pv := range probeValues {
				attrs := map[string]any{"i": i}
				if pv != "-" {
					attrs["v"] = json.RawMessage(pv)
				}
				if i%3 == 0 {
					attrs["w"] = "here"
				}
				typ := "probe"
				if i%7 == 0 {
					typ = "probe_x"
				}
				if _, err := bus.Publish(ctx, client, typ, attrs); err != nil {
					t.Fatal(err)
				}
			}
			events, err := db.Client.LRange(ctx, "queue:"+bus.IncomingQueue, 0, -1).Result()
			if err != nil || len(events) != len(probeValues) {
				t.Fatalf("%d events published (%v)", len(events), err)
			}

			// Go drives: a server with no apps, only bus_incoming.
			srv := sidekiq.NewServer(db.Client, serverConfig(bus.IncomingQueue))
			b, err := bus.Attach(srv)
			if err != nil {
				t.Fatal(err)
			}
			stop := startServer(t, srv)
			testutil.Eventually(t, 30*time.Second, "the Go driver to drive every probe", func() bool {
				return b.Stats().Driven == int64(len(probeValues)) && db.Client.LLen(ctx, "queue:"+bus.IncomingQueue).Val() == 0
			})
			stop()
			goSet := takeRiders(t, db.Client)

			// Ruby drives the same jobs.
			if err := db.Client.RPush(ctx, "queue:"+bus.IncomingQueue, toAny(events)...).Err(); err != nil {
				t.Fatal(err)
			}
			runRuby(t, v, db.URL, `
while (raw = QueueBus.redis { |r| r.lpop("queue:bus_incoming") })
  QueueBus::Worker.perform(JSON.parse(raw)["args"][0])
end
`)
			rubySet := takeRiders(t, db.Client)

			if len(rubySet) < 40 {
				t.Fatalf("Ruby enqueued only %d subscriber jobs; the probes are not probing", len(rubySet))
			}
			for k := range rubySet {
				if !goSet[k] {
					t.Errorf("Ruby enqueued %s, Go did not", k)
				}
			}
			for k := range goSet {
				if !rubySet[k] {
					t.Errorf("Go enqueued %s, Ruby did not", k)
				}
			}
			t.Logf("%d probes, %d subscriber jobs, the same from both drivers", len(probeValues), len(goSet))
		})
	}
}

// takeRiders removes the subscriber jobs from the match apps' queues and returns them as
// "<app>/<sub> <- probe <i> on <queue>".
func takeRiders(t *testing.T, rdb *redis.Client) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, q := range []string{"rubymatch_default", "gomatch_default"} {
		for _, job := range queueJobs(t, rdb, q) {
			ev := eventOf(t, job)
			k := fmt.Sprintf("%s/%s <- probe %s on %s", ev["bus_rider_app_key"], ev["bus_rider_sub_key"], ev["i"], job.Queue)
			if out[k] {
				t.Errorf("%s enqueued twice", k)
			}
			out[k] = true
		}
		if err := rdb.Del(context.Background(), "queue:"+q).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
