module github.com/ferryhq/ferry/internal/bench/goworkers2

go 1.26.8

require (
	github.com/digitalocean/go-workers2 v0.0.0-00010101000000-000000000000
	github.com/go-redis/redis/v8 v8.4.4
)

require (
	github.com/bitly/go-simplejson v0.5.0 // indirect
	github.com/cespare/xxhash/v2 v2.1.1 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	github.com/google/uuid v1.1.4 // indirect
	go.opentelemetry.io/otel v0.15.0 // indirect
)

// go-workers2 is not on the module proxy: ./src is a local checkout (see main.go).
replace github.com/digitalocean/go-workers2 => ./src
