package imap

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand"
	"strings"
	"testing"
)

// inflateAll inflates a whole stream with our inflater.
func inflateAll(data []byte) ([]byte, error) {
	return io.ReadAll(newDeflateReader(bytes.NewReader(data)))
}

// TestInflateMatchesFlate: what compress/flate writes at every level
// (stored, fixed and dynamic blocks, long distances, sync flushes in the
// middle) inflates to the original.
func TestInflateMatchesFlate(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	random := make([]byte, 70000)
	rnd.Read(random)
	texts := map[string][]byte{
		"empty":  nil,
		"short":  []byte("a1 NOOP\r\n"),
		"mail":   []byte(strings.Repeat("Received: from mail.example.org by mx; Wed, 7 Oct 2009\r\nSubject: hello\r\n\r\nbody text\r\n", 3000)),
		"random": random,
		"mixed":  append(append([]byte(strings.Repeat("xyz", 20000)), random[:40000]...), []byte(strings.Repeat("xyz", 20000))...),
	}
	for name, text := range texts {
		for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression, flate.HuffmanOnly} {
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, level)
			half := len(text) / 2
			w.Write(text[:half])
			w.Flush()
			w.Write(text[half:])
			w.Close()
			got, err := inflateAll(z.Bytes())
			if err != nil || !bytes.Equal(got, text) {
				t.Errorf("%s at level %d: %d bytes, %v; want %d bytes", name, level, len(got), err, len(text))
			}
		}
	}
}

// FuzzInflate: on any input our inflater agrees with compress/flate
// wherever compress/flate decodes a complete stream, and never panics.
func FuzzInflate(f *testing.F) {
	for _, s := range []string{"a1 NOOP\r\n", strings.Repeat("abc", 100), ""} {
		for _, level := range []int{0, 1, 9, -2} {
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, level)
			io.WriteString(w, s)
			w.Close()
			f.Add(z.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ours, oerr := inflateAll(data)
		theirs, terr := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
		if terr == nil && (oerr != nil || !bytes.Equal(ours, theirs)) {
			t.Fatalf("compress/flate: %q; ours: %q, %v", theirs, ours, oerr)
		}
	})
}

// BenchmarkInflate: a large APPEND through the inflater.
func BenchmarkInflate(b *testing.B) {
	text := []byte(strings.Repeat("Received: from mail.example.org by mx; Wed, 7 Oct 2009\r\nSubject: hello\r\n\r\nbody text\r\n", 12000))
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.DefaultCompression)
	w.Write(text)
	w.Close()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, newDeflateReader(bytes.NewReader(z.Bytes()))); err != nil {
			b.Fatal(err)
		}
	}
}
