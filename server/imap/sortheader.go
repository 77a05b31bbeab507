package imap

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"

	"mailmig/mailstore"
)

// The header fields the sort/thread key cache needs (sortcache.go), read
// without building a whole textproto.Header: filling the cache of a
// 100,000-message folder otherwise allocates some 10 KB of garbage a
// message (a 4 KiB bufio.Reader, every field's key and value), which
// sets the heap (and so the RSS) the process keeps afterwards. The
// reading follows go-message's textproto.ReadHeader step by step (line
// continuation, a malformed line ends the header with the fields before
// it, the first field of a name counts, values unfolded the same way),
// so the values are the ones h.Get gives; FuzzSortHeader compares them.

// sortHeader holds the values of the fields SORT (DATE) and THREAD use.
type sortHeader struct {
	date, messageID, references, inReplyTo, subject string
}

// sortFieldNames are the fields of sortHeader, lower case.
var sortFieldNames = [...]string{"date", "message-id", "references", "in-reply-to", "subject"}

// set stores the value of field i unless it was set (the first counts).
func (sh *sortHeader) set(i int, v string, have *[len(sortFieldNames)]bool) {
	if have[i] {
		return
	}
	have[i] = true
	switch i {
	case 0:
		sh.date = v
	case 1:
		sh.messageID = v
	case 2:
		sh.references = v
	case 3:
		sh.inReplyTo = v
	case 4:
		sh.subject = v
	}
}

// sortFieldIndex is the index of a field name in sortFieldNames, or -1
// (ASCII case-insensitive: the name's bytes are 33-126 here, where that
// is what textproto.CanonicalMIMEHeaderKey's equality means).
func sortFieldIndex(key []byte) int {
	for i, n := range sortFieldNames {
		if len(key) != len(n) {
			continue
		}
		eq := true
		for j := range key {
			c := key[j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != n[j] {
				eq = false
				break
			}
		}
		if eq {
			return i
		}
	}
	return -1
}

// readSortHeader reads a header from r as textproto.ReadHeader does and
// returns the sortHeader fields; line is a scratch buffer, returned for
// reuse.
func readSortHeader(r *bufio.Reader, line []byte) (sortHeader, []byte) {
	var sh sortHeader
	var have [len(sortFieldNames)]bool
	// The first line cannot start with a leading space.
	if buf, err := r.Peek(1); err == nil && isWSP(buf[0]) {
		return sh, line
	}
	for {
		kv, err := readContinuedLine(r, line[:0])
		if cap(kv) > cap(line) {
			line = kv[:0]
		}
		if len(kv) == 0 {
			return sh, line
		}
		i := bytes.IndexByte(kv, ':')
		if i < 0 {
			return sh, line
		}
		key := trimWSP(kv[:i])
		for _, c := range key {
			if c < 33 || c > 126 || c == ':' {
				return sh, line
			}
		}
		if len(key) == 0 {
			continue
		}
		if f := sortFieldIndex(key); f >= 0 && !have[f] {
			sh.set(f, unfoldValue(kv[i+1:]), &have)
		}
		if err != nil {
			return sh, line
		}
	}
}

// readContinuedLine is go-message's readContinuedLineSlice appending to
// line: a line and its continuation lines, each followed by CRLF.
func readContinuedLine(r *bufio.Reader, line []byte) ([]byte, error) {
	line, err := readWholeLine(r, line)
	if err == io.EOF && len(line) == 0 {
		return line, nil
	} else if err != nil {
		return line[:0], err
	}
	if len(line) == 0 {
		return line, nil
	}
	line = append(line, '\r', '\n')
	for {
		c, err := r.ReadByte()
		if err != nil {
			break
		}
		r.UnreadByte()
		if !isWSP(c) {
			break
		}
		line, err = readWholeLine(r, line)
		if err != nil {
			break
		}
		line = append(line, '\r', '\n')
	}
	return line, nil
}

// readWholeLine appends a line without its end to line.
func readWholeLine(r *bufio.Reader, line []byte) ([]byte, error) {
	for {
		l, more, err := r.ReadLine()
		line = append(line, l...)
		if err != nil || !more {
			return line, err
		}
	}
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func trimWSP(s []byte) []byte {
	i := 0
	for i < len(s) && isWSP(s[i]) {
		i++
	}
	n := len(s)
	for n > i && isWSP(s[n-1]) {
		n--
	}
	return s[i:n]
}

// unfoldValue is go-message's trimAroundNewlines: the pieces between
// newlines, without a trailing CR and surrounding blanks, joined by a
// space; empty pieces dropped.
func unfoldValue(v []byte) string {
	var b strings.Builder
	b.Grow(len(v))
	for {
		i := bytes.IndexByte(v, '\n')
		piece := v
		if i >= 0 {
			piece = v[:i]
		}
		if len(piece) > 0 && piece[len(piece)-1] == '\r' {
			piece = piece[:len(piece)-1]
		}
		if piece = trimWSP(piece); len(piece) > 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.Write(piece)
		}
		if i < 0 {
			return b.String()
		}
		v = v[i+1:]
	}
}

// headerReader is a pooled reader and scratch line for readSortHeaderOf.
type headerReader struct {
	br   *bufio.Reader
	line []byte
}

var headerReaders = sync.Pool{New: func() any { return &headerReader{br: bufio.NewReader(nil)} }}

// readSortHeaderOf reads the sortHeader of a message (at most
// maxSortHeader bytes of it, as readHeaderOf).
func readSortHeaderOf(f *mailstore.Folder, mi mailstore.MessageInfo) (sortHeader, error) {
	fh, err := f.OpenMessage(mi)
	if err != nil {
		return sortHeader{}, err
	}
	defer fh.Close()
	hr := headerReaders.Get().(*headerReader)
	lr := io.LimitedReader{R: fh, N: maxSortHeader}
	hr.br.Reset(&lr)
	sh, line := readSortHeader(hr.br, hr.line)
	hr.br.Reset(nil)
	hr.line = line[:0]
	if cap(hr.line) > 64<<10 {
		hr.line = nil
	}
	headerReaders.Put(hr)
	return sh, nil
}
