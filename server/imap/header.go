package imap

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// readHeaderLenient reads a message header up to the empty line that
// ends it, as dovecot's header parser does on real mail: a line that is
// not a field ("From test Tue Dec  1 08:49:28 2020" inside the header
// of a message cut from an mbox, a line without a colon) is skipped
// instead of ending the header, so ENVELOPE, SEARCH and BODYSTRUCTURE
// still see the fields after it (go-message's ReadHeader fails on it and
// the whole message then looked header-less). Folded lines stay in the
// value with their CRLF, as go-message keeps them.
func readHeaderLenient(br *bufio.Reader) (textproto.Header, error) {
	var fields [][]byte
	var key string
	var val []byte
	total := 0
	flush := func() {
		if key != "" {
			fields = append(fields, []byte(key+":"+string(val)+"\r\n"))
		}
		key, val = "", nil
	}
	// go-message keeps fields last first (Get finds the first one in
	// the message); AddRaw puts a field on top, so add them backwards.
	header := func() textproto.Header {
		var h textproto.Header
		for i := len(fields) - 1; i >= 0; i-- {
			h.AddRaw(fields[i])
		}
		return h
	}
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: keep reading it.
			rest, err2 := br.ReadBytes('\n')
			line, err = append(append([]byte(nil), line...), rest...), err2
		}
		total += len(line)
		if total > maxRawHeader {
			flush()
			return header(), nil
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			flush()
			if err != nil && err != io.EOF {
				return header(), err
			}
			return header(), nil
		}
		switch {
		case trimmed[0] == ' ' || trimmed[0] == '\t':
			if key != "" {
				val = append(append(val, "\r\n"...), trimmed...)
			}
		default:
			flush()
			if i := bytes.IndexByte(trimmed, ':'); i > 0 {
				if k := strings.TrimRight(string(trimmed[:i]), " \t"); validFieldName(k) {
					key, val = k, append([]byte(nil), trimmed[i+1:]...)
				}
			}
		}
		if err != nil {
			flush()
			if err == io.EOF {
				return header(), nil
			}
			return header(), err
		}
	}
}

// validFieldName: RFC 5322 §3.6.8 ftext, printable US-ASCII but ':'.
func validFieldName(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f {
			return false
		}
	}
	return k != ""
}
