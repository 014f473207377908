package locks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/ferryhq/ferry/sidekiq"
)

const (
	// QueueKeyPrefix starts every queue lock key.
	QueueKeyPrefix = "ferry:lock:queue:"
	// WorkerKeyPrefix starts every worker lock key.
	WorkerKeyPrefix = "ferry:lock:worker:"
)

// excludedByDefault are the injected inputs left out when no names are chosen.
var excludedByDefault = map[string]bool{"locale": true, "tz": true}

// Digest returns the lowercase hex SHA-256 of the canonical string of namespace and the
// chosen inputs (see the package documentation). names chooses the inputs; when empty,
// every input except locale and tz is used. Each value must be a JSON token; it is
// compacted before hashing.
func Digest(namespace string, inputs map[string]json.RawMessage, names []string) (string, error) {
	chosen := chooseNames(inputs, names)
	h := sha256.New()
	var buf bytes.Buffer
	h.Write([]byte(namespace))
	h.Write([]byte{0})
	for _, name := range chosen {
		buf.Reset()
		if v, ok := inputs[name]; ok {
			if err := json.Compact(&buf, v); err != nil {
				return "", fmt.Errorf("locks: input %q: %w", name, err)
			}
		}
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write(buf.Bytes())
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Key returns the queue lock key ("ferry:lock:queue:<digest>") of namespace and inputs.
// It panics if an input value is not valid JSON; use Digest to get the error instead.
func Key(namespace string, inputs map[string]json.RawMessage, names []string) string {
	d, err := Digest(namespace, inputs, names)
	if err != nil {
		panic(err)
	}
	return QueueKeyPrefix + d
}

// WorkerKey returns the worker lock key ("ferry:lock:worker:<digest>") of namespace and
// inputs. It panics if an input value is not valid JSON.
func WorkerKey(namespace string, inputs map[string]json.RawMessage, names []string) string {
	d, err := Digest(namespace, inputs, names)
	if err != nil {
		panic(err)
	}
	return WorkerKeyPrefix + d
}

// chooseNames returns the sorted, deduplicated names to hash.
func chooseNames(inputs map[string]json.RawMessage, names []string) []string {
	var out []string
	if len(names) == 0 {
		for k := range inputs {
			if !excludedByDefault[k] {
				out = append(out, k)
			}
		}
	} else {
		out = append(out, names...)
	}
	sort.Strings(out)
	dedup := out[:0]
	for i, n := range out {
		if i == 0 || n != out[i-1] {
			dedup = append(dedup, n)
		}
	}
	return dedup
}

// ErrNoInputs is matched by the error JobInputs returns when args[0] is not a JSON object.
var ErrNoInputs = errors.New("locks: args[0] is not a JSON object")

// JobInputs returns the named inputs of a job: the keys of args[0], which must be a JSON
// object. A job with no args has no inputs (an empty map, no error).
func JobInputs(job *sidekiq.Job) (map[string]json.RawMessage, error) {
	var args []json.RawMessage
	if len(job.Args) > 0 {
		if err := json.Unmarshal(job.Args, &args); err != nil {
			return nil, fmt.Errorf("locks: job %s args: %w", job.JID, err)
		}
	}
	if len(args) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	first := bytes.TrimSpace(args[0])
	if len(first) == 0 || first[0] != '{' {
		return nil, fmt.Errorf("job %s: %w", job.JID, ErrNoInputs)
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(first, &in); err != nil {
		return nil, fmt.Errorf("locks: job %s args[0]: %w", job.JID, err)
	}
	return in, nil
}
