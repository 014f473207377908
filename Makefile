# Ferry's tasks. `make test` is the one command that sets up and runs every test.
.PHONY: help run test setup vet race fuzz bench load chaos

help: ## list the tasks
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

run: ## run the quick start (embedded Redis unless REDIS_URL is set)
	go run ./examples/quickstart

setup: ## install and start redis-server, ruby, ruby-sidekiq, ruby-activejob, ruby-multi-json if missing
	./scripts/setup.sh

vet: ## go vet
	go vet ./...

race: ## every test, race detector on, including the Ruby interop suite
	CI=$${CI:-true} go test -race -count=1 -timeout 20m ./...

fuzz: ## a short fuzzing pass over the payload decoder
	go test ./sidekiq -run '^$$' -fuzz '^FuzzParseJob$$' -fuzztime 20s

test: setup vet race fuzz ## set up, then vet, race tests, interop, fuzz

bench: ## micro-benchmarks against the real Redis
	go test ./sidekiq -run '^$$' -bench . -benchmem

load: ## the load tool: Ruby Sidekiq 6.4.1 vs Ferry on 100,000 jobs (flushes Redis db 14; not while tests run)
	go run ./internal/cmd/ferrybench run

chaos: ## the chaos suite's long form (CHAOS_DURATION, default 30m; CHAOS_SEED replays; CHAOS_REPORT=file)
	CI=$${CI:-true} CHAOS_DURATION=$${CHAOS_DURATION:-30m} go test -run '^TestChaos$$' -count=1 -timeout $${CHAOS_TIMEOUT:-60m} -v ./internal/chaos
