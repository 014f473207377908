package main

import (
	"net/url"
	"strings"
)

// redactedPassword replaces a Redis password wherever ferry would print it.
const redactedPassword = "xxxxx"

// minSecretLen is the shortest password also replaced inside arbitrary text: a shorter
// one would turn every message into noise (the full URL is always replaced).
const minSecretLen = 3

// redactURL returns raw with any password replaced, for messages. A URL that does not
// parse is not shown at all: it may hold the password in a place the parser missed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable Redis URL>"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redactedPassword)
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", redactedPassword)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactor removes secrets from text printed to the terminal.
type redactor struct {
	pairs []string // old, new, old, new ...
}

// newRedactor replaces the raw URL by its redacted form, and the password (as given and
// URL-escaped) by redactedPassword.
func newRedactor(rawURL, password string) *redactor {
	r := &redactor{}
	if rawURL != "" {
		r.pairs = append(r.pairs, rawURL, redactURL(rawURL))
	}
	if len(password) >= minSecretLen {
		for _, s := range []string{password, url.PathEscape(password), url.QueryEscape(password)} {
			r.pairs = append(r.pairs, s, redactedPassword)
		}
	}
	return r
}

func (r *redactor) apply(s string) string {
	if r == nil || len(r.pairs) == 0 {
		return s
	}
	return strings.NewReplacer(r.pairs...).Replace(s)
}
