package managesieve

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReadCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *Command
		err  string // substring of the error, "" for none
	}{
		{"CAPABILITY\r\n", &Command{Name: "CAPABILITY"}, ""},
		{"logout\n", &Command{Name: "LOGOUT"}, ""},
		{"\r\n\r\nNOOP\r\n", &Command{Name: "NOOP"}, ""},
		{`NOOP "tag"` + "\r\n", &Command{Name: "NOOP", Args: []string{"tag"}}, ""},
		{`HAVESPACE "my script" 1024` + "\r\n", &Command{Name: "HAVESPACE", Args: []string{"my script", "1024"}}, ""},
		{`GETSCRIPT "a\"b\\c"` + "\r\n", &Command{Name: "GETSCRIPT", Args: []string{`a"b\c`}}, ""},
		{"PUTSCRIPT \"s\" {5+}\r\nkeep;\r\n", &Command{Name: "PUTSCRIPT", Args: []string{"s", "keep;"}}, ""},
		{"PUTSCRIPT {1+}\r\nx {3}\r\na\r\n\r\n", &Command{Name: "PUTSCRIPT", Args: []string{"x", "a\r\n"}}, ""},
		{"AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHB3\"\r\n", &Command{Name: "AUTHENTICATE", Args: []string{"PLAIN", "AGFsaWNlAHB3"}}, ""},
		{"SETACTIVE \"\"\r\n", &Command{Name: "SETACTIVE", Args: []string{""}}, ""},
		{"\"QUOTED\"\r\n", nil, "command name expected"},
		{"GETSCRIPT \"open\r\n", nil, "unterminated"},
		{"GETSCRIPT \"bad\\q\"\r\n", nil, "bad escape"},
		{"PUTSCRIPT \"s\" {x+}\r\n", nil, "bad literal length"},
		{"PUTSCRIPT \"s\" {5+} more\r\n", nil, "literal must end the line"},
		{"PUTSCRIPT \"s\" {99999999+}\r\n", nil, "literal too long"},
		{"PUTSCRIPT \"s\" {5+}\r\nab", nil, "read literal"},
		{"GETSCRIPT (x)\r\n", nil, "unexpected"},
		{"GETSCRIPT \"a\"\"b\"\r\n", nil, "space expected"},
		{"NOOP " + strings.Repeat("x", 9000) + "\r\n", nil, "line too long"},
		{"NOOP", nil, "unexpected EOF"},
	} {
		r := NewReader(bufio.NewReaderSize(strings.NewReader(tc.in), 64))
		got, err := r.ReadCommand()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestSyntaxErrorLeavesStreamUsable(t *testing.T) {
	r := NewReader(bufio.NewReader(strings.NewReader("GETSCRIPT \"a\"\"b\"\r\nNOOP\r\n")))
	_, err := r.ReadCommand()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("want SyntaxError, got %v", err)
	}
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Name != "NOOP" {
		t.Fatalf("next command: %+v %v", cmd, err)
	}
}

func TestSyncLiteralContinuation(t *testing.T) {
	calls := 0
	r := NewReader(bufio.NewReader(strings.NewReader("PUTSCRIPT \"s\" {2}\r\nab\r\n")))
	r.OnSyncLiteral = func() error { calls++; return nil }
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Args[1] != "ab" || calls != 1 {
		t.Fatalf("%+v %v calls=%d", cmd, err, calls)
	}
}

// FuzzReadCommand checks the parser never panics, never returns more
// than it was given, and that what it accepts round-trips through the
// server's own string encoding.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"CAPABILITY\r\n",
		"AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHNlY3JldA==\"\r\n",
		"PUTSCRIPT \"vacation\" {38+}\r\nrequire \"fileinto\";\r\nfileinto \"x\";\r\n\r\n",
		"HAVESPACE \"s\" 100\r\n",
		"RENAMESCRIPT \"a\" \"b\\\"c\"\r\n",
		"NOOP {3}\r\nabc\r\n",
		"CHECKSCRIPT {0+}\r\n\r\n",
		"{3+}\r\nabc\r\n",
		"\"\r\n",
		"LISTSCRIPTS\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bufio.NewReader(strings.NewReader(string(data))))
		r.MaxLiteral = 1 << 16
		for i := 0; i < 20; i++ {
			cmd, err := r.ReadCommand()
			if err != nil {
				var se *SyntaxError
				if errors.As(err, &se) {
					continue
				}
				return
			}
			if cmd.Name == "" || cmd.Name != strings.ToUpper(cmd.Name) {
				t.Fatalf("bad command name %q", cmd.Name)
			}
			total := len(cmd.Name)
			for _, a := range cmd.Args {
				total += len(a)
				// Re-encode as the server would and parse again.
				var b strings.Builder
				c := &conn{w: bufio.NewWriter(&b)}
				c.writeString(a)
				c.w.WriteString("\r\n")
				c.w.Flush()
				rr := NewReader(bufio.NewReader(strings.NewReader("X " + b.String())))
				back, err := rr.ReadCommand()
				if err != nil || len(back.Args) != 1 || back.Args[0] != a {
					t.Fatalf("argument %q does not round-trip via %q: %+v %v", a, b.String(), back, err)
				}
			}
			if total > len(data) {
				t.Fatalf("parsed %d bytes out of %d", total, len(data))
			}
		}
	})
}
