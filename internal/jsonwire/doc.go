// Package jsonwire holds the small, allocation-light JSON routines the Sidekiq wire model
// needs: a validating scanner that walks a top-level object without building a map, a
// string encoder that matches Ruby's JSON.generate (no HTML escaping), and float-second
// formatting that always keeps a fractional part.
//
// It exists so that decoding a job costs one pass over its bytes and never panics, whatever
// the bytes are.
package jsonwire
