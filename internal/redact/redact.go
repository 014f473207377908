// Package redact hides the passwords in connection URLs (REDIS_URL, POSTGRES_URL) before
// anything prints or logs them: a quick start that shows where it connects, an error that
// quotes the URL it could not parse, a test that says which server it could not reach.
//
// URL masks the password of a URL; String and Error mask it wherever it appears in a
// message. Use them wherever a URL, or an error made from one, is printed or logged.
package redact

import (
	"net/url"
	"sort"
	"strings"
)

// Mask replaces a password.
const Mask = "xxxxx"

// URL returns raw with its password replaced by Mask: the password of the userinfo
// ("redis://user:pass@host"), and a "password" query parameter ("postgres://h/db?password=
// pass"). A URL without a password is returned unchanged. A string that does not parse as
// a URL (the case in which parse errors quote it), or that holds more than one '@' or a
// '#' (a password with characters a URL may not hold unescaped, which a parser would
// split elsewhere), is masked from the first ':' after "scheme://" up to the last '@'.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || strings.Count(raw, "@") > 1 || strings.Contains(raw, "#") {
		return maskUnparsed(raw)
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Mask)
			changed = true
		}
	}
	if q := u.Query(); u.RawQuery != "" {
		for k := range q {
			if strings.EqualFold(k, "password") {
				q[k] = []string{Mask}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return raw
	}
	return u.String()
}

// maskUnparsed masks the userinfo password of a string url.Parse refused.
func maskUnparsed(raw string) string {
	i, j, ok := rawPassword(raw)
	if !ok {
		return raw
	}
	return raw[:i] + Mask + raw[j:]
}

// rawPassword finds the userinfo password in raw as written: raw[i:j] is what lies between
// the first ':' after "scheme://" and the last '@'.
func rawPassword(raw string) (i, j int, ok bool) {
	start := 0
	if k := strings.Index(raw, "://"); k >= 0 {
		start = k + 3
	}
	at := strings.LastIndexByte(raw[start:], '@')
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.IndexByte(raw[start:start+at], ':')
	if colon < 0 {
		return 0, 0, false
	}
	return start + colon + 1, start + at, true
}

// passwords returns the forms in which rawURL's passwords may appear in a message: as
// written in the URL and percent-decoded, longest first.
func passwords(rawURL string) []string {
	var out []string
	add := func(p string) {
		if p != "" && p != Mask {
			out = append(out, p)
		}
	}
	if u, err := url.Parse(rawURL); err == nil {
		if u.User != nil {
			p, _ := u.User.Password()
			add(p)
		}
		for k, vs := range u.Query() {
			if strings.EqualFold(k, "password") {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	if i, j, ok := rawPassword(rawURL); ok {
		add(rawURL[i:j])
		if d, err := url.PathUnescape(rawURL[i:j]); err == nil {
			add(d)
		}
	}
	sort.Slice(out, func(a, b int) bool { return len(out[a]) > len(out[b]) })
	return out
}

// String returns s with rawURL's password masked wherever it appears in s, whole URL or
// not (an error message quoting the URL, a command line). Longer forms are replaced first.
func String(s, rawURL string) string {
	if rawURL == "" || s == "" {
		return s
	}
	s = strings.ReplaceAll(s, rawURL, URL(rawURL))
	for _, p := range passwords(rawURL) {
		s = strings.ReplaceAll(s, p, Mask)
	}
	return s
}

// Error returns err with rawURL's password masked in its message (String), or err itself
// when its message does not contain it. The result still matches err's chain with
// errors.Is and errors.As.
func Error(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := String(msg, rawURL); red != msg {
		return &redacted{msg: red, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
