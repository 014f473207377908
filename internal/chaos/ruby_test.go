package chaos

// rubyJobs defines the job class the Ruby sidekiq process runs: it records each completed
// run in the ledger, as the Go handlers do. It also turns off the process's scheduled-set
// poller: Sidekiq 6.4.1 promotes a due job in two calls (a Lua ZREM that returns it, then a
// push), so a Redis killed between the two loses the job. The suite saw exactly that (a
// ChaosFail retry that ran twice, then vanished from the retry set), which is Sidekiq's
// limitation, not Ferry's; the Go workers promote atomically in one Lua call.
const rubyJobs = `
require "redis"
CHAOS_LEDGER = Redis.new(url: ENV.fetch("CHAOS_LEDGER_URL"))

class Sidekiq::Scheduled::Enq
  def enqueue_jobs(*); end
end

class ChaosRuby
  include Sidekiq::Worker
  def perform(n)
    CHAOS_LEDGER.hincrby("chaos:runs", jid, 1)
  end
end
`

// rubyProducer pushes, until the ledger holds chaos:stop, ChaosRuby jobs for the Ruby
// process and ChaosOK jobs (immediate and scheduled) for the Go workers, straight to the
// private Redis. Like the Go producer it records each jid as maybe before the push and as
// pushed after it; a push that raises (Redis restarting) stays a maybe. It prints
// "acked <n> failed <m>".
const rubyProducer = `
require "securerandom"
ledger = Redis.new(url: ENV.fetch("CHAOS_LEDGER_URL"))
every = Float(ENV.fetch("CHAOS_RUBY_EVERY"))
acked = 0
failed = 0
i = 0
until ledger.exists?("chaos:stop")
  i += 1
  jid = SecureRandom.hex(12)
  item = case i % 4
         when 0 then {"class" => "ChaosOK", "queue" => "chaos", "args" => [i]}
         when 1 then {"class" => "ChaosOK", "queue" => "chaos", "args" => [i], "at" => Time.now.to_f + 1 + rand(3)}
         else {"class" => "ChaosRuby", "queue" => "ruby", "args" => [i]}
         end
  ledger.multi do |m|
    m.sadd("chaos:maybe", jid)
    m.hset("chaos:class", jid, item["class"])
  end
  begin
    Sidekiq::Client.push(item.merge("jid" => jid))
    ledger.sadd("chaos:pushed", jid)
    acked += 1
  rescue StandardError => e
    failed += 1
  end
  sleep every
end
puts "acked #{acked} failed #{failed}"
`
