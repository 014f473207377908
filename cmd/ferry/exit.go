package main

import (
	"errors"
	"fmt"
)

// Exit codes. Scripts may rely on them; the README's "Operating Ferry" lists them too.
const (
	// exitOK: the command did what was asked (an empty listing or a bulk action that
	// matched nothing is success).
	exitOK = 0
	// exitError: the command failed: Redis unreachable or refusing, a bad --redis URL, an
	// interrupted run. What was done before the failure stays done.
	exitError = 1
	// exitUsage: bad flags or arguments; nothing was read or changed.
	exitUsage = 2
	// exitNotFound: a jid, process identity or queue named on the command line does not
	// exist (the others named were still acted on).
	exitNotFound = 3
	// exitRefused: a bulk action was not confirmed: the prompt was declined, or standard
	// input is not a terminal and --yes was not given. Nothing was changed.
	exitRefused = 4
	// exitPartial: some matched entries were left in place (a retry of a payload that is
	// not a valid job). exitNotFound wins when both apply.
	exitPartial = 5
)

// exitErr carries an exit code and the message to print for it.
type exitErr struct {
	code int
	msg  string
}

func (e *exitErr) Error() string { return e.msg }

func usageErr(format string, a ...any) error {
	return &exitErr{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

func notFoundErr(format string, a ...any) error {
	return &exitErr{code: exitNotFound, msg: fmt.Sprintf(format, a...)}
}

func refusedErr(format string, a ...any) error {
	return &exitErr{code: exitRefused, msg: fmt.Sprintf(format, a...)}
}

func partialErr(format string, a ...any) error {
	return &exitErr{code: exitPartial, msg: fmt.Sprintf(format, a...)}
}

// failed wraps err as a plain failure (exit 1), unless it already carries a code.
func failed(err error) error {
	var e *exitErr
	if errors.As(err, &e) {
		return err
	}
	return &exitErr{code: exitError, msg: err.Error()}
}

// exitCode is the code for an error returned by the command tree. Errors that carry no
// code come from cobra's own parsing (an unknown command or flag, a missing argument):
// usage errors.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitErr
	if errors.As(err, &e) {
		return e.code
	}
	return exitUsage
}
