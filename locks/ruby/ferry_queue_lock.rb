# frozen_string_literal: true

# FerryQueueLock: a Sidekiq client middleware that takes Ferry's unique queue lock when Ruby
# pushes a job, so Rails and Go producers collapse identical jobs into one. See README.md
# next to this file for installation and behaviour; the key rule is documented in the Go
# package github.com/ferryhq/ferry/locks.
#
# Needs only sidekiq (6.x to 8.x) and Ruby's standard digest and json libraries.

require "digest"
require "json"
require "sidekiq"
require "sidekiq/client"

class FerryQueueLock
  # Payload key recording the lock key taken (without Redis namespace); the Go server
  # releases that key when the job starts. Same as locks.PayloadKey in Go.
  PAYLOAD_KEY = "ferry_queue_lock"
  # Prefix of every queue lock key. Same as locks.QueueKeyPrefix in Go.
  KEY_PREFIX = "ferry:lock:queue:"
  # Inputs left out of the key when no input names are configured.
  EXCLUDED_BY_DEFAULT = %w[locale tz].freeze
  # Default lock TTL in seconds, beyond any schedule delay. Same as locks.DefaultTTL.
  DEFAULT_TTL = 3600
  # Transient payload field carrying a Guard from the middleware to the push; it is
  # removed before the payload is written.
  GUARD_FIELD = "ferry_queue_lock_guard"
  # What the middleware puts under GUARD_FIELD: the lock TTL in ms and the script flags. A
  # Ruby object, which no JSON payload can hold: a payload read back from Redis (Sidekiq's
  # scheduler pushes due retries and scheduled jobs through Sidekiq::Client) that carries
  # the field anyway is never taken for a marked one, so it cannot make the push run the
  # script on a key of its choosing.
  Guard = Struct.new(:ttl_ms, :flags)
  # A lock key as the middleware makes it: KEY_PREFIX and a lowercase hex SHA-256.
  KEY_FORMAT = /\Aferry:lock:queue:[0-9a-f]{64}\z/
  CONFLICTS = %i[drop raise replace].freeze

  # Raised for a job whose args[0] is not a Hash (named inputs), or an ActiveJob payload.
  class Error < ArgumentError; end

  # Raised by a push when the lock is held and on_conflict is :raise.
  class LockedError < StandardError
    attr_reader :key, :holder

    def initialize(key, holder)
      @key = key
      @holder = holder
      super("ferry queue lock #{key} held by job #{holder}")
    end
  end

  # The guarded-push script, byte-identical to guardedPushLua in Ferry's sidekiq/scripts.go (a Go test
  # checks this). KEYS: list or schedule, queues, lock key. ARGV: payload, queue, score
  # ("" = now), jid, TTL in ms, flags ("r" reentrant, "x" replace).
  SCRIPT = <<'LUA'
local n = #KEYS - 2
for i = 1, n do
  local flags = ARGV[4 + 2 * i]
  if not string.find(flags, "x", 1, true) then
    local cur = redis.call("GET", KEYS[2 + i])
    if cur and not (cur == ARGV[4] and string.find(flags, "r", 1, true)) then
      return {0, i, cur}
    end
  end
end
if ARGV[3] == "" then
  redis.call("SADD", KEYS[2], ARGV[2])
  redis.call("LPUSH", KEYS[1], ARGV[1])
else
  redis.call("ZADD", KEYS[1], ARGV[3], ARGV[1])
end
for i = 1, n do
  redis.call("SET", KEYS[2 + i], ARGV[4], "PX", ARGV[3 + 2 * i])
end
return {1}
LUA
  SCRIPT_SHA = Digest::SHA1.hexdigest(SCRIPT)

  class << self
    # The queue lock key of a job of class namespace with named inputs (a Hash whose values
    # are Ruby objects as they will be serialised), choosing the names given (all but
    # locale and tz when none are).
    def key(namespace, inputs, names = nil)
      tokens = {}
      inputs.each { |k, v| tokens[k.to_s] = JSON.generate(v) }
      chosen = if names.nil? || names.empty?
        tokens.keys - EXCLUDED_BY_DEFAULT
      else
        names.map(&:to_s)
      end
      s = +"#{namespace}\0"
      chosen.uniq.sort.each { |n| s << n << "\0" << tokens.fetch(n, "") << "\0" }
      KEY_PREFIX + Digest::SHA256.hexdigest(s.force_encoding(Encoding::UTF_8))
    end

    # The named inputs of a job hash: its args[0], which must be a Hash ({} for no args).
    def inputs(job)
      args = job["args"] || []
      return {} if args.empty?
      first = args[0]
      raise Error, "ferry queue lock: job #{job["jid"]}: args[0] is not a Hash" unless first.is_a?(Hash)
      first
    end

    # True under Sidekiq::Testing (fake or inline), where jobs never reach Redis: the
    # middleware then leaves them alone.
    def testing?
      defined?(::Sidekiq::Testing) && ::Sidekiq::Testing.respond_to?(:enabled?) && ::Sidekiq::Testing.enabled?
    end

    # Runs the guarded-push script for one payload that the middleware marked. client is
    # the Sidekiq::Client doing the push, conn a connection from its pool.
    def push_guarded(client, conn, payload)
      guard = payload.delete(GUARD_FIELD)
      ttl_ms, flags = guard.ttl_ms, guard.flags
      key = payload[PAYLOAD_KEY]
      raise Error, "ferry queue lock: job #{payload["jid"]}: not a queue lock key" unless KEY_FORMAT.match?(key.to_s)
      rec = Recorder.new
      client.send(:atomic_push, rec, [payload])
      keys = [rec.list, rec.queues || "queues", key]
      argv = [rec.member, rec.queue.to_s, rec.score.to_s, payload["jid"], ttl_ms.to_s, flags.delete("e")]
      reply = eval_script(conn, keys, argv)
      return if reply[0].to_i == 1
      holder = reply[2].to_s
      raise LockedError.new(key, holder) if flags.include?("e")
      payload["jid"] = holder
    end

    private

    def eval_script(conn, keys, argv)
      if redis_rb?(conn)
        begin
          conn.evalsha(SCRIPT_SHA, keys: keys, argv: argv)
        rescue => e
          raise unless e.message.start_with?("NOSCRIPT")
          conn.eval(SCRIPT, keys: keys, argv: argv)
        end
      else
        begin
          conn.call("EVALSHA", SCRIPT_SHA, keys.size, *keys, *argv)
        rescue => e
          raise unless e.message.start_with?("NOSCRIPT")
          conn.call("EVAL", SCRIPT, keys.size, *keys, *argv)
        end
      end
    end

    # Sidekiq 6 hands out redis-rb connections (maybe wrapped by redis-namespace, which
    # namespaces EVALSHA's keys); Sidekiq 7 and later hand out redis-client adapters.
    def redis_rb?(conn)
      return true if defined?(::Redis) && conn.is_a?(::Redis)
      defined?(::Redis::Namespace) && conn.is_a?(::Redis::Namespace)
    end
  end

  # Records the commands Sidekiq's own atomic_push would send for one payload, so the
  # guarded push writes exactly the bytes (enqueued_at format and all) this Sidekiq
  # version writes.
  class Recorder
    attr_reader :list, :queues, :queue, :member, :score

    def zadd(key, members)
      pair = members.flatten
      @list = key
      @score = pair[0]
      @member = pair[1]
    end

    def sadd(key, queues)
      @queues = key
      @queue = Array(queues).first
    end

    def lpush(key, members)
      @list = key
      @member = Array(members).first
    end
  end

  # Hooks Sidekiq::Client#raw_push: payloads marked by the middleware are pushed with the
  # guarded-push script (lock and push in one Redis call); the rest go to Sidekiq as usual.
  # After a collapsed push the payload's jid is the holder's, so perform_async returns it.
  module ClientHook
    private

    def raw_push(payloads)
      guarded, plain = payloads.partition { |p| p.is_a?(Hash) && p[FerryQueueLock::GUARD_FIELD].is_a?(FerryQueueLock::Guard) }
      return super if guarded.empty?
      super(plain) unless plain.empty?
      @redis_pool.with do |conn|
        guarded.each { |p| FerryQueueLock.push_guarded(self, conn, p) }
      end
      true
    end
  end

  unless Sidekiq::Client.private_method_defined?(:raw_push) &&
      Sidekiq::Client.private_method_defined?(:atomic_push)
    raise LoadError, "FerryQueueLock: Sidekiq #{Sidekiq::VERSION} has no Client#raw_push/#atomic_push"
  end
  Sidekiq::Client.prepend(ClientHook) unless Sidekiq::Client.ancestors.include?(ClientHook)

  # options:
  #   classes:     the job classes to lock: an Array of names, or a Hash of name => per-class
  #                options (any of the options below, plus inputs: and namespace:)
  #   inputs:      names of the args[0] keys that make up the key (default: all but
  #                locale and tz)
  #   namespace:   hashed into the key (default: the job's class)
  #   ttl:         seconds the lock is kept beyond any schedule delay (default 3600)
  #   on_conflict: :drop (default; the push returns the waiting job's jid), :raise
  #                (FerryQueueLock::LockedError) or :replace (take the lock over and push)
  def initialize(options = {})
    opts = symbolize(options)
    defaults = opts.reject { |k, _| k == :classes }
    classes = opts.fetch(:classes) { raise ArgumentError, "FerryQueueLock: classes: is required" }
    classes = classes.map { |c| [c, {}] }.to_h if classes.is_a?(Array)
    @classes = classes.map { |name, o| [name.to_s, settings(defaults.merge(symbolize(o || {})))] }.to_h
  end

  # Sidekiq client middleware entry point. Marks the payload of a configured class with
  # its lock key; the push itself (ClientHook) takes the lock atomically with the write.
  def call(_worker_class, job, _queue, _redis_pool = nil)
    cfg = @classes[job["class"].to_s]
    # A payload already carrying a lock key is a job being pushed again (the scheduler
    # promoting it, a retry): it passes, as Go's scheduler moves it without a guard.
    return yield if cfg.nil? || job.key?(PAYLOAD_KEY) || self.class.testing?
    if job.key?("wrapped")
      raise Error, "ferry queue lock: job #{job["jid"]}: ActiveJob payloads cannot take a queue lock"
    end
    job[PAYLOAD_KEY] = self.class.key(cfg[:namespace] || job["class"].to_s, self.class.inputs(job), cfg[:inputs])
    delay = job["at"] ? [job["at"].to_f - Time.now.to_f, 0].max : 0
    job[GUARD_FIELD] = Guard.new(((cfg[:ttl] + delay) * 1000).ceil, cfg[:flags])
    yield
  end

  private

  def symbolize(h)
    h.map { |k, v| [k.to_sym, v] }.to_h
  end

  def settings(o)
    conflict = (o[:on_conflict] || :drop).to_sym
    raise ArgumentError, "FerryQueueLock: on_conflict must be one of #{CONFLICTS}" unless CONFLICTS.include?(conflict)
    ttl = (o[:ttl] || DEFAULT_TTL).to_f
    raise ArgumentError, "FerryQueueLock: ttl must be positive" unless ttl > 0
    flags = {drop: "r", raise: "re", replace: "rx"}.fetch(conflict)
    {inputs: Array(o[:inputs]).map(&:to_s), namespace: o[:namespace]&.to_s, ttl: ttl, flags: flags}
  end
end
