package mbox

import "bytes"

// Format is what a folder file holds, told from its first bytes the way
// c-client's drivers tell it.
type Format int

// The formats Sniff tells apart.
const (
	// NotMail: c-client would not open the file as a mailbox (its "phile"
	// driver would show the whole file as one made-up message).
	NotMail Format = iota
	// Empty: an empty file, an empty mailbox for c-client.
	Empty
	// Unix: a UW-IMAP mbox (From_ lines).
	Unix
	// MMDF: ^A^A^A^A delimited messages.
	MMDF
	// MBX: UW-IMAP's mbx format (migrate/mbx).
	MBX
	// MIX: a directory in c-client's mix format (migrate/mix); never
	// returned by Sniff.
	MIX
)

func (f Format) String() string {
	switch f {
	case Empty:
		return "empty"
	case Unix:
		return "mbox"
	case MMDF:
		return "mmdf"
	case MBX:
		return "mbx"
	case MIX:
		return "mix"
	}
	return "not mail"
}

// SniffSize is how much of a file Sniff needs (c-client looks at its
// first 1 KiB).
const SniffSize = 4096

// Sniff tells the format from the first bytes of a file (head, at most
// SniffSize; all of the file if it is shorter).
func Sniff(head []byte) Format {
	if len(head) == 0 {
		return Empty
	}
	if bytes.HasPrefix(head, []byte("*mbx*\r\n")) {
		return MBX // c-client tries its mbx driver before mmdf and unix
	}
	k := 0
	last := byte('\n')
	for k < len(head) && (head[k] == '\n' || head[k] == '\r' || head[k] == ' ' || head[k] == '\t') {
		last = head[k]
		k++
	}
	if last != '\n' {
		return NotMail
	}
	line := head[k:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i+1]
	}
	switch {
	case isMMDF(line):
		if k > 0 {
			return NotMail // c-client's mmdf driver wants the delimiter at byte 0
		}
		return MMDF
	case bytes.HasSuffix(line, []byte("\n")) || len(head) < SniffSize:
		if _, _, _, ok := validFrom(line); ok {
			return Unix
		}
	}
	if k == len(head) {
		return Empty // white space only: no message (c-client: an empty mailbox)
	}
	return NotMail
}
