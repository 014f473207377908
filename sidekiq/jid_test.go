package sidekiq_test

import (
	"regexp"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/sidekiq"
)

// TestNewJIDFormatAndDistinct: jids are 24 lowercase hex characters (SecureRandom.hex(12))
// and distinct, also when made from many goroutines at once.
func TestNewJIDFormatAndDistinct(t *testing.T) {
	t.Parallel()
	hex24 := regexp.MustCompile(`^[0-9a-f]{24}$`)
	const workers, each = 8, 2000
	out := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				out[w] = append(out[w], sidekiq.NewJID())
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, jids := range out {
		for _, jid := range jids {
			if !hex24.MatchString(jid) {
				t.Fatalf("jid %q is not 24 lowercase hex", jid)
			}
			if seen[jid] {
				t.Fatalf("jid %q made twice", jid)
			}
			seen[jid] = true
		}
	}
}
