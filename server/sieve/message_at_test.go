package sieve

import (
	"bytes"
	"reflect"
	"testing"

	"mailmig/server/msgspool"
)

// NewMessageAt on a header prefix of the message sees what NewMessage
// sees on the whole of it.
func checkMessageAt(t *testing.T, raw []byte) {
	t.Helper()
	head, err := msgspool.HeaderPrefix(msgspool.Bytes(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := NewMessage(raw)
	got := NewMessageAt(head, bytes.NewReader(raw), int64(len(raw)))
	if !reflect.DeepEqual(got.fields, want.fields) || got.hasSep != want.hasSep || got.size != want.size {
		t.Fatalf("%q: header %v %v %d, want %v %v %d", raw, got.fields, got.hasSep, got.size, want.fields, want.hasSep, want.size)
	}
	gb, _, err := got.BodyRaw()
	wb, _, _ := want.BodyRaw()
	if err != nil || !bytes.Equal(gb, wb) {
		t.Fatalf("%q: body %q, %v; want %q", raw, gb, err, wb)
	}
}

func TestNewMessageAt(t *testing.T) {
	for _, raw := range []string{
		"Subject: a\r\nFrom: b\r\n\r\nbody\r\n",
		"Subject: a\nnot a field\nmore\n\nbody\n",
		"Subject: a\r\nnot a field\r\nmore\r\n\r\nbody\r\n",
		" leading: continuation\r\nA: b\r\n\r\nx",
		"A: b\r\n\tfolded\r\n\r\n",
		"no header at all",
		"",
		"\r\n\r\nbody",
	} {
		checkMessageAt(t, []byte(raw))
	}
}

func FuzzNewMessageAt(f *testing.F) {
	f.Add([]byte("Subject: a\r\nX: b\r\n c\r\n\r\nbody\r\n"))
	f.Add([]byte("A: b\nbad line\n\nbody"))
	f.Fuzz(func(t *testing.T, raw []byte) { checkMessageAt(t, raw) })
}
