package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/ferryhq/ferry/promferry"
	"github.com/ferryhq/ferry/sidekiq"
)

// observe attaches Prometheus metrics to srv and returns the registry that holds them:
// this process's job metrics, the Sidekiq state every process shares, and the Go runtime's
// and process's own.
func observe(srv *sidekiq.Server, rdb redis.UniversalClient, namespace string, log *zap.Logger) *prometheus.Registry {
	m := promferry.New(nil)
	m.Attach(srv)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		m,
		promferry.NewStatsCollector(rdb, &promferry.StatsConfig{Namespace: namespace, Queues: srv.Queues(), Logger: log}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// handler serves /metrics, /healthz (the process is up) and /readyz (the server is
// registered, not quiet, and heartbeating: srv.Ready).
func handler(srv *sidekiq.Server, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Timeout: 10 * time.Second}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !srv.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// serveHTTP listens on addr and serves h until the returned stop is called.
func serveHTTP(addr string, h http.Handler, log *zap.Logger) (stop func(context.Context), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server failed", zap.Error(err))
		}
	}()
	log.Info("http listening", zap.String("addr", ln.Addr().String()))
	return func(ctx context.Context) {
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}
