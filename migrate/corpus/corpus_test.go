package corpus

import (
	"compress/gzip"
	"crypto/sha256"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"mailmig/migrate/mbox"
)

// TestGenerateMatchesReader reads every generated folder with the mbox
// reader and compares with the generator's expectations (two independent
// accounts of the same files).
func TestGenerateMatchesReader(t *testing.T) {
	tree, err := Generate(t.TempDir(), "carol", Options{Seed: 3, Folders: 4, InboxMessages: 8, FolderMessages: 5, MaxAttachment: 4 << 10, Quirks: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Folders) != 1+4+14 || len(tree.Broken) != 1 || len(tree.NotMail) != 1 || len(tree.Refused) != 1 {
		t.Fatalf("%d folders, broken %v, refused %v", len(tree.Folders), tree.Broken, tree.Refused)
	}
	for _, name := range tree.Names() {
		f := tree.Folders[name]
		fh, err := os.Open(f.Source)
		if err != nil {
			t.Fatal(err)
		}
		var in io.Reader = fh
		if strings.HasSuffix(f.Source, ".gz") {
			zr, err := gzip.NewReader(fh)
			if err != nil {
				t.Fatal(err)
			}
			in = zr
		}
		r := mbox.NewReader(in, mbox.Options{Name: f.Source, Location: time.UTC})
		var i int
		for ; ; i++ {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, _ := io.ReadAll(r)
			if i >= len(f.Messages) {
				t.Fatalf("%s: more messages than generated", name)
			}
			w := f.Messages[i]
			flags := append(append([]string(nil), m.Flags...), m.Keywords...)
			sort.Strings(flags)
			if m.UID != w.UID || sha256.Sum256(b) != w.SHA256 || !m.Date.Equal(w.Date) || !reflect.DeepEqual(nilIfEmpty(flags), nilIfEmpty(w.Flags)) {
				t.Errorf("%s message %d: uid %d flags %v date %v; want uid %d flags %v date %v (same bytes %v)",
					name, i, m.UID, flags, m.Date, w.UID, w.Flags, w.Date, sha256.Sum256(b) == w.SHA256)
			}
		}
		fh.Close()
		if i != len(f.Messages) {
			t.Errorf("%s: read %d messages, generated %d", name, i, len(f.Messages))
		}
		if f.UIDValidity != 0 && r.UIDValidity() != f.UIDValidity {
			t.Errorf("%s: UIDVALIDITY %d, want %d", name, r.UIDValidity(), f.UIDValidity)
		}
	}
	// Same seed, same tree.
	again, err := Generate(t.TempDir(), "carol", Options{Seed: 3, Folders: 4, InboxMessages: 8, FolderMessages: 5, MaxAttachment: 4 << 10, Quirks: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Folders["INBOX"].Messages[0].SHA256 != tree.Folders["INBOX"].Messages[0].SHA256 {
		t.Error("generation is not reproducible")
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
