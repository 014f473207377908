// Package rediskey turns untrusted values into parts of Redis keys. A jid, a queue name or
// any other value read from a job payload (or a row another program wrote) is untrusted:
// put into a key as it is, a megabyte value makes a megabyte key, and a value with ':' in
// it can reach into a sub-keyspace that another feature owns. Part keeps the key short and
// inside the prefix it is appended to.
package rediskey

import (
	"crypto/sha256"
	"encoding/hex"
)

// MaxPlain is the longest value Part keeps as it is.
const MaxPlain = 64

// HashedPrefix starts every hashed part. A plain part never contains ':', so a hashed part
// never equals a plain one.
const HashedPrefix = "h:"

// Part returns v for use as the last part of a Redis key. v itself is returned when it is
// 1 to MaxPlain bytes of ASCII letters, digits, '-' and '_' (every jid Sidekiq and Ferry
// make, 24 hex digits, and UUIDs); any other value (empty, longer, or with other bytes)
// becomes HashedPrefix and the lowercase hex SHA-256 of v. So the part is at most 66
// bytes, never contains a byte that has a meaning in a key pattern or a key layout (':',
// '*', '{', ...) outside the hashed prefix, and two different values give two different
// parts (SHA-256 collisions aside).
func Part(v string) string {
	if Plain(v) {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return HashedPrefix + hex.EncodeToString(sum[:])
}

// Plain reports whether Part keeps v as it is.
func Plain(v string) bool {
	if len(v) == 0 || len(v) > MaxPlain {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
