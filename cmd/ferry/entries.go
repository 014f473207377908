package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/api"
)

// entryJSON is one job of a listing in --json output.
type entryJSON struct {
	JID          string          `json:"jid"`
	Class        string          `json:"class"`
	DisplayClass string          `json:"display_class"`
	Queue        string          `json:"queue"`
	Set          string          `json:"set,omitempty"`
	Score        *float64        `json:"score,omitempty"`
	At           *jsonTime       `json:"at,omitempty"`
	Args         json.RawMessage `json:"args"`
	RetryCount   *int            `json:"retry_count"`
	ErrorClass   string          `json:"error_class,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	CreatedAt    jsonTime        `json:"created_at"`
	EnqueuedAt   jsonTime        `json:"enqueued_at"`
	FailedAt     jsonTime        `json:"failed_at"`
	RetriedAt    jsonTime        `json:"retried_at"`
	// Payload is the entry exactly as stored, when it is valid JSON; Raw holds it as a
	// string when it is not, and Invalid says why it is not a valid job.
	Payload json.RawMessage `json:"payload,omitempty"`
	Raw     string          `json:"raw,omitempty"`
	Invalid string          `json:"invalid,omitempty"`
}

func toEntryJSON(e *api.Entry) entryJSON {
	out := entryJSON{JID: e.JID(), Class: e.Class(), DisplayClass: e.DisplayClass(), Queue: e.Queue(),
		Set: string(e.Set), Args: json.RawMessage("null")}
	if e.Set != "" {
		score := e.Score
		at := jsonTime(e.At())
		out.Score, out.At = &score, &at
	}
	if j := e.Job; j != nil {
		out.Args = j.Args
		if len(strings.TrimSpace(string(j.Args))) == 0 {
			out.Args = json.RawMessage("[]")
		}
		out.RetryCount = j.RetryCount
		out.ErrorClass, out.ErrorMessage = j.ErrorClass, j.ErrorMessage
		out.CreatedAt, out.EnqueuedAt = jsonTime(j.CreatedAt), jsonTime(j.EnqueuedAt)
		out.FailedAt, out.RetriedAt = jsonTime(j.FailedAt), jsonTime(j.RetriedAt)
	} else if e.Err != nil {
		out.Invalid = e.Err.Error()
	}
	if json.Valid([]byte(e.Value)) {
		out.Payload = json.RawMessage(e.Value)
	} else {
		out.Raw = e.Value
	}
	return out
}

// errorText is "ErrorClass: message" for a table cell.
func errorText(e *api.Entry) string {
	if e.Job == nil {
		if e.Err != nil {
			return "(invalid payload: " + e.Err.Error() + ")"
		}
		return ""
	}
	switch {
	case e.Job.ErrorClass != "" && e.Job.ErrorMessage != "":
		return e.Job.ErrorClass + ": " + e.Job.ErrorMessage
	case e.Job.ErrorClass != "":
		return e.Job.ErrorClass
	}
	return e.Job.ErrorMessage
}

func argsText(e *api.Entry) string {
	if e.Job == nil {
		return e.Value
	}
	if len(e.Job.Args) == 0 {
		return "[]"
	}
	return string(e.Job.Args)
}

func retryCountText(e *api.Entry) string {
	if e.Job == nil || e.Job.RetryCount == nil {
		return "-"
	}
	return strconv.Itoa(*e.Job.RetryCount)
}

func classText(e *api.Entry) string {
	if e.Job == nil {
		return "(invalid payload)"
	}
	return e.DisplayClass()
}

// lister prints entries as a table or a JSON array, up to a limit.
type lister struct {
	a       *app
	columns []column
	limit   int // 0: no limit
	shown   int
	more    bool
	tbl     *table
	arr     *jsonArray
}

type column struct {
	title string
	width int
	value func(e *api.Entry, now time.Time) string
}

func newLister(a *app, limit int, cols []column) *lister {
	l := &lister{a: a, columns: cols, limit: limit}
	if a.jsonOut {
		l.arr = newJSONArray(a.stdout)
	} else {
		titles := make([]string, len(cols))
		widths := make([]int, len(cols))
		for i, c := range cols {
			titles[i], widths[i] = c.title, c.width
		}
		l.tbl = newTable(a.stdout, titles...).cut(widths...)
	}
	return l
}

// add prints e, or returns api.ErrStop once the limit is passed (it notes that more
// entries matched).
func (l *lister) add(e *api.Entry) error {
	if l.limit > 0 && l.shown >= l.limit {
		l.more = true
		return api.ErrStop
	}
	l.shown++
	if l.arr != nil {
		return l.arr.add(toEntryJSON(e))
	}
	now := l.a.now()
	cells := make([]string, len(l.columns))
	for i, c := range l.columns {
		cells[i] = c.value(e, now)
	}
	l.tbl.row(cells...)
	return nil
}

// close ends the listing; what names the entries ("retries", "jobs") in the footer.
func (l *lister) close(what string, total int64, filtered bool) error {
	if l.arr != nil {
		return l.arr.close()
	}
	l.tbl.flush()
	switch {
	case l.more:
		fmt.Fprintf(l.a.stdout, "%d %s shown; more match (raise --limit, or --limit 0 for all)\n", l.shown, what)
	case filtered:
		fmt.Fprintf(l.a.stdout, "%d %s matched\n", l.shown, what)
	default:
		fmt.Fprintf(l.a.stdout, "%d %s\n", l.shown, what)
	}
	if l.more && !filtered && total > 0 {
		fmt.Fprintf(l.a.stdout, "%s in all\n", count(total))
	}
	return nil
}
