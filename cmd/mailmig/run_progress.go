package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"mailmig/state"
)

// logReporter reports the runner's progress as structured log lines: one
// at the start and end of each copy and one at most every 5 seconds in
// between.
type logReporter struct {
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]time.Time
	tot  map[string]int64
}

func (l *logReporter) Begin(user string, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.tot = map[string]time.Time{}, map[string]int64{}
	}
	l.last[user], l.tot[user] = time.Now(), total
	l.log.Info("copy started", "user", user, "source_bytes", total)
}

func (l *logReporter) Update(user string, bytes, messages int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.last[user]) < 5*time.Second {
		return
	}
	l.last[user] = time.Now()
	l.log.Info("copying", "user", user, "bytes", bytes, "messages", messages, "source_bytes", l.tot[user])
}

func (l *logReporter) End(user string, st state.State, err error) {
	if err != nil {
		l.log.Warn("step ended", "user", user, "state", st, "err", err)
		return
	}
	l.log.Info("step ended", "user", user, "state", st)
}

// barReporter draws progress bars on a terminal: one per user being
// copied (bytes, with the message count in its description) when one
// worker runs, and one for the whole queue (users finished) otherwise.
// It owns the terminal: log lines written through it (it is an
// io.Writer) go above the bar — the bar line is cleared, the line
// written, the bar drawn again — and a finished copy's bar is left at
// 100 % on its own line.
type barReporter struct {
	w       io.Writer
	workers int
	users   int // users with work in the queue (0: unknown)
	started int
	mu      sync.Mutex
	queue   *progressbar.ProgressBar
	user    map[string]*progressbar.ProgressBar
	bytes   map[string]int64
	began   map[string]bool
	done    int
	drawn   time.Time
	closed  bool
}

func newBarReporter(w io.Writer, workers int) *barReporter {
	return &barReporter{w: w, workers: workers, user: map[string]*progressbar.ProgressBar{}, bytes: map[string]int64{}, began: map[string]bool{}}
}

// newBar makes a bar that draws whenever asked (barReporter throttles).
func (b *barReporter) newBar(max int64, desc string, bytes bool) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(0),
	)
}

func (b *barReporter) Begin(user string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started++
	b.began[user] = true
	if b.workers == 1 {
		b.user[user] = b.newBar(max(total, 1), b.prefix()+user, true)
		b.user[user].RenderBlank()
		return
	}
	b.queueBar().Describe(b.queueText(user, 0))
	b.redraw()
}

func (b *barReporter) queueBar() *progressbar.ProgressBar {
	if b.queue == nil {
		n := int64(b.users)
		if n <= 0 {
			n = -1 // unknown: a spinner
		}
		b.queue = b.newBar(n, "queue", false)
	}
	return b.queue
}

func (b *barReporter) queueText(user string, messages int64) string {
	return fmt.Sprintf("%squeue: %d copied; %s %d msgs", b.prefix(), b.done, user, messages)
}

func (b *barReporter) Update(user string, bytes, messages int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bytes[user] = bytes
	if bar := b.user[user]; bar != nil {
		bar.Describe(fmt.Sprintf("%s%s %d msgs", b.prefix(), user, messages))
	} else {
		b.queueBar().Describe(b.queueText(user, messages))
	}
	if time.Since(b.drawn) >= 100*time.Millisecond {
		b.redraw()
	}
}

// prefix is "[k/N] ": the k-th user copied in this run of N with work.
func (b *barReporter) prefix() string {
	if b.users <= 0 {
		return ""
	}
	return fmt.Sprintf("[%d/%d] ", b.started, b.users)
}

// redraw draws the live bars at their current values. Called with mu held.
func (b *barReporter) redraw() {
	b.drawn = time.Now()
	for u, bar := range b.user {
		bar.Set64(min(b.bytes[u], bar.GetMax64()))
	}
	if b.queue != nil && !b.queue.IsFinished() {
		b.queue.Add(0)
	}
}

// clear erases the live bars' line. Called with mu held.
func (b *barReporter) clear() {
	for _, bar := range b.user {
		bar.Clear()
	}
	if b.queue != nil && !b.queue.IsFinished() {
		b.queue.Clear()
	}
}

// Write puts a log line above the bars.
func (b *barReporter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clear()
	if _, err := b.w.Write(p); err != nil {
		return 0, err
	}
	if len(p) > 0 && p[len(p)-1] != '\n' {
		io.WriteString(b.w, "\n")
	}
	b.redraw()
	return len(p), nil
}

func (b *barReporter) End(user string, st state.State, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bar := b.user[user]; bar != nil {
		// The bar stays on its line: 100 % when the copy read all of
		// it, where it stopped otherwise.
		delete(b.user, user)
		if err == nil {
			bar.Finish()
		} else {
			bar.Set64(min(b.bytes[user], bar.GetMax64()))
			bar.Exit()
		}
		io.WriteString(b.w, "\n")
	} else {
		b.clear()
	}
	switch {
	case err != nil:
		fmt.Fprintf(b.w, "%s: %s: %v\n", user, st, err)
	case st == state.Done:
		fmt.Fprintf(b.w, "%s: done\n", user)
	case st == state.Confirm:
		fmt.Fprintf(b.w, "%s: copied, confirmation sent\n", user)
	}
	if b.began[user] {
		delete(b.began, user)
		if b.queue != nil {
			b.done++
			b.queue.Describe(fmt.Sprintf("queue: %d copied", b.done))
			b.queue.Add(1)
			if b.queue.IsFinished() {
				io.WriteString(b.w, "\n") // leave the 100 % line
			}
		}
	}
	b.redraw()
}

// Close ends the run's bars: the pass is over, so the queue bar shows
// 100 %; its line is ended so what follows starts at column 0.
func (b *barReporter) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	if b.queue == nil || b.queue.IsFinished() {
		return
	}
	if b.users > 0 {
		b.queue.Describe(fmt.Sprintf("queue: %d copied", b.done))
		b.queue.Finish()
		io.WriteString(b.w, "\n")
		return
	}
	b.queue.Clear()
}
