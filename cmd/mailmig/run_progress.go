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
// worker runs, and one for the whole queue (users finished) always.
type barReporter struct {
	w       io.Writer
	workers int
	users   int // users with work in the queue (0: unknown)
	started int
	mu      sync.Mutex
	queue   *progressbar.ProgressBar
	user    map[string]*progressbar.ProgressBar
	bytes   map[string]int64
	total   int64
	done    int
}

func newBarReporter(w io.Writer, workers int) *barReporter {
	return &barReporter{w: w, workers: workers, user: map[string]*progressbar.ProgressBar{}, bytes: map[string]int64{}}
}

func (b *barReporter) Begin(user string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += total
	b.started++
	if b.workers == 1 {
		b.user[user] = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.prefix()+user),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		return
	}
	b.queueBar().ChangeMax64(b.total)
}

func (b *barReporter) queueBar() *progressbar.ProgressBar {
	if b.queue == nil {
		b.queue = progressbar.NewOptions64(b.total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription("queue"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
	}
	return b.queue
}

func (b *barReporter) Update(user string, bytes, messages int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bar := b.user[user]; bar != nil {
		bar.Describe(fmt.Sprintf("%s%s %d msgs", b.prefix(), user, messages))
		bar.Set64(bytes)
		return
	}
	delta := bytes - b.bytes[user]
	b.bytes[user] = bytes
	bar := b.queueBar()
	bar.Describe(fmt.Sprintf("queue %s%d done, %s %d msgs", b.prefix(), b.done, user, messages))
	bar.Add64(delta)
}

// prefix is "[k/N] ": the k-th user copied in this run of N with work.
func (b *barReporter) prefix() string {
	if b.users <= 0 {
		return ""
	}
	return fmt.Sprintf("[%d/%d] ", b.started, b.users)
}

func (b *barReporter) End(user string, st state.State, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bar := b.user[user]; bar != nil {
		bar.Finish()
		delete(b.user, user)
	}
	switch {
	case err != nil:
		fmt.Fprintf(b.w, "\n%s: %s: %v\n", user, st, err)
	case st == state.Done:
		b.done++
		fmt.Fprintf(b.w, "\n%s: done\n", user)
	case st == state.Confirm:
		fmt.Fprintf(b.w, "\n%s: copied, confirmation sent\n", user)
	}
}
