package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// Log levels in the journal. systemd connects a service's stderr to
// journald and says so in $JOURNAL_STREAM ("DEVICE:INODE" of that stream,
// systemd.exec(5)); journald reads a "<N>" syslog priority at the start
// of each line (SyslogLevelPrefix=, on by default; sd-daemon(3)). When
// stderr is that stream, every log line gets the prefix of its level, so
// `journalctl -p warning -u mailmig-serve` shows warnings and errors only.
// Anywhere else (a terminal, a test, a pipe) lines are left as they are.

// journalStream reports whether stderr is the journal's stream.
func journalStream() bool {
	want := os.Getenv("JOURNAL_STREAM")
	if want == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(2, &st); err != nil {
		return false
	}
	return want == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// syslogPrefix is sd-daemon(3)'s SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG.
func syslogPrefix(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// prefixWriter writes each record (one Write call of a slog handler)
// after the prefix of its level.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// journalHandler sets the writer's prefix for each record; mu keeps
// prefix and write together across the handler and its WithAttrs
// children.
type journalHandler struct {
	h  slog.Handler
	w  *prefixWriter
	mu *sync.Mutex
}

func (j journalHandler) Enabled(ctx context.Context, l slog.Level) bool { return j.h.Enabled(ctx, l) }

func (j journalHandler) Handle(ctx context.Context, r slog.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.prefix = syslogPrefix(r.Level)
	return j.h.Handle(ctx, r)
}

func (j journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return journalHandler{h: j.h.WithAttrs(as), w: j.w, mu: j.mu}
}

func (j journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{h: j.h.WithGroup(name), w: j.w, mu: j.mu}
}

// newHandler is the handler of newLogger: mk builds the text or JSON
// handler on the writer it is given.
func newHandler(w io.Writer, journal bool, mk func(io.Writer) slog.Handler) slog.Handler {
	if !journal {
		return mk(w)
	}
	pw := &prefixWriter{w: w}
	return journalHandler{h: mk(pw), w: pw, mu: &sync.Mutex{}}
}
