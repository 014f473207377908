package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/jsonwire"
	"github.com/ferryhq/ferry/sidekiq"
)

// InputsFunc is a handler that receives the job's named inputs decoded into T.
type InputsFunc[T any] func(ctx context.Context, job *sidekiq.Job, in T) error

// Validator is implemented by inputs types that check themselves after decoding (and after
// defaults are applied). A non-nil error sends the job to the dead set at once. Return an
// *InputError (see Invalid) to name the offending input.
type Validator interface {
	Validate() error
}

// Defaulter is implemented (on the pointer) by inputs types that set their defaults in
// code rather than in `default:"…"` tags. Defaults runs on a zero T before the payload is
// decoded into it, so every key the payload has overrides it.
type Defaulter interface {
	Defaults()
}

// ErrInvalidInputs is matched (errors.Is) by every *InputError.
var ErrInvalidInputs = errors.New("middleware: invalid job inputs")

// InputError says what is wrong with a job's named inputs. Inputs handlers return it
// wrapped in sidekiq.Discard, so the job goes straight to the dead set with this message.
type InputError struct {
	// Class is the job's class (the handler name).
	Class string
	// Field names the input (its JSON key, dotted for nested objects), or "args" when the
	// payload is not one JSON object.
	Field string
	// Reason says what was wrong.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Invalid returns an *InputError for a Validate method to return: field is the JSON key,
// reason what is wrong with its value. The class is filled in by the Inputs handler.
func Invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func (e *InputError) Error() string {
	var b strings.Builder
	if e.Class != "" {
		b.WriteString(e.Class)
		b.WriteString(": ")
	}
	switch e.Field {
	case "":
		b.WriteString("invalid inputs: ")
	case "args":
		b.WriteString("args: ")
	default:
		fmt.Fprintf(&b, "input %q: ", e.Field)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// Is matches ErrInvalidInputs.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInputs }

// ErrorClass is the error_class shown in the dead set.
func (e *InputError) ErrorClass() string { return "Ferry::InvalidInputs" }

// Inputs returns a handler for jobs whose single argument is a JSON object of named inputs,
// the shape TResque's `enqueue(hash)` and `perform_async("user_id" => 1)` produce. The
// object is decoded into a T with encoding/json rules (json tags name the keys), then fn
// runs with it.
//
// T must be a struct (or a pointer to one, or a map with string keys). Decoding follows
// these rules, so producers and consumers can be deployed in either order:
//
//   - Unknown keys are ignored: an old consumer reads a newer payload.
//   - A missing key keeps the field's default: the value of its `default:"…"` struct tag
//     (strings as written, numbers and bools parsed, time.Duration as "90s", anything else
//     as JSON: `default:"[1,2]"`), or what T's Defaults method (see Defaulter) set, or the
//     zero value. A new consumer reads an older payload.
//   - A JSON null leaves a pointer, slice or map field nil and any other field unchanged.
//   - Numbers decoded into `any` fields are json.Number, so no integer loses precision.
//   - Then T's Validate method (see Validator) runs, if it has one.
//
// When the job is not exactly one JSON object (say, positional args from an old producer),
// when a value has the wrong type for its field, or when Validate fails, fn does not run and
// the job goes straight to the dead set (sidekiq.Discard) with an *InputError naming the
// class, the input and what was wrong. Retrying could never help.
//
// If T (or *T) implements Neededer, Needed runs after decoding and before fn; a job no
// longer needed is skipped (see Skip).
func Inputs[T any](fn InputsFunc[T]) sidekiq.Handler {
	return inputsHandler[T]{fn: fn}
}

type inputsHandler[T any] struct{ fn InputsFunc[T] }

func (h inputsHandler[T]) Perform(ctx context.Context, job *sidekiq.Job) error {
	in, err := DecodeInputs[T](job)
	if err != nil {
		return sidekiq.Discard(err)
	}
	if n, ok := any(in).(Neededer); ok {
		return runIfNeeded(ctx, job, n, func() error { return h.fn(ctx, job, in) })
	}
	if n, ok := any(&in).(Neededer); ok {
		return runIfNeeded(ctx, job, n, func() error { return h.fn(ctx, job, in) })
	}
	return h.fn(ctx, job, in)
}

func runIfNeeded(ctx context.Context, job *sidekiq.Job, n Neededer, run func() error) error {
	ok, err := n.Needed(ctx, job)
	if err != nil {
		return fmt.Errorf("%s: checking whether the job is still needed: %w", job.HandlerName(), err)
	}
	if !ok {
		return Skip(ctx, "no longer needed")
	}
	return run()
}

// DecodeInputs decodes the job's named inputs into a T, applying defaults and Validate, as
// an Inputs handler does. The error, if any, is an *InputError.
func DecodeInputs[T any](job *sidekiq.Job) (T, error) {
	var in T
	class := job.HandlerName()
	obj, ierr := singleObject(job.Args)
	if ierr != nil {
		ierr.Class = class
		return in, ierr
	}
	rv := reflect.ValueOf(&in).Elem()
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		rv.Set(reflect.New(rv.Type().Elem()))
	}
	if err := applyDefaults(rv, ""); err != nil {
		return in, &InputError{Class: class, Reason: "bad default: " + err.Error(), Err: err}
	}
	if d, ok := any(&in).(Defaulter); ok {
		d.Defaults()
	} else if d, ok := any(in).(Defaulter); ok && rv.Kind() == reflect.Pointer {
		d.Defaults()
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return in, decodeError(class, err)
	}
	var v Validator
	if vv, ok := any(in).(Validator); ok {
		v = vv
	} else if vv, ok := any(&in).(Validator); ok {
		v = vv
	}
	if v != nil {
		if err := v.Validate(); err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				out := *ie
				out.Class = class
				if out.Err == nil && ie != err {
					out.Err = err
				}
				return in, &out
			}
			return in, &InputError{Class: class, Reason: err.Error(), Err: err}
		}
	}
	return in, nil
}

// singleObject returns the one JSON object in args.
func singleObject(args json.RawMessage) ([]byte, *InputError) {
	var elems []json.RawMessage
	if err := json.Unmarshal(args, &elems); err != nil {
		return nil, &InputError{Field: "args", Reason: "not a JSON array: " + err.Error(), Err: err}
	}
	if len(elems) != 1 || jsonwire.KindOf(elems[0]) != jsonwire.Object {
		kinds := make([]string, len(elems))
		for i, e := range elems {
			kinds[i] = jsonwire.KindOf(e).String()
		}
		return nil, &InputError{Field: "args", Reason: fmt.Sprintf(
			"want one JSON object of named inputs, got %d positional argument(s) [%s]; enqueue it as perform_async(\"name\" => value, ...)",
			len(elems), strings.Join(kinds, ", "))}
	}
	return elems[0], nil
}

func decodeError(class string, err error) *InputError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "args"
		}
		return &InputError{Class: class, Field: field, Reason: fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value), Err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &InputError{Class: class, Field: "args", Reason: "truncated JSON", Err: err}
	}
	// Errors from UnmarshalJSON/UnmarshalText methods carry no field; say what we know.
	return &InputError{Class: class, Reason: err.Error(), Err: err}
}

var durationType = reflect.TypeFor[time.Duration]()

// applyDefaults sets every field of struct v that has a `default` tag, recursing into
// nested structs (not through pointers).
func applyDefaults(v reflect.Value, path string) error {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		name := path + f.Name
		if def, ok := f.Tag.Lookup("default"); ok {
			if err := setDefault(fv, def); err != nil {
				return fmt.Errorf("field %s: %q: %w", name, def, err)
			}
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			if err := applyDefaults(fv, name+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

func setDefault(v reflect.Value, def string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(def)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(def)
	case reflect.Bool:
		b, err := strconv.ParseBool(def)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(def, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(def, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(def, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		p := reflect.New(v.Type())
		if err := json.Unmarshal([]byte(def), p.Interface()); err != nil {
			return err
		}
		v.Set(p.Elem())
	}
	return nil
}

// EncodeInputs encodes in as a job's args: a one-element array holding in as a JSON
// object with string keys, the shape Inputs decodes and Ruby's
// perform_async("name" => value) produces. It is an error when in does not encode as a
// JSON object.
func EncodeInputs(in any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(in); err != nil {
		return nil, fmt.Errorf("middleware: encoding inputs: %w", err)
	}
	obj := bytes.TrimSpace(b.Bytes())
	if jsonwire.KindOf(obj) != jsonwire.Object {
		return nil, fmt.Errorf("middleware: inputs of type %T encode as JSON %s, want an object", in, jsonwire.KindOf(obj))
	}
	out := make([]byte, 0, len(obj)+2)
	out = append(out, '[')
	out = append(out, obj...)
	return append(out, ']'), nil
}

// Enqueue pushes a job of class whose single argument is in, encoded as a JSON object of
// named inputs (see EncodeInputs): the typed push-side counterpart of Inputs. It returns
// the jid. Options are those of Client.Push; push middleware runs as for any push.
//
//	jid, err := middleware.Enqueue(ctx, client, "UserIndexWorker", UserIndexInputs{UserID: 42})
func Enqueue[T any](ctx context.Context, client *sidekiq.Client, class string, in T, opts ...sidekiq.PushOption) (string, error) {
	args, err := EncodeInputs(in)
	if err != nil {
		return "", err
	}
	return client.PushJob(ctx, &sidekiq.Job{Class: class, Args: args}, opts...)
}
