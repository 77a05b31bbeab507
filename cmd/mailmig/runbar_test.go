package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"mailmig/state"
)

// ptyRun is python3's pty module running a command on a terminal and
// copying everything the terminal shows to stdout (bytes as written).
const ptyRun = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = bytearray()
while True:
    try:
        b = os.read(fd, 65536)
    except OSError:
        break
    if not b:
        break
    out += b
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
`

// screenLines replays terminal output: a carriage return moves back to
// column 0 and later text overwrites; a line feed ends the line. It
// returns each line as it was finally shown (trailing blanks removed)
// and every state a line showed before it was overwritten.
func screenLines(out string) (final []string, states [][]string) {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	for _, l := range strings.Split(out, "\n") {
		var cur []rune
		var seen []string
		col := 0
		for _, seg := range strings.SplitAfter(l, "\r") {
			text := strings.TrimSuffix(seg, "\r")
			for _, r := range text {
				if col < len(cur) {
					cur[col] = r
				} else {
					cur = append(cur, r)
				}
				col++
			}
			if s := strings.TrimRight(string(cur), " "); s != "" {
				seen = append(seen, s)
			}
			if strings.HasSuffix(seg, "\r") {
				col = 0
			}
		}
		final = append(final, strings.TrimRight(string(cur), " "))
		states = append(states, seen)
	}
	return final, states
}

var percentRe = regexp.MustCompile(`(\d+)%`)

// checkBarOutput: every log line and message starts at column 0 on a
// line of its own (no bar in it), and the last state any bar showed is
// 100 %.
func checkBarOutput(t *testing.T, what, out string, wantLines ...string) {
	t.Helper()
	final, states := screenLines(out)
	lastPct := ""
	for i, l := range final {
		isBar := percentRe.MatchString(l) && strings.Contains(l, "|")
		if strings.Contains(l, "level=") || strings.Contains(l, ": copied, confirmation sent") || strings.Contains(l, "needs-attention:") || strings.HasPrefix(l, "pass:") {
			if isBar || !(strings.HasPrefix(l, "time=") || !strings.Contains(l, "level=")) {
				t.Errorf("%s: line %d is not a log line of its own at column 0: %q", what, i, l)
			}
		}
		for _, s := range states[i] {
			if m := percentRe.FindAllStringSubmatch(s, -1); m != nil && strings.Contains(s, "|") {
				lastPct = m[len(m)-1][1]
			}
		}
	}
	if lastPct != "100" {
		t.Errorf("%s: the last bar state is %s%%, not 100%%:\n%s", what, lastPct, strings.Join(final, "\n"))
	}
	all := strings.Join(final, "\n")
	for _, w := range wantLines {
		found := false
		for _, l := range final {
			if strings.HasPrefix(l, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no line starts with %q:\n%s", what, w, all)
		}
	}
}

// TestRunProgressOnTerminal (issue 9 item 11): `mailmig run` on a real
// terminal (a pty) draws bars that end at 100 %, with every log line
// above the bar at column 0, for one worker (a bar per user) and two (a
// queue bar). A notes.txt among the folders is not an ERROR (nor a
// WARN) line.
func TestRunProgressOnTerminal(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 (package python3) is needed: %v", err)
	}
	for _, workers := range []string{"1", "2"} {
		t.Run("workers="+workers, func(t *testing.T) {
			data := t.TempDir()
			users := []string{"ivy", "jon", "kim"}
			trees := migWorld(t, data, 20<<10, append(users, "lee")...)
			for i, u := range users {
				var b strings.Builder
				for j := range 300 + 100*i {
					fmt.Fprintf(&b, "From x@example.net Sat Jan  3 01:05:34 2009\n%s%s\n", mailWithID(fmt.Sprintf("%s-%d", u, j)), strings.Repeat("filler line of the body\n", 20))
				}
				must(t, os.WriteFile(filepath.Join(data, "old", "spool", u), []byte(b.String()), 0o600))
			}
			must(t, os.WriteFile(filepath.Join(trees["ivy"].Home, "mail", "notes.txt"), []byte("call the plumber\nbuy milk\n"), 0o600))
			// lee's INBOX is a FIFO: needs-attention, a WARN line.
			spool := filepath.Join(data, "old", "spool", "lee")
			must(t, os.Remove(spool))
			must(t, syscall.Mkfifo(spool, 0o600))
			mustMailmig(t, data, append([]string{"enqueue", "--folders"}, append(users, "lee")...)...)
			cmd := mailmigCmd(data, "run", "--once", "--workers", workers)
			py := exec.Command("python3", append([]string{"-c", ptyRun, cmd.Path}, cmd.Args[1:]...)...)
			py.Env = cmd.Env
			var out, errb bytes.Buffer
			py.Stdout, py.Stderr = &out, &errb
			err := py.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("pty: %v %s", err, errb.String())
			}
			checkBarOutput(t, "run on a terminal", out.String(), "ivy: copied, confirmation sent", "jon: copied, confirmation sent",
				"kim: copied, confirmation sent", "pass: ")
			if !strings.Contains(out.String(), "level=WARN") {
				t.Errorf("no WARN line for lee's FIFO:\n%q", out.String())
			}
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "notes.txt") && (strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN")) {
					t.Errorf("notes.txt logged as a problem: %q", l)
				}
			}
			for _, u := range users {
				if st := queueStates(t, data)[u]; st != "confirm" {
					t.Errorf("%s: %q", u, st)
				}
			}
		})
	}
	// The same without a terminal: notes.txt is no ERROR or WARN (the
	// converter lists it as left behind; the run logs nothing about it).
	data := t.TempDir()
	trees := migWorld(t, data, 20<<10, "max")
	must(t, os.WriteFile(filepath.Join(trees["max"].Home, "mail", "notes.txt"), []byte("call the plumber\n"), 0o600))
	mustMailmig(t, data, "enqueue", "--folders", "max")
	cmd := mailmigCmd(data, "run", "--once")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Run())
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "level=ERROR") || (strings.Contains(l, "notes.txt") && !strings.Contains(l, "level=INFO")) {
			t.Errorf("a problem logged for a run whose only oddity is notes.txt: %q", l)
		}
	}
}

// TestBarReporterLogsAbove: a log line written while a bar is drawn
// clears the bar, stands on its own line and the bar is drawn again; a
// finished copy leaves its bar at 100 %.
func TestBarReporterLogsAbove(t *testing.T) {
	for _, workers := range []int{1, 2} {
		var w bytes.Buffer
		b := newBarReporter(&w, workers)
		b.users = 2
		b.Begin("ben", 5000)
		b.Update("ben", 1000, 2)
		b.Write([]byte("time=y level=WARN msg=\"more\""))
		b.End("ben", state.NeedsAttention, errors.New("FIFO"))
		b.Begin("ann", 10000)
		b.Update("ann", 4000, 10)
		b.Write([]byte("time=x level=WARN msg=\"something\"\n"))
		b.Update("ann", 9000, 20) // the sources were larger than read
		b.End("ann", state.Confirm, nil)
		b.Close()
		w.WriteString("pass: done\n")
		checkBarOutput(t, fmt.Sprintf("workers=%d", workers), w.String(), "time=x level=WARN", "time=y level=WARN", "ann: copied, confirmation sent", "ben: needs-attention: FIFO", "pass: done")
	}
}
