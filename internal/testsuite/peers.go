package testsuite

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RubySidekiq is one release of Ruby Sidekiq that tests can drive: Debian's own 6.4.1, or
// 7.3.10 or 8.1.7 from the peers folder, run on Debian's Ruby through its ruby-with script.
// Its Ruby and StartSidekiq methods run scripts and the real sidekiq binary of that
// release; ForEachSidekiq runs one test against each of them.
type RubySidekiq struct {
	name    string // the ruby-with set: "sidekiq6", "sidekiq7", "sidekiq8"
	version string // the Sidekiq::VERSION it must report
	major   int

	check struct {
		once sync.Once
		err  error
		with string // path of ruby-with (7.x and 8.x only)
		bin  string // path of the sidekiq binary
	}
}

// The releases the interop suite runs against.
var (
	// Sidekiq6 is Debian's ruby-sidekiq 6.4.1 with Rails' own ActiveJob adapter (Rails 6.1).
	Sidekiq6 = &RubySidekiq{name: "sidekiq6", version: "6.4.1", major: 6}
	// Sidekiq7 is Sidekiq 7.3.10 with redis-client 0.30 and connection_pool 2.5, and
	// Sidekiq's own ActiveJob adapter (loaded on Debian's ActiveJob 6.1).
	Sidekiq7 = &RubySidekiq{name: "sidekiq7", version: "7.3.10", major: 7}
	// Sidekiq8 is Sidekiq 8.1.7 on Ruby 3.1 with the peers folder's shims, rack 3.2, and
	// Sidekiq's own ActiveJob adapter (loaded on Debian's ActiveJob 6.1).
	Sidekiq8 = &RubySidekiq{name: "sidekiq8", version: "8.1.7", major: 8}
)

// RubySidekiqs returns every release the interop suite runs against, oldest first.
func RubySidekiqs() []*RubySidekiq { return []*RubySidekiq{Sidekiq6, Sidekiq7, Sidekiq8} }

// ForEachSidekiq runs f as a parallel subtest per release (named "sidekiq6", "sidekiq7",
// "sidekiq8"), after checking that the release can be run: a missing one fails under
// CI=true and is skipped otherwise.
func ForEachSidekiq(t *testing.T, f func(t *testing.T, sk *RubySidekiq)) {
	t.Helper()
	for _, sk := range RubySidekiqs() {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			sk.Require(t)
			f(t, sk)
		})
	}
}

// String is the release's short name, "sidekiq6", "sidekiq7" or "sidekiq8".
func (s *RubySidekiq) String() string { return s.name }

// Version is the Sidekiq::VERSION of the release, for example "7.3.10".
func (s *RubySidekiq) Version() string { return s.version }

// Major is the release's major version: 6, 7 or 8.
func (s *RubySidekiq) Major() int { return s.major }

// Millis reports whether the release writes timestamps (created_at, enqueued_at,
// failed_at, retried_at) as integer epoch milliseconds, as 8.x does; older ones write
// float seconds.
func (s *RubySidekiq) Millis() bool { return s.major >= 8 }

// ErrPeersNotFound is returned (wrapped) when the peers folder holding Sidekiq 7.x and
// 8.x is not where the tests look for it.
var ErrPeersNotFound = errors.New("peers folder not found")

// PeersDir is the folder holding the Ruby peers' sources and ruby-with: FERRY_PEERS when
// set; else ../shared/peers from the module root (the directory with go.mod, found from
// the working directory upwards), as every developer's checkout has it; else the first
// shared/peers found in a directory above the module root, and last /work/shared/peers,
// where the workplace keeps it for a clone made elsewhere (CI's).
func PeersDir() (string, error) {
	if d := os.Getenv("FERRY_PEERS"); d != "" {
		return checkPeersDir(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := ""
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			root = dir
			break
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%w: no go.mod above %s", ErrPeersNotFound, wd)
		}
	}
	first, firstErr := checkPeersDir(filepath.Join(root, "..", "shared", "peers"))
	if firstErr == nil {
		return first, nil
	}
	for dir := filepath.Dir(filepath.Dir(root)); ; dir = filepath.Dir(dir) {
		if d, err := checkPeersDir(filepath.Join(dir, "shared", "peers")); err == nil {
			return d, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if d, err := checkPeersDir("/work/shared/peers"); err == nil {
		return d, nil
	}
	return "", firstErr
}

func checkPeersDir(d string) (string, error) {
	abs, err := filepath.Abs(d)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "ruby-with")); err != nil {
		return "", fmt.Errorf("%w: %s has no ruby-with (set FERRY_PEERS): %v", ErrPeersNotFound, abs, err)
	}
	return abs, nil
}

// Require fails (in CI) or skips the test unless this release can be loaded: ruby, the
// release's sources (for 7.x and 8.x the peers folder), its API, its Web UI and ActiveJob,
// reporting the expected Sidekiq::VERSION. The check runs once per test binary.
func (s *RubySidekiq) Require(tb testing.TB) {
	tb.Helper()
	if err := s.available(); err != nil {
		Unavailable(tb, "Sidekiq %s: %v", s.version, err)
	}
}

func (s *RubySidekiq) available() error {
	s.check.once.Do(func() { s.check.err = s.probe() })
	return s.check.err
}

func (s *RubySidekiq) probe() error {
	if _, err := exec.LookPath("ruby"); err != nil {
		return fmt.Errorf("ruby not found (apt-get install ruby ruby-sidekiq ruby-activejob): %w", err)
	}
	if s.major == 6 {
		bin, err := exec.LookPath("sidekiq")
		if err != nil {
			return fmt.Errorf("sidekiq binary not found (apt-get install ruby-sidekiq): %w", err)
		}
		s.check.bin = bin
	} else {
		dir, err := PeersDir()
		if err != nil {
			return err
		}
		s.check.with = filepath.Join(dir, "ruby-with")
		out, err := exec.Command(s.check.with, "--bin", s.name).Output()
		if err != nil {
			return fmt.Errorf("ruby-with --bin %s: %w", s.name, err)
		}
		s.check.bin = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(s.check.bin); err != nil {
		return fmt.Errorf("sidekiq binary: %w", err)
	}
	name, args := s.command("-e", s.prelude(true)+`
require "sidekiq/web"
print Sidekiq::VERSION`)
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://127.0.0.1:1/0") // loading never connects
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ruby cannot load Sidekiq, its Web UI and ActiveJob: %v: %s", err, tail(string(out), 2000))
	}
	if got := lastLineOf(string(out)); got != s.version {
		return fmt.Errorf("loaded Sidekiq %q, want %s", got, s.version)
	}
	return nil
}

// command is the program and arguments that run ruby, with the release on its load path,
// with args.
func (s *RubySidekiq) command(args ...string) (string, []string) {
	if s.major == 6 {
		return "ruby", args
	}
	return s.check.with, append([]string{s.name}, args...)
}

// binary is the program and arguments that run the release's sidekiq binary with args.
func (s *RubySidekiq) binary(args ...string) (string, []string) {
	if s.major == 6 {
		return s.check.bin, args
	}
	return s.command(append([]string{s.check.bin}, args...)...)
}

func lastLineOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// prelude is the Ruby run before every script and jobs file: it loads Sidekiq (and, with
// activeJob, what LoadActiveJob returns), points client and server at REDIS_URL, logs at
// WARN to stderr, and defines what scripts need to be written once for every release:
//
//	FERRY_SIDEKIQ_MAJOR          6, 7 or 8
//	ferry_server_option(k, v)    an option of the sidekiq process (Sidekiq.options in 6.x,
//	                             the configuration in 7.x and 8.x), e.g. :poll_interval_average
func (s *RubySidekiq) prelude(activeJob bool) string {
	load, config := s.preludeParts(activeJob)
	return load + config
}

// preludeParts splits the prelude into what loads code and what depends on the script's
// environment (REDIS_URL, stderr), which a fork server runs in each child.
func (s *RubySidekiq) preludeParts(activeJob bool) (load, config string) {
	load = `
$stdout.sync = true
require "json"
require "logger"
require "sidekiq"
require "sidekiq/api"
FERRY_SIDEKIQ_MAJOR = Sidekiq::VERSION.to_i
def ferry_server_option(key, value)
  Sidekiq.configure_server do |c|
    if FERRY_SIDEKIQ_MAJOR >= 7 then c[key] = value else Sidekiq.options[key] = value end
  end
end
`
	if activeJob {
		load += s.LoadActiveJob()
	}
	config = `
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.configure_server { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
ferry_logger = Logger.new($stderr)
ferry_logger.level = Logger::WARN
if Sidekiq.respond_to?(:default_configuration)
  Sidekiq.default_configuration.logger = ferry_logger
else
  Sidekiq.logger = ferry_logger
end
`
	return load, config
}

// LoadActiveJob is Ruby that loads ActiveJob (Debian's 6.1) with the Sidekiq adapter a
// Rails app on this release uses, sets it as ActiveJob's queue adapter, and sets
// FERRY_AJ_ADAPTER to the file the adapter was loaded from. Put it in a jobs file for
// StartSidekiq; WithActiveJob does it for Ruby scripts.
//
//   - 6.4.1: Rails 6.1's own adapter (payload class ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper).
//   - 7.3.10: Sidekiq's own adapter, which comes before Rails' on the load path; its
//     JobWrapper subclasses Sidekiq::ActiveJob::Wrapper, defined in sidekiq/rails.rb. In a
//     Rails app the Sidekiq::Rails engine loads both and includes Sidekiq::Job::Options in
//     ActiveJob::Base; this does the same without an app.
//   - 8.1.7: Sidekiq's own adapter (payload class Sidekiq::ActiveJob::Wrapper). It declares
//     gem "activejob", ">= 7.0" and does nothing when that check fails; Debian has 6.1,
//     whose serialize output the adapter passes on unchanged, so only that check is skipped.
func (s *RubySidekiq) LoadActiveJob() string {
	var b strings.Builder
	switch s.major {
	case 7:
		b.WriteString("require \"sidekiq/rails\"\n")
	case 8:
		b.WriteString(`
module Kernel
  alias_method :ferry_gem_unchecked, :gem
  def gem(name, *requirements)
    return true if name == "activejob"
    ferry_gem_unchecked(name, *requirements)
  end
  private :gem
end
`)
	}
	b.WriteString(`require "active_job"
require "active_job/queue_adapters/sidekiq_adapter"
ActiveJob::Base.include(Sidekiq::Job::Options) if FERRY_SIDEKIQ_MAJOR >= 7 && !ActiveJob::Base.respond_to?(:sidekiq_options)
ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Logger.new(nil)
FERRY_AJ_ADAPTER = $LOADED_FEATURES.grep(%r{/active_job/queue_adapters/sidekiq_adapter\.rb\z}).last
`)
	return b.String()
}
