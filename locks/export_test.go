package locks

// acquireCall reports whether a Redis command's arguments run acquireScript and, if so,
// the jid it is run for; tests count lease attempts with it.
func acquireCall(args []any) (string, bool) {
	if len(args) < 5 {
		return "", false
	}
	name, _ := args[0].(string)
	body, _ := args[1].(string)
	if !(name == "evalsha" && body == acquireScript.Hash()) && !(name == "eval" && body == acquireSource) {
		return "", false
	}
	jid, _ := args[4].(string) // evalsha sha 1 key jid lease
	return jid, true
}

// AcquireCall is acquireCall for the external tests.
var AcquireCall = acquireCall
