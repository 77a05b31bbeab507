package delivery

import (
	"bytes"
	"testing"

	"mailmig/server/msgspool"
	"mailmig/server/sieve"
)

func TestApplyHeaderEdits(t *testing.T) {
	const m = "A: 1\r\nB: two\r\n  folded\r\nA: 3\r\nReceived: r\r\n\r\nbody\r\n"
	tests := []struct {
		name  string
		edits []sieve.HeaderEdit
		want  string
	}{
		{"add first", []sieve.HeaderEdit{{Action: "add", FieldName: "X", Value: "v"}}, "X: v\r\n" + m},
		{"add last", []sieve.HeaderEdit{{Action: "add", FieldName: "X", Value: "v", Last: true}},
			"A: 1\r\nB: two\r\n  folded\r\nA: 3\r\nReceived: r\r\nX: v\r\n\r\nbody\r\n"},
		{"delete all", []sieve.HeaderEdit{{Action: "delete", FieldName: "a"}},
			"B: two\r\n  folded\r\nReceived: r\r\n\r\nbody\r\n"},
		{"delete folded", []sieve.HeaderEdit{{Action: "delete", FieldName: "B"}},
			"A: 1\r\nA: 3\r\nReceived: r\r\n\r\nbody\r\n"},
		{"delete index", []sieve.HeaderEdit{{Action: "delete", FieldName: "A", Index: 2}},
			"A: 1\r\nB: two\r\n  folded\r\nReceived: r\r\n\r\nbody\r\n"},
		{"delete index last", []sieve.HeaderEdit{{Action: "delete", FieldName: "A", Index: 2, Last: true}},
			"B: two\r\n  folded\r\nA: 3\r\nReceived: r\r\n\r\nbody\r\n"},
		{"delete by value", []sieve.HeaderEdit{{Action: "delete", FieldName: "A", Value: "3"}},
			"A: 1\r\nB: two\r\n  folded\r\nReceived: r\r\n\r\nbody\r\n"},
		{"received protected", []sieve.HeaderEdit{{Action: "delete", FieldName: "Received"}}, m},
		{"newline in value", []sieve.HeaderEdit{{Action: "add", FieldName: "X", Value: "a\r\nB: injected"}}, "X: a B: injected\r\n" + m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(editHeader(t, []byte(m), tt.edits)); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	lf := "A: 1\nB: 2\n\nbody\n"
	if got := string(editHeader(t, []byte(lf), []sieve.HeaderEdit{{Action: "add", FieldName: "X", Value: "v"}})); got != "X: v\n"+lf {
		t.Errorf("LF message: %q", got)
	}
}

// editHeader is applyHeaderEdits on m, read back; m is spooled to a
// file beyond its first bytes, as delivery sees a big message.
func editHeader(t *testing.T, m []byte, edits []sieve.HeaderEdit) []byte {
	t.Helper()
	spooled, err := msgspool.Read(bytes.NewReader(m), new(bytes.Buffer), 8, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer spooled.Close()
	head, err := msgspool.HeaderPrefix(spooled)
	if err != nil {
		t.Fatal(err)
	}
	out, err := applyHeaderEdits(spooled, head, edits)
	if err != nil {
		t.Fatal(err)
	}
	b, err := msgspool.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzSplitHeader(f *testing.F) {
	f.Add([]byte("A: 1\r\nB: two\r\n  folded\r\n\r\nbody"))
	f.Add([]byte(" leading fold\nA: 1\n"))
	f.Add([]byte("no colon\n\n"))
	f.Fuzz(func(t *testing.T, m []byte) {
		fields, rest := splitHeader(m)
		var b bytes.Buffer
		for _, fl := range fields {
			b.Write(fl.raw)
		}
		b.Write(rest)
		if !bytes.Equal(b.Bytes(), m) {
			t.Fatalf("split does not round-trip: %q", m)
		}
		// Deleting nothing and adding nothing keeps the message.
		if got := editHeader(t, m, []sieve.HeaderEdit{{Action: "delete", FieldName: "X-None"}}); !bytes.Equal(got, m) {
			t.Fatalf("no-op edit changed the message: %q -> %q", m, got)
		}
	})
}
