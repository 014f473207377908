// Package logcap bounds what payload content can put into a log line. Anything read from
// a job payload (a class name, a jid, an error message built from a payload, a lock
// digest) is untrusted: a producer can make it megabytes long. Log it through String or
// Error, never zap.String or zap.Error directly.
package logcap

import (
	"strconv"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Max is how many bytes of one payload-derived value a log field keeps.
const Max = 256

// Cut returns s cut to at most max bytes on a rune boundary, with a note of the full
// length when it was cut.
func Cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := s[:max]
	for len(cut) > 0 && !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return cut + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// String is zap.String with the value cut to Max bytes.
func String(key, val string) zap.Field { return zap.String(key, Cut(val, Max)) }

// Error is zap.Error with the message cut to 4×Max bytes (error messages carry more
// context than a single value).
func Error(err error) zap.Field {
	if err == nil {
		return zap.Skip()
	}
	return zap.String("error", Cut(err.Error(), 4*Max))
}
