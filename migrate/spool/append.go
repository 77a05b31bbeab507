package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
)

// FromLineDate is the asctime layout of a From_ line's date.
const FromLineDate = "Mon Jan _2 15:04:05 2006"

// Result describes one append.
type Result struct {
	// Offset is where the From_ line was written (the old file size, plus
	// one when a separating newline had to be added).
	Offset int64
	// OldSize is the file's size before the append.
	OldSize int64
	// Bytes is how many bytes were added to the file.
	Bytes int64
	// LockHeld is how long the spool stayed locked for this append.
	LockHeld time.Duration
	// LockWait is how long it took to get the lock.
	LockWait time.Duration
}

// Format returns msg framed for an mbox: From_ line, the message with CRLF
// turned into LF and body lines starting "From " quoted ">From ", a final
// newline and a blank line. sender "" becomes MAILER-DAEMON.
func Format(sender string, date time.Time, msg []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(msg) + len(msg)/64 + 64)
	_, _ = WriteFormat(&b, sender, date, bytes.NewReader(msg))
	return b.Bytes()
}

// formatBuf is WriteFormat's buffer size (tests make it small).
var formatBuf = 64 << 10

// WriteFormat writes Format(sender, date, the bytes of msg) to w,
// streaming: memory stays bounded whatever the message's size or line
// lengths. It returns the bytes written; an error is msg's or w's.
func WriteFormat(w io.Writer, sender string, date time.Time, msg io.Reader) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, formatBuf)
	bw.WriteString("From ")
	bw.WriteString(fromSender(sender))
	bw.WriteByte(' ')
	bw.WriteString(date.Format(FromLineDate))
	bw.WriteByte('\n')
	br := bufio.NewReaderSize(msg, formatBuf)
	atStart := true    // at the start of a line
	pendingCR := false // a '\r' ended the last piece of a long line
	for {
		seg, err := br.ReadSlice('\n')
		if pendingCR {
			// CRLF across a piece boundary: the CR goes with it.
			if !(len(seg) > 0 && seg[0] == '\n') {
				bw.WriteByte('\r')
			}
			pendingCR = false
		}
		if len(seg) > 0 {
			if atStart && bytes.HasPrefix(seg, []byte("From ")) {
				bw.WriteByte('>')
			}
			switch {
			case seg[len(seg)-1] == '\n':
				line := seg[:len(seg)-1]
				if len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
				bw.Write(line)
				bw.WriteByte('\n')
				atStart = true
			case err == bufio.ErrBufferFull && seg[len(seg)-1] == '\r':
				bw.Write(seg[:len(seg)-1])
				pendingCR = true
				atStart = false
			default:
				bw.Write(seg)
				atStart = false
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			bw.Flush()
			return cw.n, err
		}
	}
	if pendingCR {
		bw.WriteByte('\r')
	}
	if !atStart {
		bw.WriteByte('\n') // the last line had no line end
	}
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fromSender makes the envelope sender safe for a From_ line: one token,
// no whitespace or control characters.
func fromSender(s string) string {
	if s == "" || s == "<>" {
		return "MAILER-DAEMON"
	}
	s = strings.Trim(s, "<>")
	var b strings.Builder
	for _, r := range s {
		if r <= ' ' || unicode.IsSpace(r) || unicode.IsControl(r) {
			b.WriteByte('_')
			continue
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "MAILER-DAEMON"
	}
	return b.String()
}

// testHookAfterWrite, when set by tests, runs after the message bytes were
// written and may fail the append (to exercise the truncate-back path).
var testHookAfterWrite func(path string) error

// Append adds msg to the spool mbox at path under the spool's locks. The
// file is created when missing only with opts.Create (a user without an
// old spool file is then given one). On any failure after the lock was
// taken the file is truncated back to its old size; every error except a
// missing file (fs.ErrNotExist) is a TemporaryError.
func Append(ctx context.Context, path, sender string, date time.Time, msg []byte, opts Options) (Result, error) {
	return AppendFrom(ctx, path, sender, date, bytes.NewReader(msg), opts)
}

// AppendFrom is Append of the message read from msg (streamed: a big
// message is never in memory whole).
func AppendFrom(ctx context.Context, path, sender string, date time.Time, msg io.Reader, opts Options) (Result, error) {
	start := time.Now()
	l, err := Lock(ctx, path, opts)
	if err != nil {
		return Result{}, err
	}
	res, werr := l.AppendFrom(sender, date, msg, opts)
	res.LockWait = l.acquired.Sub(start)
	uerr := l.Unlock()
	res.LockHeld = time.Since(l.acquired)
	if werr != nil {
		return res, werr
	}
	if uerr != nil {
		// The message is written and synced; failing to remove the
		// dot-lock only delays others until it is stale. Report it
		// without making the MTA deliver twice.
		opts.log().Warn("spool: unlock after append", "path", path, "err", uerr)
	}
	return res, nil
}

// Append adds msg to the locked spool (see the package function Append);
// on error the file is truncated back. Use Rollback to take a successful
// append back while the lock is still held (when the other half of a dual
// delivery failed).
func (l *Locked) Append(sender string, date time.Time, msg []byte, opts Options) (Result, error) {
	return l.AppendFrom(sender, date, bytes.NewReader(msg), opts)
}

// AppendFrom is Append of the message read from msg, streamed.
func (l *Locked) AppendFrom(sender string, date time.Time, msg io.Reader, opts Options) (Result, error) {
	var res Result
	err := l.appendLocked(sender, date, msg, opts, &res)
	return res, err
}

// Rollback truncates the spool back to its size before the append that
// returned res. Only valid while the lock taken for that append is held.
func (l *Locked) Rollback(res Result, opts Options) error {
	if err := l.f.Truncate(res.OldSize); err != nil {
		return &TemporaryError{fmt.Errorf("spool: truncate %s back to byte %d: %w", l.path, res.OldSize, err)}
	}
	if !opts.NoFsync {
		if err := l.f.Sync(); err != nil {
			return &TemporaryError{fmt.Errorf("spool: fsync %s after truncating to byte %d: %w", l.path, res.OldSize, err)}
		}
	}
	return nil
}

func (l *Locked) appendLocked(sender string, date time.Time, msg io.Reader, opts Options, res *Result) error {
	f := l.f
	fi, err := f.Stat()
	if err != nil {
		return &TemporaryError{fmt.Errorf("spool: stat %s: %w", l.path, err)}
	}
	size := fi.Size()
	res.OldSize = size
	if err := notMbox(f, size); err != nil {
		return &TemporaryError{fmt.Errorf("spool: %s: %w", l.path, err)}
	}
	l.recordSize(size)
	prefix, err := separator(f, size)
	if err != nil {
		return &TemporaryError{fmt.Errorf("spool: read tail of %s at byte %d: %w", l.path, size, err)}
	}
	fail := func(what string, err error) error {
		terr := f.Truncate(size)
		if terr == nil && !opts.NoFsync {
			terr = f.Sync()
		}
		if terr != nil {
			return &TemporaryError{fmt.Errorf("spool: %s %s at byte %d: %w; truncating back also failed: %v", what, l.path, size, err, terr)}
		}
		return &TemporaryError{fmt.Errorf("spool: %s %s at byte %d (truncated back): %w", what, l.path, size, err)}
	}
	// The framed message is streamed to the file at the old end (never
	// held in memory whole); any failure truncates back.
	n, err := f.WriteAt(prefix, size)
	if err == nil && n != len(prefix) {
		err = io.ErrShortWrite
	}
	var written int64
	if err == nil {
		written, err = WriteFormat(io.NewOffsetWriter(f, size+int64(len(prefix))), sender, date, msg)
	}
	if err != nil {
		return fail("write", err)
	}
	if testHookAfterWrite != nil {
		if err := testHookAfterWrite(l.path); err != nil {
			return fail("write", err)
		}
	}
	if !opts.NoFsync {
		if err := f.Sync(); err != nil {
			return fail("fsync", err)
		}
	}
	res.Offset = size + int64(len(prefix))
	res.Bytes = int64(len(prefix)) + written
	return nil
}

// ErrForeignFormat: the spool is an mbx or MMDF folder (UW-IMAP sites kept
// shared INBOXes in mbx); appending mbox text would corrupt it, so nothing
// is appended (a temporary error: the MTA keeps the message queued).
var ErrForeignFormat = errors.New("the spool is not an mbox file (mbx or MMDF): mailmig appends to mbox spools only; nothing appended")

// notMbox returns ErrForeignFormat for a file starting as mbx or MMDF.
func notMbox(f interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) error {
	if size == 0 {
		return nil
	}
	var head [7]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	h := string(head[:n])
	if strings.HasPrefix(h, "*mbx*\r\n") || strings.HasPrefix(h, "\x01\x01\x01\x01\n") {
		return ErrForeignFormat
	}
	return nil
}

// separator returns what must precede a new From_ line so that it follows
// a blank line: nothing for an empty file or one ending "\n\n", otherwise
// one or two newlines.
func separator(f interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	var tail [2]byte
	off := max(size-2, 0)
	n, err := f.ReadAt(tail[:size-off], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	t := tail[:n]
	switch {
	case bytes.HasSuffix(t, []byte("\n\n")) || (size == 1 && t[0] == '\n'):
		return nil, nil
	case bytes.HasSuffix(t, []byte("\n")):
		return []byte("\n"), nil
	default:
		return []byte("\n\n"), nil
	}
}
