# Ferry's tasks. `make test` is the one command that sets up and runs every test.
.PHONY: help run test setup vet race fuzz bench load load20 goworkers2 chaos

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

GOWORKERS2_BIN ?= $(wildcard bin/goworkers2-bench)

load20: ## issue 20's figures: every workload, 3 interleaved rounds, private Redis (+ go-workers2 when bin/goworkers2-bench exists)
	go run ./internal/cmd/ferrybench run -redis-server redis-server -workload issue20 -rounds 3 $(if $(GOWORKERS2_BIN),-goworkers2 $(GOWORKERS2_BIN))

goworkers2: ## build bin/goworkers2-bench, the go-workers2 harness (GOWORKERS2_SRC=a checkout of go-workers2; BENCHMARKS.md)
	@test -n "$(GOWORKERS2_SRC)" || { echo "set GOWORKERS2_SRC to a checkout of github.com/digitalocean/go-workers2 (see BENCHMARKS.md)"; exit 2; }
	ln -sfn "$(abspath $(GOWORKERS2_SRC))" internal/bench/goworkers2/src
	cd internal/bench/goworkers2 && go build -o ../../../bin/goworkers2-bench .

chaos: ## the chaos suite's long form (CHAOS_DURATION, default 30m; CHAOS_SEED replays; CHAOS_REPORT=file)
	CI=$${CI:-true} CHAOS_DURATION=$${CHAOS_DURATION:-30m} go test -run '^TestChaos$$' -count=1 -timeout $${CHAOS_TIMEOUT:-60m} -v ./internal/chaos
