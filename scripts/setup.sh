#!/usr/bin/env bash
# Installs and starts what Ferry's tests need on a fresh Debian machine: redis-server, ruby,
# Debian's ruby-sidekiq (6.4.1), ruby-activejob (6.1), ruby-redis-namespace (Sidekiq 6 on a
# namespace, for the api tests), ruby-sidekiq-cron (1.8.0, for the periodic tests),
# ruby-multi-json, ruby-redis and ruby-connection-pool (queue-bus and sidekiq-bus, from
# ../shared/peers, need them for the bus interop tests), and PostgreSQL on 127.0.0.1:5432 with
# a database "test" that user postgres (password postgres) can use, for the outbox. Safe to run
# again: it only acts on what is missing. Needs root (or sudo) to install.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root to run: $*" >&2; return 1; fi
}

updated=
apt_install() {
  [ -n "$updated" ] || { as_root apt-get update -qq; updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v ruby >/dev/null || missing+=(ruby)
ruby -e 'require "sidekiq"' 2>/dev/null || missing+=(ruby-sidekiq)
ruby -e 'require "active_job"' 2>/dev/null || missing+=(ruby-activejob)
ruby -e 'require "redis/namespace"' 2>/dev/null || missing+=(ruby-redis-namespace)
ruby -e 'require "sidekiq"; require "sidekiq-cron"' 2>/dev/null || missing+=(ruby-sidekiq-cron)
# Sidekiq 7.3 defines its ActiveJob wrapper in sidekiq/rails.rb, which needs railties (the
# interop suite loads it for 7.3's ActiveJob tests; 7.3 and 8.1 themselves come from ../shared/peers).
ruby -e 'require "rails"' 2>/dev/null || missing+=(ruby-railties)
ruby -e 'require "multi_json"' 2>/dev/null || missing+=(ruby-multi-json)
ruby -e 'require "redis"; require "connection_pool"' 2>/dev/null || missing+=(ruby-redis ruby-connection-pool)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting redis-server on 127.0.0.1:6379"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ferry-ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "setup: installing postgresql"
    apt_install postgresql
  fi
  echo "setup: starting postgresql"
  for c in $(pg_lsclusters -h | awk '{print $1 "/" $2}'); do as_root pg_ctlcluster "${c%/*}" "${c#*/}" start || true; done
  for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
  pg_up || { echo "setup: postgresql did not start" >&2; exit 1; }
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  as_root su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 || createdb test"
fi
echo "setup: redis $(redis-server --version | awk '{print $3}'), ruby $(ruby -e 'print RUBY_VERSION'), sidekiq $(ruby -e 'require "sidekiq"; print Sidekiq::VERSION'), postgresql ready"
