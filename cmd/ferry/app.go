package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryhq/ferry/api"
	"github.com/ferryhq/ferry/sidekiq"
)

// defaultRedisURL is used when neither --redis nor REDIS_URL is given.
const defaultRedisURL = "redis://127.0.0.1:6379"

// app is one run of ferry: its streams, environment and global flags, and the Redis
// connection the commands share (opened on first use, closed when the run ends).
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdinTerminal and stdoutTerminal report whether the streams are terminals: a bulk
	// action asks for confirmation only on a terminal, and watch redraws only on one.
	stdinTerminal, stdoutTerminal func() bool
	now                           func() time.Time

	// Global flags.
	redisURL   string
	namespace  string
	jsonOut    bool
	timeFormat string

	rdb    *redis.Client
	sk     *api.API
	redact *redactor
	in     *bufio.Reader
}

// redisTarget is the URL to use: --redis, else REDIS_URL, else the default.
func (a *app) redisTarget() string {
	if a.redisURL != "" {
		return a.redisURL
	}
	if u := a.getenv("REDIS_URL"); u != "" {
		return u
	}
	return defaultRedisURL
}

// connect opens the Redis client on first use.
func (a *app) connect() error {
	if a.rdb != nil {
		return nil
	}
	raw := a.redisTarget()
	a.redact = newRedactor(raw, "")
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return usageErr("bad Redis URL %s: %v", redactURL(raw), err)
	}
	a.redact = newRedactor(raw, opts.Password)
	tf := sidekiq.TimeSeconds
	switch strings.ToLower(a.timeFormat) {
	case "", "seconds":
	case "millis", "milliseconds":
		tf = sidekiq.TimeMillis
	default:
		return usageErr("--time-format %q: want seconds or millis", a.timeFormat)
	}
	a.rdb = redis.NewClient(opts)
	a.sk = api.New(a.rdb, &api.Config{Namespace: a.namespace, TimeFormat: tf})
	return nil
}

// client is a job client on the same connection, for enqueue.
func (a *app) client() *sidekiq.Client {
	tf := sidekiq.TimeSeconds
	if strings.HasPrefix(strings.ToLower(a.timeFormat), "milli") {
		tf = sidekiq.TimeMillis
	}
	return sidekiq.NewClient(a.rdb, &sidekiq.ClientConfig{Namespace: a.namespace, TimeFormat: tf})
}

func (a *app) close() {
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
}

// redisErr turns a Redis failure into a plain failure naming the (redacted) server.
func (a *app) redisErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return failed(errors.New("interrupted"))
	}
	return failed(fmt.Errorf("redis %s: %w", redactURL(a.redisTarget()), err))
}

// confirm asks a yes/no question on a terminal. It never prompts when standard input is
// not a terminal: then only --yes (yes == true) lets a bulk action go ahead.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !a.stdinTerminal() {
		return refusedErr("%s: standard input is not a terminal, so ferry does not ask; add --yes to go ahead", question)
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	if a.in == nil {
		a.in = bufio.NewReader(a.stdin)
	}
	line, _ := a.in.ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return refusedErr("not confirmed; nothing changed")
}
