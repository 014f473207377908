package sidekiq

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"sync"
)

// jidSource hands out job ids: 12 bytes from the CSPRNG, as 24 lowercase hex characters
// (SecureRandom.hex(12) in Ruby). Reads are buffered so a bulk push does not make one
// system call per job.
var jidSource = struct {
	mu sync.Mutex
	r  *bufio.Reader
}{r: bufio.NewReaderSize(rand.Reader, 4096)}

// NewJID returns a new random job id.
func NewJID() string {
	var b [12]byte
	jidSource.mu.Lock()
	_, err := io.ReadFull(jidSource.r, b[:])
	jidSource.mu.Unlock()
	if err != nil {
		// crypto/rand does not fail on supported platforms; if it ever does, nothing
		// sensible can be pushed.
		panic("sidekiq: reading random bytes for a jid: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
