package sidekiq

import (
	"os"
	"strings"
	"testing"
)

// TestRubyQueueLockCarriesGuardedPushLua: the Ruby client middleware in locks/ruby runs a
// byte-identical copy of guardedPushLua, so a lock taken from Rails and one taken from Go
// are the same key, set the same way.
func TestRubyQueueLockCarriesGuardedPushLua(t *testing.T) {
	t.Parallel()
	const file = "../locks/ruby/ferry_queue_lock.rb"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	const open, end = "SCRIPT = <<'LUA'\n", "\nLUA\n"
	i := strings.Index(text, open)
	j := strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("%s: no SCRIPT = <<'LUA' ... LUA heredoc", file)
	}
	if got := text[i+len(open) : j+1]; got != guardedPushLua {
		t.Errorf("Lua in %s differs from guardedPushLua:\n--- ruby\n%s\n--- go\n%s", file, got, guardedPushLua)
	}
}
