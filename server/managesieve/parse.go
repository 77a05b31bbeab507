package managesieve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Command is one client command (RFC 5804 §4): its name, upper-cased,
// and its arguments, each an atom, a number or a string with quoting
// and literal framing removed.
type Command struct {
	Name string
	Args []string
}

// Parse errors. A *SyntaxError leaves the reader at the start of the next
// line; the other errors leave the stream unusable.
var (
	ErrLineTooLong    = errors.New("managesieve: line too long")
	ErrLiteralTooLong = errors.New("managesieve: literal too long")
)

// SyntaxError is a malformed command; the session answers NO and goes on.
type SyntaxError struct {
	Msg string
}

func (e *SyntaxError) Error() string { return "managesieve: syntax error: " + e.Msg }

// Reader reads commands from a client.
type Reader struct {
	r *bufio.Reader
	// MaxLine bounds a command line outside literals (8 KiB if zero).
	MaxLine int
	// MaxLiteral bounds one literal (1 MiB if zero).
	MaxLiteral int64
	// OnSyncLiteral, if set, is called before a synchronizing literal
	// ({n} without '+') is read, to send the continuation.
	OnSyncLiteral func() error
}

// NewReader returns a Reader on r.
func NewReader(r *bufio.Reader) *Reader { return &Reader{r: r} }

func (p *Reader) maxLine() int {
	if p.MaxLine > 0 {
		return p.MaxLine
	}
	return 8 << 10
}

func (p *Reader) maxLiteral() int64 {
	if p.MaxLiteral > 0 {
		return p.MaxLiteral
	}
	return 1 << 20
}

// ReadCommand reads one command. Empty lines are skipped.
func (p *Reader) ReadCommand() (*Command, error) {
	for {
		args, err := p.readItems()
		if err != nil {
			return nil, err
		}
		if len(args) == 0 {
			continue
		}
		if args[0].kind != itemAtom {
			return nil, &SyntaxError{Msg: "command name expected"}
		}
		cmd := &Command{Name: strings.ToUpper(args[0].s)}
		for _, a := range args[1:] {
			cmd.Args = append(cmd.Args, a.s)
		}
		return cmd, nil
	}
}

// ReadString reads one line holding a single string (the client's
// answer to a SASL challenge, RFC 5804 §2.1). An unquoted "*" aborts
// and is returned as the atom "*".
func (p *Reader) ReadString() (s string, atom bool, err error) {
	items, err := p.readItems()
	if err != nil {
		return "", false, err
	}
	if len(items) != 1 {
		return "", false, &SyntaxError{Msg: "one string expected"}
	}
	return items[0].s, items[0].kind == itemAtom, nil
}

type itemKind int

const (
	itemAtom itemKind = iota
	itemString
)

type item struct {
	kind itemKind
	s    string
}

// readLine reads up to and including LF; it returns the line without
// CRLF/LF. Overlong lines are consumed and reported.
func (p *Reader) readLine() (string, error) {
	var b []byte
	for {
		frag, err := p.r.ReadSlice('\n')
		if len(b)+len(frag) > p.maxLine()+2 {
			if err == nil || errors.Is(err, bufio.ErrBufferFull) {
				return "", ErrLineTooLong
			}
		}
		b = append(b, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(b) > 0 {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// readItems reads one logical line: items separated by spaces, where a
// literal continues the line after its data.
func (p *Reader) readItems() ([]item, error) {
	var items []item
	line, err := p.readLine()
	if err != nil {
		return nil, err
	}
	total := len(line)
	for {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			return items, nil
		}
		switch c := line[0]; {
		case c == '"':
			s, rest, err := parseQuoted(line)
			if err != nil {
				return nil, err
			}
			items = append(items, item{itemString, s})
			line = rest
		case c == '{':
			n, sync, err := parseLiteralHeader(line)
			if err != nil {
				return nil, err
			}
			if n > p.maxLiteral() {
				return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrLiteralTooLong, n, p.maxLiteral())
			}
			if sync && p.OnSyncLiteral != nil {
				if err := p.OnSyncLiteral(); err != nil {
					return nil, err
				}
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(p.r, buf); err != nil {
				return nil, fmt.Errorf("managesieve: read literal of %d bytes: %w", n, err)
			}
			items = append(items, item{itemString, string(buf)})
			// The command goes on after the literal.
			next, err := p.readLine()
			if err != nil {
				return nil, err
			}
			total += len(next)
			if total > p.maxLine() {
				return nil, ErrLineTooLong
			}
			if next != "" && next[0] != ' ' {
				return nil, &SyntaxError{Msg: "space or end of line expected after literal"}
			}
			line = next
		case isAtomChar(c):
			i := 0
			for i < len(line) && isAtomChar(line[i]) {
				i++
			}
			if i < len(line) && line[i] != ' ' {
				return nil, &SyntaxError{Msg: fmt.Sprintf("unexpected %q", line[i])}
			}
			items = append(items, item{itemAtom, line[:i]})
			line = line[i:]
		default:
			return nil, &SyntaxError{Msg: fmt.Sprintf("unexpected %q", c)}
		}
	}
}

// parseQuoted parses a quoted string at the start of s (RFC 5804 §4:
// "\" escapes only "\" and DQUOTE).
func parseQuoted(s string) (val, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			rest = s[i+1:]
			if rest != "" && rest[0] != ' ' {
				return "", "", &SyntaxError{Msg: "space expected after quoted string"}
			}
			return b.String(), rest, nil
		case '\\':
			i++
			if i == len(s) || (s[i] != '\\' && s[i] != '"') {
				return "", "", &SyntaxError{Msg: "bad escape in quoted string"}
			}
			b.WriteByte(s[i])
		case '\r', '\n', 0:
			return "", "", &SyntaxError{Msg: "control character in quoted string"}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", &SyntaxError{Msg: "unterminated quoted string"}
}

// parseLiteralHeader parses "{N+}" or "{N}" which must end the line.
func parseLiteralHeader(s string) (n int64, sync bool, err error) {
	if !strings.HasSuffix(s, "}") {
		return 0, false, &SyntaxError{Msg: "literal must end the line"}
	}
	num := s[1 : len(s)-1]
	sync = true
	if strings.HasSuffix(num, "+") {
		num, sync = num[:len(num)-1], false
	}
	if num == "" || len(num) > 10 || strings.TrimLeft(num, "0123456789") != "" {
		return 0, false, &SyntaxError{Msg: "bad literal length"}
	}
	n, err = strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, false, &SyntaxError{Msg: "bad literal length"}
	}
	return n, sync, nil
}

func isAtomChar(c byte) bool {
	// RFC 5804 §4 atoms are IMAP-like: no specials, no controls, 7-bit.
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`(){}"\%*]`, rune(c)) || c == '*'
}
