package mbx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"mailmig/migrate/mbox"
)

// build makes an mbx file the way c-client writes one (the tests in
// migrate/convert use files c-client made itself; this one is for
// damaging).
func build(uidv, last uint32, kws []string, msgs ...string) []byte {
	var h bytes.Buffer
	fmt.Fprintf(&h, "*mbx*\r\n%08x%08x\r\n", uidv, last)
	for _, k := range kws {
		h.WriteString(k + "\r\n")
	}
	for i := len(kws); i < 30; i++ {
		h.WriteString("\r\n")
	}
	out := make([]byte, HeaderSize)
	copy(out, h.Bytes())
	copy(out[HeaderSize-10:], "00000000\r\n")
	return append(out, []byte(strings.Join(msgs, ""))...)
}

func msg(uid uint32, flags, kw uint32, text string) string {
	return fmt.Sprintf(" 7-Oct-2009 12:00:00 +0200,%d;%08x%04x-%08x\r\n%s", len(text), kw, flags, uid, text)
}

type got struct {
	UID   uint32
	Flags string
	Kw    string
	Date  string
	Text  string
}

func readAll(in []byte) ([]got, *Reader, error) {
	r := NewReader(bytes.NewReader(in), Options{Name: "box", Size: int64(len(in)), Location: time.UTC})
	var out []got
	for {
		m, err := r.Next()
		if err == io.EOF {
			return out, r, nil
		}
		if err != nil {
			return out, r, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return out, r, err
		}
		out = append(out, got{m.UID, strings.Join(m.Flags, " "), strings.Join(m.Keywords, " "), m.Date.UTC().Format(time.RFC3339), string(b)})
	}
}

func TestReader(t *testing.T) {
	in := build(1234, 9, []string{"Work", "$Label1"},
		msg(3, fSeen|fAnswered, 1, "Subject: a\r\n\r\nA\r\n"),
		msg(5, fExpunged|fSeen, 0, "Subject: gone\r\n\r\nx\r\n"),
		msg(0, fDraft|fFlagged|fDeleted, 3, "Subject: b\r\n\r\nB\r\n"),
		msg(7, 0, 0, "Subject: c\r\n\r\nC\r\n"))
	msgs, r, err := readAll(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{3, `\Answered \Seen`, "Work", "2009-10-07T10:00:00Z", "Subject: a\r\n\r\nA\r\n"},
		{10, `\Deleted \Draft \Flagged`, "Work $Label1", "2009-10-07T10:00:00Z", "Subject: b\r\n\r\nB\r\n"},
		// 7 is below the UID just given: c-client rebuilds (new UIDVALIDITY)
		{11, "", "", "2009-10-07T10:00:00Z", "Subject: c\r\n\r\nC\r\n"},
	}
	if fmt.Sprint(msgs) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", msgs, want)
	}
	if r.UIDValidity() != 0 || r.UIDNext() != 12 || strings.Join(r.Keywords(), " ") != "Work $Label1" {
		t.Errorf("UIDVALIDITY %d UIDNEXT %d keywords %q", r.UIDValidity(), r.UIDNext(), r.Keywords())
	}
	good := build(1234, 9, nil, msg(3, 0, 0, "x\r\n"))
	if _, r, err := readAll(good); err != nil || r.UIDValidity() != 1234 || r.UIDNext() != 10 {
		t.Errorf("good file: %v, UIDVALIDITY %d UIDNEXT %d", err, r.UIDValidity(), r.UIDNext())
	}
}

// Damaged files fail with an error naming the file and the byte offset
// of the damage; nothing is handed out as if complete.
func TestDamaged(t *testing.T) {
	m1 := msg(1, 0, 0, "Subject: a\r\n\r\nA\r\n")
	good := build(1, 2, nil, m1, msg(2, 0, 0, "Subject: b\r\n\r\nB\r\n"))
	second := int64(HeaderSize + len(m1))
	cases := []struct {
		name string
		in   []byte
		off  int64
	}{
		{"short header", good[:100], 100},
		{"bad magic", append([]byte("*mbX*"), good[5:]...), 0},
		{"bad uidvalidity", append(append(append([]byte(nil), good[:7]...), "zzzzzzzz"...), good[15:]...), 7},
		{"truncated in the second message", good[:len(good)-3], second},
		{"truncated in a header line", good[:second+20], second},
		{"NUL in a header line", bytes.Replace(good, []byte(",17;"), []byte(",1\x00;"), 1), HeaderSize},
		{"broken separator", bytes.Replace(good, []byte("-00000002\r\n"), []byte("-0000000Z\r\n"), 1), second},
		{"bad date", bytes.Replace(good, []byte(" 7-Oct-2009"), []byte("77-Oct-2009"), 1), HeaderSize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(tc.in)
			var fe *mbox.FormatError
			if !errors.As(err, &fe) || fe.Name != "box" || fe.Offset != tc.off {
				t.Fatalf("err = %v, want a FormatError at byte %d", err, tc.off)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("box at byte %d", tc.off)) {
				t.Errorf("error %q does not name file and offset", err)
			}
		})
	}
	// Without the size known, a truncated message is found when reading it.
	r := NewReader(bytes.NewReader(good[:len(good)-3]), Options{Name: "box"})
	r.Next()
	io.Copy(io.Discard, r)
	r.Next()
	if _, err := io.Copy(io.Discard, r); err == nil {
		t.Errorf("truncated message read without error")
	}
}

func FuzzReader(f *testing.F) {
	f.Add(build(1234, 9, []string{"Work", "$Label1"}, msg(3, fSeen, 1, "Subject: a\r\n\r\nA\r\n"), msg(0, fExpunged, 0, "x"), msg(9, 0, 2, "b\r\n")))
	f.Add(build(1, 0, nil))
	f.Add([]byte("*mbx*\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		// Allocation is bounded: the reader keeps a fixed buffer, whatever
		// sizes the file claims.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		defer func() {
			runtime.ReadMemStats(&after)
			if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
				t.Fatalf("reading %d bytes allocated %d", len(in), a)
			}
		}()
		r := NewReader(bytes.NewReader(in), Options{Name: "fuzz", Size: int64(len(in))})
		total, n := 0, 0
		for n < 10000 {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var fe *mbox.FormatError
				if !errors.As(err, &fe) || fe.Offset < 0 || fe.Offset > int64(len(in)) {
					t.Fatalf("error %v: not a FormatError within the input", err)
				}
				return
			}
			k, err := io.Copy(io.Discard, r)
			if err != nil {
				return
			}
			total += int(k)
			n++
			if m.UID == 0 {
				t.Fatalf("message without UID")
			}
		}
		if total > len(in) {
			t.Fatalf("%d bytes out of %d in", total, len(in))
		}
	})
}
