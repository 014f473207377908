package sidekiq

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// maxBacktraceBytes bounds how much an "error_backtrace" may inflate to, so a hostile
// payload cannot exhaust memory.
const maxBacktraceBytes = 4 << 20

// ErrorBacktrace decodes the "error_backtrace" field: base64 (strict, as Sidekiq 7.2.1+
// writes it, or with line breaks, as 6.x and early 7.x do) of a zlib stream of a JSON array
// of strings. A plain JSON array, as Sidekiq 6.0.0 and older stored, is accepted too.
// It returns nil, nil when the field is absent.
func (j *Job) ErrorBacktrace() ([]string, error) {
	raw, ok := j.Extra["error_backtrace"]
	if !ok {
		return nil, nil
	}
	var lines []string
	if json.Unmarshal(raw, &lines) == nil {
		return lines, nil
	}
	var enc string
	if err := json.Unmarshal(raw, &enc); err != nil {
		return nil, fmt.Errorf("sidekiq: error_backtrace: not a string: %w", err)
	}
	enc = strings.NewReplacer("\n", "", "\r", "").Replace(enc)
	compressed, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("sidekiq: error_backtrace: base64: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("sidekiq: error_backtrace: zlib: %w", err)
	}
	defer zr.Close()
	data, err := io.ReadAll(io.LimitReader(zr, maxBacktraceBytes+1))
	if err != nil {
		return nil, fmt.Errorf("sidekiq: error_backtrace: zlib: %w", err)
	}
	if len(data) > maxBacktraceBytes {
		return nil, fmt.Errorf("sidekiq: error_backtrace: inflates to more than %d bytes", maxBacktraceBytes)
	}
	if err := json.Unmarshal(data, &lines); err != nil {
		return nil, fmt.Errorf("sidekiq: error_backtrace: not a JSON array of strings: %w", err)
	}
	return lines, nil
}

// SetErrorBacktrace stores lines in "error_backtrace" the way every Sidekiq version reads
// it: JSON, zlib (RFC 1950), then strict base64 with no line breaks. Nil lines remove it.
func (j *Job) SetErrorBacktrace(lines []string) error {
	if lines == nil {
		delete(j.Extra, "error_backtrace")
		return nil
	}
	data, err := marshalNoEscape(lines)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return j.Set("error_backtrace", base64.StdEncoding.EncodeToString(b.Bytes()))
}

// CurrentAttributes decodes the Rails CurrentAttributes that Sidekiq's middleware stored in
// "cattr", "cattr_1", "cattr_2", ... (one map per CurrentAttributes class, in that order).
// Both shapes are read: the JSON object of Sidekiq 6.3–7.x and the array of [key, value]
// pairs of Sidekiq 8, whose symbol keys are ActiveJob-serialized.
func (j *Job) CurrentAttributes() ([]map[string]any, error) {
	var out []map[string]any
	for i := 0; ; i++ {
		key := "cattr"
		if i > 0 {
			key = fmt.Sprintf("cattr_%d", i)
		}
		raw, ok := j.Extra[key]
		if !ok {
			return out, nil
		}
		m, err := decodeCattr(raw)
		if err != nil {
			return out, fmt.Errorf("sidekiq: %s: %w", key, err)
		}
		out = append(out, m)
	}
}

func decodeCattr(raw []byte) (map[string]any, error) {
	var obj map[string]any
	if err := unmarshalUseNumber(raw, &obj); err == nil {
		return obj, nil
	}
	var pairs [][2]json.RawMessage
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("neither an object nor an array of pairs: %w", err)
	}
	obj = make(map[string]any, len(pairs))
	for _, p := range pairs {
		var k any
		if err := unmarshalUseNumber(p[0], &k); err != nil {
			return nil, err
		}
		switch kk := k.(type) {
		case string:
		case map[string]any: // {"_aj_serialized":"...SymbolSerializer","value":"user_id"}
			s, _ := kk["value"].(string)
			k = s
		default:
			k = fmt.Sprint(kk)
		}
		var v any
		if err := unmarshalUseNumber(p[1], &v); err != nil {
			return nil, err
		}
		obj[k.(string)] = v
	}
	return obj, nil
}
