package sidekiq_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ferryhq/ferry/sidekiq"
)

// FuzzParseJob: the decoder never panics on arbitrary bytes; a failure is always a
// *PayloadError matching ErrInvalidPayload with a message; a success re-encodes (in both
// time formats) to a payload that parses again to the same class, jid, queue and args.
func FuzzParseJob(f *testing.F) {
	for _, seed := range []string{
		`{"retry":true,"queue":"default","args":[1,"two",3.5,null,true,{"k":"v"},[1,2]],"class":"HardJob","jid":"170b73febe2184d0ec04397f","created_at":1795352598.824373,"enqueued_at":1795352598.8245742}`,
		`{"class":"Sidekiq::ActiveJob::Wrapper","wrapped":"MyJob","args":[{"job_class":"MyJob","arguments":[]}],"created_at":1795352598824,"retry":5,"cattr":[["a",1]]}`,
		`{"class":"X","args":[],"enqueued_at":"1795352598.5","retry":"yes","error_message":"","x":{"y":[1e400]}}`,
		`{"class":"X","args":{"a":1}}`, `{"args":[1]}`, `[1,2]`, `{"class":"X","args":[1],`,
		"{\"class\":\"\x00\",\"args\":[]}", `{"class":"X","args":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := sidekiq.ParseJob(data)
		if err != nil {
			var pe *sidekiq.PayloadError
			if !errors.As(err, &pe) || !errors.Is(err, sidekiq.ErrInvalidPayload) || pe.Error() == "" {
				t.Fatalf("error %T %v is not a described *PayloadError", err, err)
			}
			return
		}
		for _, tf := range []sidekiq.TimeFormat{sidekiq.TimeSeconds, sidekiq.TimeMillis} {
			out := job.AppendJSON(nil, tf)
			again, err := sidekiq.ParseJob(out)
			if err != nil {
				t.Fatalf("re-encoding does not parse: %v\n%s\n%s", err, data, out)
			}
			if again.Class != job.Class || again.JID != job.JID || again.Queue != job.Queue || !bytes.Equal(again.Args, job.Args) {
				t.Fatalf("re-encoding changed the job:\n%s\n%s", data, out)
			}
		}
	})
}
