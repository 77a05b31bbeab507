package sieve

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"unknown command", "require \"fileinto\";\nfoo;\n", 2, 1, "unknown command 'foo'"},
		{"unsupported extension", "require [\"fileinto\", \"enotify\"];\n", 1, 9, "unknown Sieve capability `enotify'"},
		{"missing require fileinto", "keep;\nfileinto \"x\";\n", 2, 1, "fileinto"},
		{"missing require reject", "reject \"no\";", 1, 1, "unknown command 'reject'"},
		{"missing require ereject", "require \"reject\";\nereject \"no\";", 2, 1, "unknown command 'ereject'"},
		{"reject without text", "require \"reject\";\nreject;", 2, 1, "requires 1 positional argument(s), but 0"},
		{"missing semicolon", "keep;\nkeep\ndiscard;\n", 2, 1, "missing semicolon ';' after keep command"},
		{"unterminated string", "keep;\nif header :is \"a\" \"b {\n", 2, 1, ""},
		{"bad character", "keep;\ndiscard;\n@;\n", 3, 1, "unexpected character"},
		{"bad character column", "keep;\nif true { keep; } @\n", 2, 19, "unexpected character"},
		{"vacation needs require", "vacation \"x\";", 1, 1, "vacation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]byte(tt.src), Options{})
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("Compile: got %v (%T), want *ScriptError", err, err)
			}
			if se.Line != tt.line || (tt.col != 0 && se.Col < tt.col) || (tt.col > 1 && se.Col != tt.col) {
				t.Errorf("position %d:%d, want line %d (col >= %d); err %v", se.Line, se.Col, tt.line, tt.col, se)
			}
			if tt.msg != "" && !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", se.Msg, tt.msg)
			}
			if !strings.HasPrefix(se.Error(), "line ") {
				t.Errorf("Error() = %q, want a line prefix", se.Error())
			}
		})
	}
}

func TestCompileAcceptsEveryExtension(t *testing.T) {
	for _, ext := range Extensions() {
		src := `require "` + ext + `"; keep;`
		if err := Validate([]byte(src)); err != nil {
			t.Errorf("require %q: %v", ext, err)
		}
	}
	if !strings.Contains(Capability(), "fileinto reject ereject") {
		t.Errorf("Capability() = %q", Capability())
	}
	s, err := Compile([]byte(`require ["fileinto", "reject"]; keep;`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Requires(); !slices.Equal(got, []string{"fileinto", "reject"}) {
		t.Errorf("Requires() = %v", got)
	}
}

func runScript(t *testing.T, src, from, to, msg string) *Outcome {
	t.Helper()
	s, err := Compile([]byte(src), Options{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	o, err := s.Execute(context.Background(), &Input{EnvelopeFrom: from, EnvelopeTo: to, Msg: NewMessage([]byte(msg))})
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	return o
}

const testMsg = "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: hello\r\nX-Spam-Level: ******\r\n\r\nbody text\r\n"

func TestExecuteOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		from   string
		check  func(t *testing.T, o *Outcome)
		inboxd bool
	}{
		{"implicit keep", `keep;`, "bob@example.org", nil, true},
		{"discard", `discard;`, "bob@example.org", nil, false},
		{"spam rule", `require "fileinto"; if header :contains "X-Spam-Level" "*****" { fileinto "junk"; }`, "bob@example.org",
			func(t *testing.T, o *Outcome) {
				if !slices.Equal(o.Mailboxes, []string{"junk"}) {
					t.Errorf("mailboxes %v", o.Mailboxes)
				}
			}, false},
		{"reject", `require "reject"; reject "go away ${x}";`, "bob@example.org",
			func(t *testing.T, o *Outcome) {
				if o.Reject == nil || o.Reject.Reason != "go away ${x}" || o.Reject.Extended {
					t.Errorf("reject %+v", o.Reject)
				}
				if len(o.Redirects) != 0 {
					t.Errorf("reject leaked into redirects: %v", o.Redirects)
				}
			}, false},
		{"ereject with variables", `require ["ereject", "variables"]; set "who" "Alice"; ereject "${who} is away";`, "bob@example.org",
			func(t *testing.T, o *Outcome) {
				if o.Reject == nil || o.Reject.Reason != "Alice is away" || !o.Reject.Extended {
					t.Errorf("reject %+v", o.Reject)
				}
			}, false},
		{"vacation annotated", `require "vacation"; vacation :days 3 :addresses ["a@x", "b@y"] :handle "h1" "gone";`, "bob@example.org",
			func(t *testing.T, o *Outcome) {
				if len(o.Vacations) != 1 {
					t.Fatalf("vacations %+v", o.Vacations)
				}
				v := o.Vacations[0]
				if v.Handle != "h1" || v.SubjectGiven || v.Days != 3 || !v.DaysGiven || v.Body != "gone" ||
					!slices.Equal(v.Addresses, []string{"a@x", "b@y"}) || v.Sender != "bob@example.org" {
					t.Errorf("vacation %+v", v)
				}
			}, true},
		{"vacation null sender", `require "vacation"; vacation :subject "s" "gone";`, "",
			func(t *testing.T, o *Outcome) {
				if len(o.Vacations) != 0 {
					t.Errorf("vacation for the null sender: %+v", o.Vacations)
				}
			}, true},
		{"redirect copy", `require "copy"; redirect :copy "carol@example.net";`, "bob@example.org",
			func(t *testing.T, o *Outcome) {
				if !slices.Equal(o.Redirects, []string{"carol@example.net"}) {
					t.Errorf("redirects %v", o.Redirects)
				}
			}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := runScript(t, tt.src, tt.from, "alice@example.com", testMsg)
			if o.KeepsMessage() != tt.inboxd {
				t.Errorf("KeepsMessage() = %v, want %v (%+v)", o.KeepsMessage(), tt.inboxd, o)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestNewMessage(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		key     string
		want    []string
		body    string
		hasBody bool
	}{
		{"crlf", "A: 1\r\nB: 2\r\n\r\nbody", "b", []string{"2"}, "body", true},
		{"lf folded", "Subject: a\n  b\nX: y\n\nz\n", "SUBJECT", []string{"a  b"}, "z\n", true},
		{"repeated", "R: 1\nR: 2\n\n", "r", []string{"1", "2"}, "", true},
		{"no body", "A: 1\n", "a", []string{"1"}, "", false},
		{"garbage line ends header", "A: 1\nnot a header\nB: 2\n", "b", nil, "not a header\nB: 2\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMessage([]byte(tt.raw))
			got, _ := m.HeaderGet(tt.key)
			if !slices.Equal(got, tt.want) {
				t.Errorf("HeaderGet(%q) = %q, want %q", tt.key, got, tt.want)
			}
			b, has, _ := m.BodyRaw()
			if string(b) != tt.body || has != tt.hasBody {
				t.Errorf("body %q %v, want %q %v", b, has, tt.body, tt.hasBody)
			}
			if m.MessageSize() != len(tt.raw) {
				t.Errorf("size %d", m.MessageSize())
			}
		})
	}
}

func FuzzCompile(f *testing.F) {
	f.Add([]byte(`require ["fileinto", "reject"]; if header :contains "X-Spam-Level" "*****" { fileinto "junk"; } else { reject "x"; }`))
	f.Add([]byte("require \"vacation\";\nvacation :days 1 :subject \"s\" text:\nbody\n.\n;"))
	f.Add([]byte(`require ["variables", "editheader"]; set "a" "b"; addheader "X-A" "${a}"; deleteheader "X-B";`))
	f.Add([]byte(`require ["include", "variables"]; global "g"; include :once :optional "x"; return;`))
	f.Add([]byte(`require ["ihave", "fileinto"]; if ihave "foo" { foo :bar [1, "x"]; } elsif ihave ["fileinto"] { fileinto "a"; } else { error "e"; }`))
	f.Add([]byte(`require ["index", "date", "relational", "comparator-i;ascii-numeric"]; if allof (header :index 2 :last :is "received" "x", date :index 1 :value "ge" :zone "+0100" "date" "year" "2000", address :count "eq" ["to","cc"] "2") { stop; }`))
	f.Add([]byte(`require ["spamtestplus", "virustest", "duplicate", "imap4flags", "variables"]; if spamtest :percent :matches "*" { setflag "f" "${1}"; } if anyof (virustest :is "0", duplicate :seconds 10 :header "message-id", hasflag "f" "x") { keep :flags "${f}"; }`))
	f.Add([]byte("require [\"encoded-character\", \"vacation-seconds\", \"regex\", \"body\"];\nif body :content \"text\" :regex \"a(b\" { discard; }\nvacation :seconds 5 :mime text: # c\n..x ${hex:41} ${unicode:1F600}\n.\n;\n/* comment */"))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Compile(src, Options{})
		if err != nil {
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *ScriptError", err, err)
			}
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, _ = s.Execute(ctx, &Input{EnvelopeFrom: "a@b", EnvelopeTo: "c@d", Msg: NewMessage([]byte(testMsg))})
	})
}

func FuzzNewMessage(f *testing.F) {
	f.Add([]byte(testMsg))
	f.Add([]byte("A: 1\n folded\n\n"))
	f.Add([]byte(":\n\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := NewMessage(raw)
		b, _, _ := m.BodyRaw()
		if len(b) > len(raw)+1 {
			t.Fatalf("body longer than the message: %d > %d", len(b), len(raw))
		}
		if m.MessageSize() != len(raw) {
			t.Fatalf("size %d != %d", m.MessageSize(), len(raw))
		}
	})
}
