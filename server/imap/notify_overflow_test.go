package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
)

// notifyLogin is a raw session of alice read by a notifyPeer.
func notifyLogin(t *testing.T, ts *testServer) *notifyPeer {
	t.Helper()
	rc := dialRaw(t, ts.addr)
	rc.nc.SetDeadline(time.Time{})
	rc.send("l LOGIN alice pw-alice\r\n")
	rc.until("l ")
	return newNotifyPeer(rc.nc, rc.r)
}

// waitLines is notifyPeer.wait with the line ends cut.
func waitLines(p *notifyPeer, most time.Duration) []string {
	out := p.wait(0, most, 300*time.Millisecond)
	for i := range out {
		out[i] = strings.TrimRight(out[i], "\r\n")
	}
	return out
}

func mustDo(t *testing.T, p *notifyPeer, cmd string) []string {
	t.Helper()
	out, err := p.do(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if last := out[len(out)-1]; !strings.Contains(last, " OK") {
		t.Fatalf("%s: %q", cmd, out)
	}
	return out
}

// TestNotifyOverflow: RFC 5465 §5.8 — when more notifications wait than
// the server will hold (Options.NotifyMaxPending; here 20, 1000 by
// default), the client gets an untagged OK [NOTIFICATIONOVERFLOW] and
// the session behaves as after NOTIFY NONE; a new NOTIFY SET works
// again. dovecot never sends it (it tells of lost events with
// "* NO NOTIFY error"), so this follows the RFC's text on a raw session.
// The notifications pile up while A is inside a command: an APPEND
// waiting for its literal.
func TestNotifyOverflow(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(o *Options, _ *ListenerOptions) { o.NotifyMaxPending = 20 })
	a, b := notifyLogin(t, ts), notifyLogin(t, ts)
	mustDo(t, a, "SELECT INBOX")
	mustDo(t, a, "NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MailboxName))")
	// Below the bound, the LIST responses arrive.
	mustDo(t, b, "CREATE first")
	if got := waitLines(a, 2*time.Second); !slices.Equal(got, []string{`* LIST () "/" first`}) {
		t.Fatalf("before the overflow: %q", got)
	}
	msg := "Subject: x\r\n"
	fmt.Fprintf(a.w, "h APPEND INBOX {%d}\r\n", len(msg))
	if l := <-a.lines; !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND continuation: %q", l)
	}
	for i := range 30 {
		mustDo(t, b, fmt.Sprintf("CREATE f%02d", i))
	}
	time.Sleep(200 * time.Millisecond) // the watch goroutine counts them
	fmt.Fprintf(a.w, "%s\r\n", msg)
	var got []string
	for deadline := time.After(5 * time.Second); !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "h ") }); {
		select {
		case l := <-a.lines:
			got = append(got, l)
		case <-deadline:
			t.Fatalf("no APPEND reply: %q", got)
		}
	}
	got = append(got, waitLines(a, 2*time.Second)...)
	overflow := slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "* OK [NOTIFICATIONOVERFLOW]") })
	lists := slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "* LIST") })
	if !overflow || lists {
		t.Fatalf("after 30 folders with room for 20: %q", got)
	}
	// As after NOTIFY NONE: neither list events nor the selected
	// mailbox's EXISTS, not even on NOOP.
	mustDo(t, b, "CREATE after")
	mustDo(t, b, `APPEND INBOX {12+}`+"\r\n"+msg)
	if got := waitLines(a, 1500*time.Millisecond); len(got) > 0 {
		t.Fatalf("after the overflow: %q", got)
	}
	if got := mustDo(t, a, "NOOP"); len(got) != 1 {
		t.Fatalf("NOOP after the overflow: %q", got)
	}
	mustDo(t, a, "NOTIFY SET (personal (MailboxName))")
	mustDo(t, b, "CREATE again")
	if got := waitLines(a, 2*time.Second); !slices.Equal(got, []string{`* LIST () "/" again`}) {
		t.Fatalf("NOTIFY SET after the overflow: %q", got)
	}
}

// TestNotifyOutsideFolder: a folder directory made by another process
// (the converter, `mailmig deliver` with Sieve fileinto :create, or by
// hand) and a subscription written by another process reach a NOTIFY
// session by the list poll (RFC 5465 §5.4, §5.5), without any change
// made through the server. dovecot sees such a folder only with its next
// list index refresh (testdata/notify/mailboxname.txt compares that
// case); see docs/imap.md.
func TestNotifyOutsideFolder(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	a := notifyLogin(t, ts)
	mustDo(t, a, "NOTIFY SET (personal (MailboxName SubscriptionChange))")
	root := filepath.Join(ts.dir, "alice", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, ".outside.deep", sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	got := waitLines(a, 3*time.Second)
	slices.Sort(got)
	if want := []string{`* LIST () "/" outside`, `* LIST () "/" outside/deep`}; !slices.Equal(got, want) {
		t.Fatalf("folder made beside the server: %q, want %q", got, want)
	}
	// Another process: a Store on its own hub.
	other, err := mailstore.Open(root, mailstore.Options{NoFsync: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Subscribe("outside/deep"); err != nil {
		t.Fatal(err)
	}
	if got := waitLines(a, 3*time.Second); !slices.Equal(got, []string{`* LIST (\Subscribed) "/" outside/deep`}) {
		t.Fatalf("subscription by another process: %q", got)
	}
}
