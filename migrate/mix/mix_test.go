package mix

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailmig/migrate/mbox"
)

// folder writes a mix folder the way c-client lays one out (the tests in
// migrate/convert read folders c-client made itself; this one is for
// damaging): meta, index, status and one data file.
type folder struct{ meta, index, status, data string }

func sample() folder {
	m1 := "Subject: one\r\n\r\nbody1\r\n"
	m2 := "Subject: two\r\n\r\nbody2\r\n"
	l1 := fmt.Sprintf(":msg:%08x:%s:%08x:\r\n", 3, "20091007120000+0200", len(m1))
	l2 := fmt.Sprintf(":msg:%08x:%s:%08x:\r\n", 7, "20091008130000-0700", len(m2))
	data := l1 + m1 + l2 + m2
	return folder{
		meta: "S00000005\r\nV4acc5a00\r\nL00000009\r\nN0000000a\r\nKWork $Label1\r\n",
		index: "S00000005\r\n" +
			fmt.Sprintf(":%08x:%s:%08x:%08x:%08x:%08x:%08x:\r\n", 3, "20091007120000+0200", len(m1), 10, 0, len(l1), 16) +
			fmt.Sprintf(":%08x:%s:%08x:%08x:%08x:%08x:%08x:\r\n", 7, "20091008130000-0700", len(m2), 10, len(l1)+len(m1), len(l2), 16),
		status: "S00000005\r\n:00000003:00000003:0019:00000005:\r\n:00000007:00000000:0016:00000005:\r\n",
		data:   data,
	}
}

func (f folder) write(t testing.TB) string {
	dir := t.TempDir()
	for name, s := range map[string]string{".mixmeta": f.meta, ".mixindex": f.index, ".mixstatus": f.status, ".mix0000000a": f.data} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readAll(dir string) ([]string, *Reader, error) {
	r, err := Open(dir)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []string
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
		out = append(out, fmt.Sprintf("%d %v %v %s %q", m.UID, m.Flags, m.Keywords, m.Date.UTC().Format("2006-01-02T15:04:05"), b))
	}
}

func TestReader(t *testing.T) {
	msgs, r, err := readAll(sample().write(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`3 [\Answered \Seen] [Work $Label1] 2009-10-07T10:00:00 "Subject: one\r\n\r\nbody1\r\n"`,
		`7 [\Deleted \Flagged] [] 2009-10-08T20:00:00 "Subject: two\r\n\r\nbody2\r\n"`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	if r.UIDValidity() != 0x4acc5a00 || r.UIDNext() != 10 {
		t.Errorf("UIDVALIDITY %d UIDNEXT %d", r.UIDValidity(), r.UIDNext())
	}
	if !IsMix(sample().write(t)) || IsMix(t.TempDir()) {
		t.Errorf("IsMix")
	}
}

// Damaged folders fail with an error naming the file and byte offset.
func TestDamaged(t *testing.T) {
	s := sample()
	cases := []struct {
		name string
		f    func(*folder)
		file string
		off  int64
	}{
		{"index line truncated", func(f *folder) { f.index = f.index[:len(f.index)-5] }, ".mixindex", 88},
		{"NUL in the index", func(f *folder) { f.index = strings.Replace(f.index, ":00000007:", ":0000\x0007:", 1) }, ".mixindex", 88},
		{"UIDs not increasing", func(f *folder) { f.index = strings.Replace(f.index, ":00000007:", ":00000002:", 1) }, ".mixindex", 88},
		{"bad status", func(f *folder) { f.status = strings.Replace(f.status, ":0016:", ":00x6:", 1) }, ".mixstatus", 46},
		{"no UIDVALIDITY", func(f *folder) { f.meta = strings.Replace(f.meta, "V4acc5a00\r\n", "", 1) }, ".mixmeta", 0},
		{"data file truncated", func(f *folder) { f.data = f.data[:len(f.data)-4] }, ".mix0000000a", int64(len(s.data) - 4)},
		{"broken :msg: separator", func(f *folder) { f.data = strings.Replace(f.data, ":msg:00000007", ":msG:00000007", 1) }, ".mix0000000a", 68},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := sample()
			tc.f(&f)
			dir := f.write(t)
			_, _, err := readAll(dir)
			var fe *mbox.FormatError
			if !errors.As(err, &fe) || fe.Name != filepath.Join(dir, tc.file) || fe.Offset != tc.off {
				t.Fatalf("err = %v, want a FormatError in %s at byte %d", err, tc.file, tc.off)
			}
		})
	}
	// A missing data file names the file.
	f := sample()
	dir := f.write(t)
	os.Remove(filepath.Join(dir, ".mix0000000a"))
	if _, _, err := readAll(dir); err == nil || !strings.Contains(err.Error(), ".mix0000000a") {
		t.Errorf("missing data file: %v", err)
	}
}

func FuzzMix(f *testing.F) {
	s := sample()
	f.Add(s.meta, s.index, s.status, s.data)
	f.Add("V1\r\nL0\r\n", "S1\r\n", "", "")
	f.Fuzz(func(t *testing.T, meta, index, status, data string) {
		if len(meta)+len(index)+len(status)+len(data) > 1<<16 {
			return
		}
		dir := folder{meta, index, status, data}.write(t)
		r, err := Open(dir)
		if err != nil {
			var fe *mbox.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
			return
		}
		defer r.Close()
		total := int64(0)
		for n := 0; n < 10000; n++ {
			_, err := r.Next()
			if err != nil {
				break
			}
			k, err := io.Copy(io.Discard, r)
			total += k
			if err != nil {
				break
			}
		}
		if total > int64(len(data)) {
			t.Fatalf("%d bytes out of a %d-byte data file", total, len(data))
		}
	})
}
