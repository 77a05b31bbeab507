package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"mailmig/state"
)

func TestBarReporter(t *testing.T) {
	for _, workers := range []int{1, 3} {
		var buf bytes.Buffer
		b := newBarReporter(&buf, workers)
		b.users = 2
		b.Begin("alice", 1000)
		b.Update("alice", 500, 5)
		b.Update("alice", 1000, 10)
		b.End("alice", state.Confirm, nil)
		b.Begin("bob", 10)
		b.End("bob", state.NeedsAttention, errors.New("folders over the copy limit"))
		out := buf.String()
		for _, want := range []string{"[1/2] ", "alice", "copied, confirmation sent", "bob: needs-attention: folders over the copy limit"} {
			if !strings.Contains(out, want) {
				t.Errorf("workers=%d: output lacks %q:\n%s", workers, want, out)
			}
		}
	}
}

func TestLogReporter(t *testing.T) {
	var buf bytes.Buffer
	l := &logReporter{log: slog.New(slog.NewTextHandler(&buf, nil))}
	l.Begin("alice", 1000)
	l.Update("alice", 10, 1) // within 5 s of Begin: not logged
	l.End("alice", state.Done, nil)
	out := buf.String()
	if !strings.Contains(out, `msg="copy started" user=alice source_bytes=1000`) || !strings.Contains(out, `msg="step ended" user=alice state=done`) {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, `msg=copying`) {
		t.Errorf("update logged too often:\n%s", out)
	}
}
