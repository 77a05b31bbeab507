// Package pwfile reads the files a Unix site keeps password hashes in:
// shadow(5) (name:hash:lastchg:min:max:warn:inactive:expire:reserved) and
// dovecot's passwd-file (user:password:uid:gid:gecos:home:shell:extra,
// the password optionally prefixed by a {SCHEME}).
//
// A line that cannot be read is reported with the file, line number and
// byte offset and its user is left out; the rest of the file is still
// read, so one bad line does not lock every user out. A later line for a
// user already seen is reported too and the first one kept, as
// getspnam(3) would.
package pwfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Format is the layout of a file.
type Format string

// The formats Parse reads.
const (
	Shadow     Format = "shadow"
	PasswdFile Format = "passwd-file"
)

// Entry is one user's line.
type Entry struct {
	User string
	// Hash is the crypt(3) hash, "" when empty, or what the file says
	// for a locked account ("!", "*", "!$6$...").
	Hash string
	// Expire is the account's expiry (shadow's eighth field); zero when
	// the account does not expire.
	Expire time.Time
	// Line is the 1-based line number.
	Line int
}

// Expired reports whether the account has expired at now.
func (e Entry) Expired(now time.Time) bool {
	return !e.Expire.IsZero() && !now.Before(e.Expire)
}

// LineError describes a line that was not read.
type LineError struct {
	File   string
	Line   int
	Offset int64
	User   string
	Msg    string
}

func (e *LineError) Error() string {
	u := ""
	if e.User != "" {
		u = " (user " + e.User + ")"
	}
	return fmt.Sprintf("%s:%d (byte %d)%s: %s", e.File, e.Line, e.Offset, u, e.Msg)
}

// MaxLine is the longest line read; longer lines are reported.
const MaxLine = 64 << 10

// Parse reads a file of the given format. name is used in the errors.
// It returns the entries by user, the lines it could not read, and an
// error only when the reader itself failed.
func Parse(r io.Reader, name string, format Format) (map[string]Entry, []*LineError, error) {
	if format != Shadow && format != PasswdFile {
		return nil, nil, fmt.Errorf("pwfile: unknown format %q (shadow or passwd-file)", format)
	}
	entries := map[string]Entry{}
	var bad []*LineError
	br := bufio.NewReaderSize(r, 4096)
	var off int64
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(br)
		start := off
		off += int64(len(line))
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return entries, bad, nil
			}
			return entries, bad, fmt.Errorf("%s: %w", name, err)
		}
		fail := func(user, format string, a ...any) {
			bad = append(bad, &LineError{File: name, Line: lineNo, Offset: start, User: user, Msg: fmt.Sprintf(format, a...)})
		}
		text := line
		text = bytes.TrimSuffix(text, []byte("\n"))
		text = bytes.TrimSuffix(text, []byte("\r"))
		if len(line) > MaxLine {
			fail("", "line longer than %d bytes", MaxLine)
			continue
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if format == PasswdFile && text[0] == '#' {
			continue
		}
		e, msg := parseLine(string(text), format)
		if msg != "" {
			fail(e.User, "%s", msg)
			continue
		}
		e.Line = lineNo
		if first, dup := entries[e.User]; dup {
			fail(e.User, "user already defined on line %d; the first line is used", first.Line)
			continue
		}
		entries[e.User] = e
	}
}

// readLine returns the next line with its newline, reading at most
// MaxLine+1 bytes of it into memory (the rest is discarded).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line) <= MaxLine {
			line = append(line, chunk...)
		} else {
			line = append(line[:MaxLine+1], chunk[len(chunk)-1:]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

func parseLine(text string, format Format) (Entry, string) {
	if strings.ContainsRune(text, 0) {
		return Entry{}, "NUL byte in line"
	}
	fields := strings.Split(text, ":")
	e := Entry{User: fields[0]}
	switch {
	case e.User == "":
		return e, "empty user name"
	case e.User[0] == '+' || e.User[0] == '-':
		return e, "NIS compat entry (+/-) is not supported; list the users"
	case strings.ContainsAny(e.User, " \t"):
		return e, "white space in user name"
	case len(fields) < 2:
		return e, "no password field (want user:hash:...)"
	}
	e.Hash = fields[1]
	switch format {
	case Shadow:
		if len(fields) != 9 {
			return e, fmt.Sprintf("shadow line has %d fields, want 9", len(fields))
		}
		if x := fields[7]; x != "" {
			days, err := strconv.ParseInt(x, 10, 32)
			if err != nil || days < 0 {
				return e, fmt.Sprintf("expire field %q is not a day number", x)
			}
			e.Expire = time.Unix(days*86400, 0).UTC()
		}
	case PasswdFile:
		h, msg := stripScheme(e.Hash)
		if msg != "" {
			return e, msg
		}
		e.Hash = h
	}
	return e, ""
}

// stripScheme removes dovecot's {SCHEME} prefix from a passwd-file
// password; only crypt(3) schemes are accepted (a {PLAIN} password in a
// file would be a password in clear text).
func stripScheme(h string) (string, string) {
	if !strings.HasPrefix(h, "{") {
		return h, "" // dovecot's default scheme for passwd-file is CRYPT
	}
	end := strings.IndexByte(h, '}')
	if end < 0 {
		return h, "unterminated {SCHEME} prefix"
	}
	scheme, rest := strings.ToUpper(h[1:end]), h[end+1:]
	want := map[string]string{"CRYPT": "", "MD5-CRYPT": "$1$", "SHA256-CRYPT": "$5$", "SHA512-CRYPT": "$6$", "BLF-CRYPT": "$2"}
	prefix, ok := want[scheme]
	if !ok {
		return "", fmt.Sprintf("password scheme {%s} is not supported (crypt(3) schemes only)", scheme)
	}
	if prefix != "" && !strings.HasPrefix(rest, prefix) && rest != "" && rest[0] != '!' && rest[0] != '*' {
		return "", fmt.Sprintf("{%s} password does not start with %s", scheme, prefix)
	}
	return rest, ""
}
