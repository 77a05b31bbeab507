package delivery

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRuntimeErrorLogged: a personal script failing at run time keeps the
// message in INBOX, and the log names the script, the line and the error
// (issue 12 item 9); the failure is counted for metrics.
func TestRuntimeErrorLogged(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.d.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f.script("alice", "require [\"ihave\", \"fileinto\"];\nfileinto \"INBOX\";\nerror \"no folder for ${x}\";\n")
	res := f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if res.ScriptErr == nil {
		t.Fatal("no script error reported")
	}
	if got := f.where("alice"); got != "INBOX:1" {
		t.Errorf("where = %q", got)
	}
	for _, want := range []string{"sieve run-time error", "script=main", "line=3", `error="no folder for ${x}"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if n := f.d.ScriptErrors(); n != 1 {
		t.Errorf("ScriptErrors() = %d", n)
	}
}
